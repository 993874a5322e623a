"""The inline hand-off of streams/transport.py: a callback that suspends is resumed where it stopped.

The worker tests (test_agents, test_integration, test_restart, the demo) run every record through it;
these pin the two paths of the trampoline directly: a blocked hand-off completes once its future does,
and a cancellation (what ``wait_first`` does when a rebalance suspends the flow) reaches the callback.
"""

from __future__ import annotations

import asyncio

import pytest

from streams.transport import _HandOver


async def _callback(gate: asyncio.Future[int], trail: list[str]) -> int:
    trail.append("start")
    try:
        value = await gate
    except asyncio.CancelledError:
        trail.append("cancelled")
        raise
    trail.append("delivered")
    return value + 1


def test_a_suspended_callback_is_resumed_where_it_stopped() -> None:
    async def run() -> tuple[bool, list[str]]:
        gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        trail: list[str] = []
        coro = _callback(gate, trail)
        first = coro.send(None)  # runs inline up to the await, as the drain loop does
        assert first is gate and trail == ["start"]
        hand_over = _HandOver(coro, first)
        task = asyncio.ensure_future(hand_over.run())
        await asyncio.sleep(0)
        assert not task.done() and not hand_over.done
        gate.set_result(41)
        await task
        return hand_over.done, trail

    assert asyncio.run(run()) == (True, ["start", "delivered"])


def test_cancelling_a_blocked_hand_off_reaches_the_callback() -> None:
    async def run() -> list[str]:
        gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        trail: list[str] = []
        coro = _callback(gate, trail)
        hand_over = _HandOver(coro, coro.send(None))
        task = asyncio.ensure_future(hand_over.run())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not hand_over.done  # the drain loop reads a hand-off that did not finish again
        return trail

    assert asyncio.run(run()) == ["start", "cancelled"]


def test_a_callback_that_does_not_suspend_finishes_inline() -> None:
    async def quick() -> int:
        return 7

    coro = quick()
    with pytest.raises(StopIteration) as stop:
        coro.send(None)
    assert stop.value.value == 7
