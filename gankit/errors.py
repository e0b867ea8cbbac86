"""Errors that gankit raises for mistakes a user can fix.

The command line prints a :class:`GankitError` as a short message with no
traceback (``--debug`` shows it); every other exception is a bug and is shown
in full.
"""

from __future__ import annotations


class GankitError(Exception):
    """A mistake in the user's input: a recipe, a file, a name, a setting.

    The message says what is wrong and how to fix it. ``exit_code`` is what
    the command line exits with.
    """

    exit_code: int = 1


class PartNotFoundError(GankitError, LookupError):
    """A part name that no provider registered."""


class RegistrationError(GankitError):
    """A part that cannot be registered: a clash, a bad name or a bad kind."""


class TrainingError(GankitError):
    """Training cannot go on (a non-finite loss, for instance); the last good checkpoint stays."""

    exit_code = 3


class CorruptCheckpointError(GankitError):
    """A checkpoint that cannot be trusted: truncated, a garbage header, a failed checksum, bad metadata.

    Loading a run folder skips such a checkpoint (with a warning) and falls back to the previous one.
    """


class MissingLabelsError(GankitError):
    """A network conditioned on classes (``condition = ...``), but the data has no labels.

    ``network`` names it (``"generator 'dcgan'"``); ``data`` names the data
    source when the caller knows it (the trainer adds it).
    """

    def __init__(self, network: str, condition: str, data: str | None = None) -> None:
        self.network, self.condition, self.data = network, condition, data
        source = f"the data ({data!r})" if data else "the data"
        super().__init__(
            f"{network}: condition = {condition!r} needs class labels, but {source} has none. Train on labelled "
            "data (digits, stacked-digits, or image-folder / prepared with labels = \"folders\"), or set "
            "condition = \"none\""
        )


class GankitWarning(UserWarning):
    """Something the user should know about that does not stop the work (skipped files, version changes)."""


def describe_os_error(error: OSError) -> str:
    """One line for an error of the file system or the machine: the file (cut to 200 characters), what happened."""
    what = error.strerror or str(error) or type(error).__name__
    names = [str(n) for n in (error.filename, error.filename2) if n is not None]
    shown = " -> ".join(n if len(n) <= 200 else n[:197] + "..." for n in names)
    return f"{shown}: {what}" if shown else what
