"""The smallest networks the tests train: recipe tables to put after a test's own ``[run]`` table.

Each ends with its ``[discriminator]`` table, so a test may append more
discriminator keys right after it.
"""

TINY_RING_PARTS = """
[data]
type = "ring"
[generator]
type = "mlp"
latent_dim = 2
width = 8
depth = 1
[discriminator]
type = "mlp"
width = 8
depth = 1
"""

TINY_DIGITS_PARTS = """
[data]
type = "digits"
resolution = 8
[generator]
type = "dcgan"
latent_dim = 8
width = 4
max_width = 8
[discriminator]
type = "dcgan"
width = 4
max_width = 8
"""
