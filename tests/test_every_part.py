"""Every built-in GAN part trains through a recipe, and no registered part is left out of this file."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from support.recipes import TINY_DIGITS_PARTS, TINY_RING_PARTS

from gankit.plugins import build_registry
from gankit.recipe import loads_recipe
from gankit.training import train

RUN = """
[run]
steps = 2
batch_size = 8
log_every = 1
sample_every = 2
samples = 4
checkpoint_every = 2
metrics_every = 2
"""

POINTS = RUN + TINY_RING_PARTS

IMAGES = RUN + TINY_DIGITS_PARTS

GROWING = IMAGES.replace('type = "dcgan"', 'type = "progressive"') + """
[[tricks]]
type = "progressive"
start_resolution = 4
fade_images = 8
stabilise_images = 8
"""

MULTI_SCALE = IMAGES.replace('type = "dcgan"', 'type = "msg"')

STYLEGAN2 = RUN + """
[data]
type = "digits"
resolution = 8
[generator]
type = "stylegan2"
latent_dim = 8
w_dim = 8
mapping_layers = 2
channel_base = 32
channel_max = 8
[discriminator]
type = "stylegan2"
channel_base = 32
channel_max = 8
"""

R3GAN = RUN + """
[data]
type = "digits"
resolution = 8
[generator]
type = "r3gan"
latent_dim = 8
width = 16
max_width = 16
[discriminator]
type = "r3gan"
width = 16
max_width = 16
blocks = 1
[loss]
type = "rpgan"
"""

CONDITIONAL = IMAGES.replace('latent_dim = 8', 'latent_dim = 8\ncondition = "batchnorm"') + \
    'condition = "projection-classifier"\n[[regularizers]]\ntype = "acgan"\n'

#: (kind, name) → recipe text that uses the part. Adding a part means adding a line here.
CASES: dict[tuple[str, str], str] = {
    ("generator", "mlp"): POINTS,
    ("discriminator", "mlp"): POINTS + "minibatch_std = true\nspectral_norm = true\n",
    ("generator", "dcgan"): IMAGES.replace('latent_dim = 8', 'latent_dim = 8\nupsample = "nearest"'),
    ("discriminator", "dcgan"): IMAGES + "downsample = \"pool\"\nminibatch_std = true\n",
    ("generator", "progressive"): GROWING,
    ("discriminator", "progressive"): GROWING,
    ("trick", "progressive"): GROWING,
    ("generator", "msg"): MULTI_SCALE,
    ("discriminator", "msg"): MULTI_SCALE + 'combine = "cat-lin"\n',
    ("loss", "bce"): POINTS + '[loss]\ntype = "bce"\n',
    ("loss", "non-saturating"): POINTS + '[loss]\ntype = "non-saturating"\nreal_label = 0.9\n',
    ("loss", "lsgan"): POINTS + '[loss]\ntype = "lsgan"\n',
    ("loss", "hinge"): POINTS + '[loss]\ntype = "hinge"\n',
    ("loss", "wgan"): POINTS + '[loss]\ntype = "wgan"\n[[regularizers]]\ntype = "gradient-penalty"\n',
    ("loss", "gradient-penalty"): IMAGES + '[[regularizers]]\ntype = "gradient-penalty"\n',
    ("loss", "r1"): IMAGES + '[[regularizers]]\ntype = "r1"\nevery = 2\n',
    ("loss", "r2"): IMAGES + '[[regularizers]]\ntype = "r1"\n[[regularizers]]\ntype = "r2"\n',
    ("loss", "path-length"): IMAGES + '[[regularizers]]\ntype = "path-length"\nevery = 1\n',
    ("loss", "ragan"): POINTS + '[loss]\ntype = "ragan"\nform = "hinge"\n',
    ("loss", "rpgan"): IMAGES + '[loss]\ntype = "rpgan"\n',
    ("loss", "acgan"): CONDITIONAL + '[[regularizers]]\ntype = "r1"\n',
    ("optimizer", "adam"): POINTS + '[optim.generator]\ntype = "adam"\nfused = true\n',
    ("optimizer", "adamw"): POINTS + '[optim.generator]\ntype = "adamw"\nweight_decay = 0.01\n',
    ("optimizer", "sgd"): POINTS + '[optim.discriminator]\ntype = "sgd"\nmomentum = 0.9\nnesterov = true\n',
    ("optimizer", "rmsprop"): POINTS + '[optim.discriminator]\ntype = "rmsprop"\nlr = 5e-5\n',
    ("schedule", "constant"): POINTS + '[schedule.generator]\ntype = "constant"\n',
    ("schedule", "step"): POINTS + '[schedule.generator]\ntype = "step"\nmilestones = [1]\n',
    ("schedule", "cosine"): POINTS + '[schedule.discriminator]\ntype = "cosine"\n',
    ("schedule", "linear-warmup"): POINTS + '[schedule.generator]\ntype = "linear-warmup"\nwarmup_steps = 2\n',
    ("balance", "always"): POINTS + '[balance]\ntype = "always"\n',
    ("balance", "n-critic"): POINTS + '[balance]\ntype = "n-critic"\nn = 2\n',
    ("balance", "discriminator-skip"): POINTS + '[balance]\ntype = "discriminator-skip"\nthreshold = 5.0\n',
    ("balance", "adaptive"): POINTS + '[balance]\ntype = "adaptive"\n',
    ("trick", "ema"): IMAGES + '[[tricks]]\ntype = "ema"\n',
    ("trick", "freeze-d"): IMAGES + '[[tricks]]\ntype = "freeze-d"\nblocks = 1\n',
    ("logger", "tensorboard"): IMAGES + '[[loggers]]\ntype = "tensorboard"\n',
    ("generator", "stylegan2"): STYLEGAN2 + '[[tricks]]\ntype = "ema"\nhalf_life_images = 100\nrampup = 0.05\n',
    ("discriminator", "stylegan2"): STYLEGAN2 + 'minibatch_std_group = 2\n[[regularizers]]\ntype = "path-length"\n',
    ("trick", "style-mixing"): STYLEGAN2 + '[[tricks]]\ntype = "style-mixing"\nprobability = 1.0\n',
    ("trick", "ada"): IMAGES + '[[tricks]]\ntype = "ada"\np = 0.5\ninterval = 1\naugment = ["blit", "geom", "color", '
    '"noise", "cutout"]\n',
    ("generator", "r3gan"): R3GAN + '[[regularizers]]\ntype = "r1"\n[[regularizers]]\ntype = "r2"\n',
    ("discriminator", "r3gan"): R3GAN,
    ("data", "ring"): POINTS,
    ("data", "grid"): POINTS.replace('type = "ring"', 'type = "grid"'),
    ("data", "digits"): IMAGES,
    ("data", "image-folder"): IMAGES.replace('type = "digits"', 'type = "image-folder"\npath = "{folder}"'),
    ("data", "stacked-digits"): IMAGES.replace('type = "digits"', 'type = "stacked-digits"'),
    ("data", "prepared"): IMAGES.replace('type = "digits"', 'type = "prepared"\npath = "{prepared}"\nhflip = true'),
    ("metric", "modes"): POINTS + '[[metrics]]\ntype = "modes"\nsamples = 200\n',
    ("metric", "fid"): IMAGES + '[[metrics]]\ntype = "fid"\nn_fake = 64\n',
    ("metric", "kid"): IMAGES + '[[metrics]]\ntype = "kid"\nn_fake = 64\nsubsets = 2\nsubset_size = 32\n',
    ("metric", "sliced-wasserstein"): POINTS + '[[metrics]]\ntype = "sliced-wasserstein"\nsamples = 64\n',
    ("metric", "precision-recall"): IMAGES + '[[metrics]]\ntype = "precision-recall"\nn_fake = 64\nn_real = 64\n',
    ("metric", "density-coverage"): IMAGES + '[[metrics]]\ntype = "density-coverage"\nn_fake = 64\n',
    ("metric", "stacked-digits"): IMAGES.replace('type = "digits"', 'type = "stacked-digits"')
    + '[[metrics]]\ntype = "stacked-digits"\nsamples = 64\n',
    ("metric", "class-accuracy"): CONDITIONAL + '[[metrics]]\ntype = "class-accuracy"\nsamples = 8\n',
    ("metric", "intra-fid"): CONDITIONAL + '[[metrics]]\ntype = "intra-fid"\nn_fake = 8\n',
}

GAN_KINDS = ("generator", "discriminator", "schedule", "balance", "trick", "data", "metric", "optimizer", "logger")


def test_every_registered_gan_part_has_a_case() -> None:
    registry, _ = build_registry(third_party=False)
    parts = {(p.kind, p.name) for p in registry.parts() if p.kind in GAN_KINDS}
    parts |= {(p.kind, p.name) for p in registry.parts("loss") if p.role in ("adversarial", "regularizer")}
    assert parts - CASES.keys() == set(), "add a recipe for the new part to CASES"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pictures")
    for i in range(4):
        Image.new("RGB", (12, 10), (40 * i, 200 - 30 * i, 90)).save(path / f"p{i}.png")
    return path


@pytest.fixture(scope="module")
def prepared(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gankit.data.prepare import PrepareSettings, prepare_folder

    out = tmp_path_factory.mktemp("prepared") / "set"
    prepare_folder(folder, out, PrepareSettings(resolution=(8, 8)))
    return out


@pytest.mark.parametrize("key", sorted(CASES), ids=lambda k: f"{k[0]}-{k[1]}")
def test_part_trains_through_a_recipe(key: tuple[str, str], tmp_path: Path, folder: Path, prepared: Path) -> None:
    kind, name = key
    recipe = loads_recipe(CASES[key].replace("{folder}", str(folder)).replace("{prepared}", str(prepared)))
    used = {spec.part.name for spec in _specs(recipe)}
    assert name in used, f"the case for {kind} {name!r} does not use it"
    result = train(recipe, tmp_path / "run", quiet=True)
    assert result.step == 2
    assert (tmp_path / "run" / "generator.safetensors").is_file()


def _specs(recipe: object) -> list:
    from gankit.recipe import PartSpec

    out = []
    for value in recipe.slots.values():  # type: ignore[attr-defined]
        items = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [value]
        out.extend(v for v in items if isinstance(v, PartSpec))
    return out
