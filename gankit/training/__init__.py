"""GAN training: the two-phase trainer, resuming, and using trained generators."""

from gankit.training.generate import interpolate, load_generator, sample
from gankit.training.trainer import Trainer, TrainResult, resume, train

__all__ = ["TrainResult", "Trainer", "interpolate", "load_generator", "resume", "sample", "train"]
