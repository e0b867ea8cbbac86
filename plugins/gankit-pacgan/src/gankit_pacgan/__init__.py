"""gankit-pacgan: PacGAN packing (Lin et al. 2018) as a gankit discriminator, ``pacgan.packed``.

Installing this distribution is all it takes: gankit finds it through the
``gankit`` entry point group. In a recipe::

    [discriminator]
    type = "pacgan.packed"
    pack = 2
    inner = { type = "mlp", width = 128 }
"""

from __future__ import annotations

from importlib import metadata

from gankit_pacgan.packed import PackedDiscriminator, PackedParams, pack_batch, packed_shape, resolve_inner

try:
    __version__ = metadata.version("gankit-pacgan")
except metadata.PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["PackedDiscriminator", "PackedParams", "__version__", "pack_batch", "packed_shape", "resolve_inner"]
