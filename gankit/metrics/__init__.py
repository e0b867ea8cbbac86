"""Measuring generators: mode coverage, digit triples, Fréchet and kernel distances, feature extractors.

The metric *parts* (``modes``, ``stacked-digits``, ``fid``, ``kid``) and the
``digits-features`` and ``inception-v3`` encoders are registered in
:mod:`gankit.parts.metrics`; this package holds the numerical work they
share, importable on its own:

- :mod:`gankit.metrics.modes`: PacGAN's mode coverage and ``KL(p || uniform)``;
- :mod:`gankit.metrics.stacked`: counting digit triples (Stacked-MNIST);
- :mod:`gankit.metrics.frechet`: FID and KID in float64;
- :mod:`gankit.metrics.digits`: gankit's own digits classifier, trained and cached on first use;
- :mod:`gankit.metrics.inception`: Inception-v3 features from a user's safetensors file;
- :mod:`gankit.metrics.features`: the feature-extractor protocol;
- :mod:`gankit.metrics.sampling`: samples from a fixed latent batch.

Nothing here imports torch until a submodule is imported.
"""
