"""Ctrl-C in the middle of a training run, as a user at a terminal sends it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def interrupt_after_logging(args: Sequence[str], metrics: Path, *, records: int = 3,
                            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m gankit ARGS``, send SIGINT once ``metrics`` holds ``records`` lines, wait for the exit.

    The child starts with SIGINT at its default, as from a shell, whatever
    this process ignores (a background job of a non-interactive shell ignores it).
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "gankit", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + timeout
    while time.time() < deadline and not (metrics.is_file() and metrics.read_text().count("\n") >= records):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
