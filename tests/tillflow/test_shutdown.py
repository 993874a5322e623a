"""The bounded stop: once SIGTERM arrived, a process whose clean stop hangs exits after its deadline."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import pytest

from tillflow.lifecycle import stop_on_signals
from tillflow.shutdown import EXIT_STOP_TIMEOUT, StopDeadline


def test_an_armed_deadline_exits_with_its_code_after_its_seconds_once() -> None:
    exits: list[tuple[int, float]] = []
    done = threading.Event()
    started = time.monotonic()

    def fake_exit(code: int) -> None:
        exits.append((code, time.monotonic() - started))
        done.set()

    deadline = StopDeadline(0.3, "the test process", exit=fake_exit)
    assert not deadline.armed
    deadline.arm()
    deadline.arm()  # a second SIGTERM does not start a second countdown
    assert done.wait(5)
    time.sleep(0.3)
    assert len(exits) == 1 and exits[0][0] == EXIT_STOP_TIMEOUT and exits[0][1] >= 0.3


def test_a_deadline_never_armed_never_exits() -> None:
    exits: list[int] = []
    StopDeadline(0.05, "idle", exit=exits.append)
    time.sleep(0.2)
    assert exits == []


def test_sigterm_inside_stop_on_signals_sets_the_stop_and_arms_the_deadline() -> None:
    stop = threading.Event()
    deadline = StopDeadline(60, "the test process", exit=lambda code: None)
    previous = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(stop, deadline):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler runs between bytecodes of the main thread
        assert stop.is_set() and deadline.armed
    assert signal.getsignal(signal.SIGTERM) is previous


def test_a_cancelled_deadline_or_one_whose_handler_is_gone_never_exits() -> None:
    """A command that returned cancels its deadline (or restored the previous SIGTERM handler): a process that
    goes on after it, such as a test invoking the command, is not ended."""
    exits: list[int] = []
    cancelled = StopDeadline(0.1, "cancelled", exit=exits.append)
    cancelled.arm()
    cancelled.cancel()
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        replaced = StopDeadline(0.1, "replaced", exit=exits.append)
        replaced.arm()
    finally:
        signal.signal(signal.SIGTERM, previous)
    time.sleep(0.4)
    assert exits == []


def test_arming_says_once_in_the_log_why_the_process_stops(caplog: pytest.LogCaptureFixture) -> None:
    deadline = StopDeadline(30, "the stream worker", exit=lambda code: None)
    with caplog.at_level(logging.WARNING, logger="tillflow.shutdown"):
        deadline.arm()
        deadline.arm()
    deadline.cancel()
    lines = [r.getMessage() for r in caplog.records if r.name == "tillflow.shutdown"]
    assert lines == ["the stream worker: stop requested (SIGTERM or Ctrl-C): stopping cleanly, within 30 s"]
