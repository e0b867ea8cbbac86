"""gankit's built-in parts, registered through the same hook as any third-party plugin.

Each module in this package that defines ``register(register)`` adds its parts;
a new module is picked up without editing this file.
"""

from __future__ import annotations

import importlib
import pkgutil

from gankit.hookspecs import Register, hookimpl


@hookimpl
def gankit_register_parts(register: Register) -> None:
    """Register every built-in part."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        add_parts = getattr(module, "register", None)
        if callable(add_parts):
            add_parts(register)
