"""Signal handling for a scope (tillflow/lifecycle.py): the stop is requested, the previous handler comes back."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tillflow.lifecycle import TERMINATE, raise_keyboard_interrupt, signal_handlers, stop_on_signals


def test_sigterm_sets_the_stop_and_the_previous_handler_is_restored() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: seen.append(signum))
    try:
        with stop_on_signals(signals=TERMINATE) as stop:
            assert not stop.is_set()
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.wait(5)
        assert seen == []  # the scope's handler took it
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM]  # the caller's handler is back
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_given_event_is_the_one_set_and_sigint_can_stop_too() -> None:
    stop = threading.Event()
    before = signal.getsignal(signal.SIGINT)
    with stop_on_signals(stop) as got:
        assert got is stop
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.wait(5)
    assert signal.getsignal(signal.SIGINT) is before


def test_a_signal_can_be_turned_into_ctrl_c() -> None:
    with pytest.raises(KeyboardInterrupt), signal_handlers(raise_keyboard_interrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        threading.Event().wait(5)


def test_outside_the_main_thread_nothing_is_installed() -> None:
    before = signal.getsignal(signal.SIGTERM)
    inside: list[object] = []

    def run() -> None:
        with stop_on_signals() as stop:
            inside.append(signal.getsignal(signal.SIGTERM))
            inside.append(stop.is_set())

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert inside == [before, False]


def test_a_stop_signal_arms_the_deadline() -> None:
    class Countdown:
        armed = 0
        cancelled = False

        def arm(self) -> None:
            self.armed += 1

        def cancel(self) -> None:
            self.cancelled = True

    countdown = Countdown()
    with stop_on_signals(deadline=countdown) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
    assert countdown.armed and countdown.cancelled  # armed (handler and watcher may both arm it), then cancelled


def test_a_signal_reaches_the_stop_while_the_main_thread_is_blocked_in_c() -> None:
    """The wakeup-fd watcher sets the stop even when no Python bytecode runs in the main thread."""
    with stop_on_signals() as stop:
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()
        time.sleep(0.5)  # C-level sleep; the Python handler runs only after it
        assert stop.is_set()
