"""``python -m gankit``: the same as the ``gankit`` command."""

from gankit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
