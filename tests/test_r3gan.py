"""R3GAN's networks: shapes, the fix-up initialisation, conditioning, and training with rpgan + R1 + R2."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from gankit.errors import GankitError
from gankit.plugins import get_registry
from gankit.testing import tiny_recipe, train_for
from gankit.training import sample

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"width": 16, "max_width": 32, "blocks": 1}


def networks(shape: tuple[int, ...] = (1, 16, 16), num_classes: int = 0, g: Any = None, d: Any = None) -> Any:
    torch.manual_seed(0)
    registry = get_registry()
    generator = registry.get("generator", "r3gan").build({**SMALL, "latent_dim": 8, **(g or {})}, shape=shape,
                                                         num_classes=num_classes)
    discriminator = registry.get("discriminator", "r3gan").build({**SMALL, **(d or {})}, shape=shape,
                                                                 num_classes=num_classes)
    return generator, discriminator


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (3, 24, 32)])
def test_shapes_and_resolutions(shape: tuple[int, int, int]) -> None:
    g, d = networks(shape)
    images = g(torch.randn(4, 8))
    assert images.shape == (4, *shape)
    assert d(images).shape == (4,)


def test_every_residual_block_starts_as_the_identity() -> None:
    from gankit.parts.nets_r3gan import InvertedBottleneck

    g, d = networks(g={"blocks": 2}, d={"blocks": 2})
    blocks = [m for net in (g, d) for m in net.modules() if isinstance(m, InvertedBottleneck)]
    assert len(blocks) == 3 * 2 * 2  # three levels (4, 8, 16), two blocks each, two networks
    x = torch.randn(2, blocks[0].widen.in_channels, 4, 4)
    assert torch.equal(blocks[0](x), x)
    # the inner layers are scaled down by L^(-1/4), L = 6 residual blocks in the network
    widen = blocks[0].widen.weight
    fan_in = widen[0].numel()
    expected = (2.0 / 1.04) ** 0.5 * 6 ** -0.25 / fan_in**0.5
    assert widen.std().item() == pytest.approx(expected, rel=0.2)


def test_grouped_convolutions_and_inverted_bottlenecks() -> None:
    g, _ = networks(shape=(1, 16, 16), g={"width": 16, "max_width": 32, "expansion": 2, "group_channels": 8})
    convs = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert convs and all(c.groups == c.in_channels // 8 for c in convs)
    assert all(c.in_channels in (32, 64) for c in convs)  # widened twice
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm | torch.nn.GroupNorm) for m in g.modules())


def test_groups_that_do_not_divide_are_a_clear_error() -> None:
    with pytest.raises(GankitError, match="group_channels = 12"):
        networks(g={"group_channels": 12})


def test_conditional_networks() -> None:
    g, d = networks(num_classes=3, g={"condition": "embedding"}, d={"condition": "projection"})
    labels = torch.tensor([0, 1, 2, 0])
    images = g(torch.randn(4, 8), labels)
    assert d(images, labels).shape == (4,)
    with pytest.raises(GankitError, match="labelled data"):
        networks(g={"condition": "embedding"})
    with pytest.raises(GankitError, match="labels"):
        g(torch.randn(4, 8))


def test_r3gan_has_no_truncation() -> None:
    g, _ = networks()
    with pytest.raises(GankitError, match="R3GANGenerator has none"):
        sample(g, 2, truncation=0.5)


def test_trains_with_rpgan_r1_and_r2() -> None:
    recipe = tiny_recipe(
        "images", generator={"type": "r3gan", **SMALL, "latent_dim": 8}, discriminator={"type": "r3gan", **SMALL},
        loss="rpgan", regularizers=[{"type": "r1", "weight": 0.1}, {"type": "r2", "weight": 0.1}],
    )
    result = train_for(recipe, steps=3)
    assert result.step == 3 and result.last is not None
    assert result.last["d_loss"] > 0
