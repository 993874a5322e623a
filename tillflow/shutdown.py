"""Stopping long-running commands on SIGTERM within a bounded time, even when the broker is gone.

A clean stop flushes what was produced, commits what was processed and closes the clients. Each of those
waits for the broker: with the broker unreachable a clean stop can wait for minutes (issue 12 measured a
worker ignoring SIGTERM for 60 s and more). Once a stop is asked for, :class:`StopDeadline` gives the clean
stop ``stop_timeout_s`` seconds (setting); after that the process exits at once with
:data:`EXIT_STOP_TIMEOUT`. Nothing acknowledged is lost by that exit: every command commits an input offset
only after the effects of its record were acknowledged, so what was not committed is read again at the next
start (at-least-once, as after a crash).

A command passes its deadline to :func:`tillflow.lifecycle.stop_on_signals`, which arms it on SIGTERM (or
Ctrl-C) and cancels it when the command's scope ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

EXIT_STOP_TIMEOUT = 3
"""Exit code of a process whose clean stop did not finish within its deadline."""


class StopDeadline:
    """Exits the process ``seconds`` after :meth:`arm` unless it ended before (a daemon thread)."""

    def __init__(self, seconds: float, what: str, exit: Callable[[int], object] = os._exit) -> None:
        self.seconds = seconds
        self.what = what
        self._exit = exit
        self._armed = threading.Event()
        self._finished = threading.Event()
        self._handler: object = None
        self.expired = threading.Event()

    @property
    def armed(self) -> bool:
        return self._armed.is_set()

    def arm(self) -> None:
        """Start the countdown (once; later calls do nothing)."""
        if self._armed.is_set():
            return
        self._armed.set()
        # The one line that says why a process that exits 0 stopped (a supervisor's SIGTERM, Ctrl-C).
        log.warning("%s: stop requested (SIGTERM or Ctrl-C): stopping cleanly, within %g s", self.what, self.seconds)
        self._handler = signal.getsignal(signal.SIGTERM)
        threading.Thread(target=self._countdown, name="stop-deadline", daemon=True).start()

    def cancel(self) -> None:
        """The clean stop finished (or the command returned): never exit. Commands call it when they return,
        so that one run in a process that goes on (a test invoking the command) cannot end that process."""
        self._finished.set()

    def _countdown(self) -> None:
        if self._finished.wait(self.seconds):
            return
        if signal.getsignal(signal.SIGTERM) is not self._handler:
            return  # the command returned and its handler is gone: the process goes on (a test invoking it)
        self.expired.set()
        message = (
            f"{self.what} could not stop cleanly within {self.seconds:g} s (broker or server unreachable?): "
            "exiting now; what was not committed is read again at the next start"
        )
        log.error(message)
        with contextlib.suppress(Exception):
            print(message, file=sys.stderr, flush=True)
            for handler in logging.getLogger().handlers:
                handler.flush()
        self._exit(EXIT_STOP_TIMEOUT)
