"""The plugin hook: how built-in parts and third-party plugins add parts to gankit.

This module *is* the reference for plugin authors. A plugin is an ordinary
Python distribution that declares an entry point in the ``gankit`` group::

    [project.entry-points.gankit]
    myplugin = "gankit_myplugin.plugin"

The entry point's name is the plugin's **namespace**: every part it registers
is called ``myplugin.<name>``, and no plugin may register into another's
namespace or into the built-in one (built-in names have no dot).

The module it points to implements the hooks below, marked with
:data:`gankit.hookimpl`: :func:`gankit_register_parts` to add parts, and
:func:`gankit_recipes` to ship ready recipes (a plugin implements at least one)::

    import gankit

    @gankit.hookimpl
    def gankit_register_parts(register):
        register("trick", "myplugin.jitter", Jitter, JitterParams)

    @gankit.hookimpl
    def gankit_recipes():
        return [Path(__file__).parent / "recipes"]

gankit loads plugins lazily: only when parts are first needed (building a
recipe, ``gankit list``), never on ``import gankit``. Setting
``GANKIT_DISABLE_PLUGINS=1`` loads no third-party plugin. A plugin that fails to
import or to register is reported (a warning, and a red row in
``gankit list``) and everything else keeps working.
"""

from __future__ import annotations

from typing import Any, Protocol

import pluggy

PROJECT = "gankit"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Register(Protocol):
    """The ``register`` callable that :func:`gankit_register_parts` receives."""

    def __call__(
        self,
        kind: str,
        name: str,
        factory: Any,
        params: Any = None,
        *,
        version: int = 1,
        role: str | None = None,
        summary: str | None = None,
    ) -> Any: ...


@hookspec
def gankit_register_parts(register: Register) -> None:
    """Register this plugin's parts by calling ``register`` once per part.

    ``register(kind, name, factory, params=None, *, version=1, role=None, summary=None)``

    - ``kind``: one of ``gankit.registry.KINDS`` (``"generator"``,
      ``"discriminator"``, ``"loss"``, ``"schedule"``, ``"balance"``,
      ``"trick"``, ``"data"``, ``"metric"``, ``"encoder"``, ``"optimizer"``,
      ``"stylizer"``, ``"logger"``).
    - ``name``: ``"<namespace>.<name>"`` for a plugin, in lower case with
      ``-`` between words (``"pacgan.packed"``).
    - ``factory``: a callable (often a class) called as
      ``factory(params, **context)``, where ``params`` is the validated
      instance of ``params`` and ``context`` depends on the kind:

      ==============  ==========================================================
      kind            context keywords and what the factory returns
      ==============  ==========================================================
      data            ``seed`` → a :class:`gankit.protocols.DataSource`
      generator       ``shape`` (C, H, W) or (D,) of one sample, ``num_classes``
                      (the data's classes, 0 when unlabelled) →
                      :class:`gankit.protocols.Generator`
      discriminator   ``shape``, ``num_classes`` → :class:`gankit.protocols.Discriminator`
      loss            none → :class:`gankit.protocols.AdversarialLoss`
                      (role ``"adversarial"``), :class:`gankit.protocols.Regularizer`
                      (role ``"regularizer"``) or an image loss (role ``"image"``)
      schedule        ``total_steps`` → :class:`gankit.protocols.Schedule`
      balance         none → :class:`gankit.protocols.BalancePolicy`
      trick           none → :class:`gankit.protocols.Trick` (its events get a
                      :class:`gankit.training.context.TrainingContext`)
      metric          none → a metric (see :mod:`gankit.protocols`)
      encoder         none → a feature extractor (``nn.Module``)
      optimizer       ``parameters`` (the network's), ``network``
                      (``"generator"``/``"discriminator"``) → a
                      ``torch.optim.Optimizer``; its param groups' ``lr`` is the
                      base rate the schedule multiplies
      logger          ``run_dir`` (the run folder), ``log_dir`` (a folder of its
                      own inside it, not yet created), ``recipe`` (the resolved
                      :class:`gankit.Recipe`), ``start_step`` (0, or the step a
                      resumed run continues from) → a
                      :class:`gankit.protocols.Logger`; built on the process that
                      writes the run folder only
      ==============  ==========================================================

      Factories must accept unknown context keywords (``**context``) so that
      gankit can pass more in later versions.
    - ``params``: a pydantic model class with ``extra="forbid"`` (subclass
      :class:`gankit.Params`); its fields, types, defaults and
      ``Field(description=...)`` are what ``gankit show`` prints and what
      recipes are validated against. ``None`` means the part takes none.
    - ``version``: the part's version; several versions of a name may coexist,
      recipes pin one with ``type = "name@v1"``, unpinned means the newest.
    - ``role``: narrows a kind where slots need it (losses: ``"adversarial"``,
      ``"regularizer"``, ``"image"``).
    - ``summary``: one line for ``gankit list``; by default the first line of
      the factory's docstring.

    Registering a name and version that another provider registered raises an
    error naming both; there is no silent overwrite.
    """


@hookspec
def gankit_recipes() -> list[Any]:
    """Return the recipe files this plugin ships: paths of ``.toml`` files, or of folders holding them.

    ``gankit recipes`` lists them with the plugin as their provider, and
    ``gankit train NAME`` finds them by file name (without ``.toml``). A name
    that a built-in recipe or another plugin already uses is available as
    ``namespace/name``. Ship the files inside the package (package data), so
    that they are installed with it.
    """
    return []
