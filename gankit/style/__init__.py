"""Neural style transfer: VGG encoders, content / Gram-style / total-variation losses and the optimisation loop.

Importing this package is cheap (no torch); :func:`gankit.style.stylize` loads
what it needs on first use. The pieces:

- :mod:`gankit.style.vgg`: VGG16 / VGG19 feature extractors with named layers;
- :mod:`gankit.style.weights`: finding, reading, converting and downloading their weights;
- :mod:`gankit.style.losses`: the image losses (also registered as parts);
- :mod:`gankit.style.loop`: :func:`stylize`, the optimisation loop;
- :mod:`gankit.style.schema`: the ``style`` recipe task;
- :mod:`gankit.style.images`: reading and writing images with clear errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gankit.style.loop import StyleResult, stylize

__all__ = ["StyleResult", "stylize"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from gankit.style import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'gankit.style' has no attribute {name!r}")
