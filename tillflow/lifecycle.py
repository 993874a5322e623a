"""How a long-running tillflow process stops: signal handlers installed for a scope, the previous ones restored.

The one home of signal handling for commands and services: a loop asks ``stop.is_set()`` (or passes
``stop.is_set`` as its ``should_stop``) and finishes what it holds (flush, commit, close) before returning.
Handlers are installed only in the main thread (Python cannot install them elsewhere; a command run in a
worker thread, as some tests do, simply gets no handler) and the previous ones come back when the scope ends,
so an in-process caller (a test's CliRunner, the demo) keeps its own handling.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

__all__ = [
    "TERMINATE",
    "TERMINATE_OR_INTERRUPT",
    "interrupt_on_signals",
    "raise_keyboard_interrupt",
    "signal_handlers",
    "stop_on_signals",
]

TERMINATE = (signal.SIGTERM,)
"""A supervisor's stop (systemd, Kubernetes, `kill`); Ctrl-C keeps raising KeyboardInterrupt."""
TERMINATE_OR_INTERRUPT = (signal.SIGTERM, signal.SIGINT)
"""SIGTERM and Ctrl-C alike: both ask for the same clean stop."""

Handler = Callable[[int, Any], Any]


class Deadline(Protocol):
    """What a stop request starts: a countdown after which the process gives up waiting and exits (one with
    a ``cancel`` method is cancelled when the scope ends)."""

    def arm(self) -> None: ...


@contextlib.contextmanager
def signal_handlers(handler: Handler, signals: Iterable[signal.Signals] = TERMINATE) -> Iterator[None]:
    """``handler`` for ``signals`` while inside; each previous handler is restored on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            # None: the previous handler was not installed from Python; the default is the closest we can restore
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


@contextlib.contextmanager
def stop_on_signals(
    stop: threading.Event | None = None,
    deadline: Deadline | None = None,
    signals: Iterable[signal.Signals] = TERMINATE_OR_INTERRUPT,
) -> Iterator[threading.Event]:
    """An event that ``signals`` set while inside (``stop`` if given, e.g. one a client was built with); a
    signal also arms ``deadline`` (a bound on how long the clean stop may take), which is cancelled when the
    scope ends.

    A Python signal handler runs only when the main thread runs Python code: a main thread blocked in a C
    call (a synchronous commit or flush in librdkafka while the broker is gone) would not see the signal.
    So the signal also reaches a watcher thread through the interpreter's wakeup fd (written by the C-level
    handler at once), which sets the event and arms the deadline whatever the main thread is doing.
    """
    event = stop if stop is not None else threading.Event()
    wanted = tuple(signals)

    def request_stop(signum: int, frame: Any) -> None:
        event.set()
        if deadline is not None:
            deadline.arm()

    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    with signal_handlers(request_stop, wanted):
        previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)

        def watch() -> None:
            while data := reader.recv(64):
                if any(int(sig) in data for sig in wanted):
                    request_stop(0, None)

        watcher = threading.Thread(target=watch, name="stop-signals", daemon=True)
        watcher.start()
        try:
            yield event
        finally:
            cancel = getattr(deadline, "cancel", None)
            if cancel is not None:
                cancel()
            signal.set_wakeup_fd(previous_fd)
            with contextlib.suppress(OSError):
                reader.shutdown(socket.SHUT_RDWR)
            watcher.join(1.0)
            reader.close()
            writer.close()


@contextlib.contextmanager
def interrupt_on_signals(
    deadline: Deadline | None = None, signals: Iterable[signal.Signals] = TERMINATE
) -> Iterator[None]:
    """``signals`` raise KeyboardInterrupt while inside (for work that already stops cleanly on Ctrl-C), arming
    ``deadline`` first; the deadline is cancelled when the scope ends."""

    def interrupt(signum: int, frame: Any) -> None:
        if deadline is not None:
            deadline.arm()
        raise KeyboardInterrupt

    try:
        with signal_handlers(interrupt, signals):
            yield
    finally:
        cancel = getattr(deadline, "cancel", None)
        if cancel is not None:
            cancel()


def raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    """A handler that turns a signal into Ctrl-C (for work that already stops cleanly on KeyboardInterrupt)."""
    raise KeyboardInterrupt
