"""gankit-extras: four parts written on gankit's public contracts, as any third party would write them."""

__version__ = "0.1.0"
