"""Sub-commands of the ``gankit`` command line, one module each (see :mod:`gankit.cli`)."""
