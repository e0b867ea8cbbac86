"""The kinds of part, in a module light enough for ``gankit --help`` to import."""

#: Every kind of part. Adding a kind is adding a name here.
KINDS: tuple[str, ...] = (
    "generator",
    "discriminator",
    "loss",
    "schedule",
    "balance",
    "trick",
    "data",
    "metric",
    "encoder",
    "optimizer",
    "stylizer",
    "logger",
)
