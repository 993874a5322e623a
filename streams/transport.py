"""Faust's aiokafka transport with a cheaper hand-off of each fetched record to the streams.

Faust's fetcher hands every record over through ``Service.wait_first(callback(message),
suspend_flow.wait())``, which creates four tasks and an ``asyncio.wait`` per record: about a third of a
worker's CPU. Here the callback is first run inline; almost always it finishes without suspending (the
stream's queue has room, flow is not suspended, the producer buffer is not full) and nothing else is
needed. Only when it suspends does the record take Faust's path, with the callback resumed exactly where
it stopped, so a rebalance (``suspend_flow``) still cancels a blocked hand-off as before.

Selected with ``broker_consumer=broker_urls(bootstrap, SCHEME)`` (streams/app.py); producing is unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine, Generator
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka

SCHEME = "tillflow+kafka"


def broker_urls(bootstrap: str, scheme: str = "kafka") -> str:
    """Faust's broker setting for a ``host:port,host:port`` bootstrap list, with the transport's scheme."""
    return ";".join(f"{scheme}://{host}" for host in bootstrap.split(","))


class _Resume:
    """Awaitable that continues a coroutine which already yielded ``first`` (a future) to its caller."""

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self.coro, self.first = coro, first

    def __await__(self) -> Generator[Any, None, Any]:
        coro, yielded = self.coro, self.first
        while True:
            error: BaseException | None = None
            try:
                yield yielded
            except BaseException as exc:  # cancellation while blocked: deliver it to the callback
                error = exc
            try:
                yielded = coro.send(None) if error is None else coro.throw(error)
            except StopIteration as stop:
                return stop.value


async def _resume(coro: Coroutine[Any, Any, Any], first: Any) -> Any:
    return await _Resume(coro, first)


class Consumer(faust_aiokafka.Consumer):
    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - runs inside every worker test
        # faust.transport.consumer.Consumer._drain_messages (faust-streaming 0.15), hand-off changed.
        callback = cast(Callable[[Any], Coroutine[Any, Any, Any]], self.callback)
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        yield_every, num_since_yield = 100, 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await asyncio.sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            coro = callback(message)
                            try:
                                first = coro.send(None)
                            except StopIteration:
                                pass  # handed over without suspending: the usual case
                            else:
                                await self.wait_first(_resume(coro, first), self.suspend_flow.wait())
                            set_read_offset(tp, offset)
                        else:
                            self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r", offset, message.key, message.value)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)

    async def input_lag(self, topics: Collection[str]) -> dict[Any, int]:
        """Records not yet handed to the streams, per assigned partition of ``topics``.

        High watermark minus the next offset to hand over (the one after the last handed-over record, or the
        fetch position before any); partitions whose high watermark is not known yet are left out.
        """
        lags: dict[Any, int] = {}
        for tp in self.assignment():
            if tp.topic not in topics:
                continue
            high = self.highwater(tp)
            if high is None:
                continue
            read = self._read_offset.get(tp)
            following = read + 1 if read is not None else await self.position(tp)
            if following is not None:
                lags[tp] = max(int(high) - int(following), 0)
        return lags


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer


TRANSPORTS.aliases.setdefault(SCHEME, f"{__name__}:Transport")
