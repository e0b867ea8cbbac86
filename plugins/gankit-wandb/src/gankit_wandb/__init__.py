"""gankit-wandb: a Weights & Biases logger for gankit runs."""

__version__ = "0.1.0"
