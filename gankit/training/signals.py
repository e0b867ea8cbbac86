"""Stopping a run cleanly: Ctrl-C or SIGTERM asks the loop to stop after the step in progress."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class StopRequest:
    """Set by Ctrl-C or SIGTERM while :meth:`handling` is active; a second signal interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    @contextlib.contextmanager
    def handling(self) -> Iterator[StopRequest]:
        """Catch SIGINT and SIGTERM (main thread only) for the duration of the block."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def request_stop(signum: int, frame: Any) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
