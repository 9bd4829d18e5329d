"""SIGINT and SIGTERM during `sgbench run`: stop at once, re-queue the trial, exit 130 / 143.

Schedulers send SIGTERM before they kill (Slurm, Kubernetes); users press Ctrl-C, often twice.
The first signal raises `RunInterrupted` where the run is doing work (`armed` sections: sampling,
measuring, loading, waiting for peers); while the run writes its bookkeeping (claiming the run
directory, asking for a trial, re-queuing it, recording a result, rewriting trials.csv) the signal
is only noted and raised at the next safe point (`check`), so nothing is ever half-recorded. Every later signal is ignored: the first one's
cleanup always completes, and any number of signals re-queue a trial once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Optional

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + signal number, as shells report them


class RunInterrupted(KeyboardInterrupt):
    """The run was stopped by a signal; `exit_code` is what `sgbench run` returns."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = EXIT_CODES.get(signum, 128 + signum)


class Interrupts:
    """Signal state of one run: which signal arrived first, and whether it may raise now."""

    def __init__(self):
        self.requested: Optional[int] = None  # the first signal's number
        self.count = 0  # signals received (the later ones are ignored)
        self._armed = False
        self._previous: dict = {}
        self.listeners: list = []  # called with the first signal's number (local workers forward it)

    # ---- handler --------------------------------------------------------------------------
    def handle(self, signum, frame=None) -> None:
        self.count += 1
        if self.requested is not None:
            return  # already stopping: let the first signal's cleanup finish
        self.requested = signum
        for listener in self.listeners:
            listener(signum)
        if self._armed:
            self._armed = False
            raise RunInterrupted(signum)

    @contextlib.contextmanager
    def installed(self):
        """Handle SIGINT and SIGTERM for the duration (main thread only; elsewhere a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        self._previous = {s: signal.signal(s, self.handle) for s in EXIT_CODES}
        try:
            yield self
        finally:
            self._armed = False
            for s, h in self._previous.items():
                signal.signal(s, h)

    # ---- sections ---------------------------------------------------------------------------
    def check(self) -> None:
        """Raise now if a signal arrived while it could not."""
        if self.requested is not None:
            self._armed = False
            raise RunInterrupted(self.requested)

    @contextlib.contextmanager
    def armed(self):
        """Work a signal may stop at once (RunInterrupted is raised inside). Outside these
        sections — bookkeeping — a signal is only noted; `check()` raises it where stopping is safe."""
        self.check()
        self._armed = True
        try:
            yield
        finally:
            self._armed = False

