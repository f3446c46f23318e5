"""Send the requests of one call side by side, at most ``limit`` at a time; results in order.

A call split into several requests (embeddings of many texts, rerank of many documents) is
latency-bound: the requests go out together. Async: a task per request on the caller's loop,
at most as many in flight as the client's ``ConcurrencyLimit`` allows (across all its calls in
that loop). Sync: a thread pool of ``limit`` threads made for the call (the sync transport's
``httpx.Client`` is thread-safe, and a thread costs far less than a request's round trip; no
event loop runs behind a sync method). The first failure (a Ctrl-C too) cancels what has not
started and is raised at once; requests already sent are cancelled (async) or left to finish
in their threads, unawaited (sync).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_THREAD_PREFIX = "opensearch-llm"


class ConcurrencyLimit:
    """At most ``limit`` requests in flight: one ``asyncio.Semaphore`` per running event loop.

    A semaphore belongs to the loop that first waits on it, and ``asyncio.run`` twice, notebooks
    and threads each bring their own loop: each loop gets its own semaphore, made on first use.
    Copies and pickled copies (Ray, multiprocessing) take only ``limit``.
    """

    __slots__ = ("_lock", "_semaphores", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._semaphores = weakref.WeakKeyDictionary()

    def semaphore(self) -> asyncio.Semaphore:
        """The running loop's semaphore."""
        loop = asyncio.get_running_loop()
        found = self._semaphores.get(loop)
        if found is not None:
            return found
        with self._lock:
            # A semaphore that was waited on refers to its loop, which would keep the weak key
            # alive: drop those of closed loops, which can never wait again.
            for ended in [other for other in self._semaphores if other.is_closed()]:
                del self._semaphores[ended]
            return self._semaphores.setdefault(loop, asyncio.Semaphore(self.limit))

    def __reduce__(self) -> tuple[type[ConcurrencyLimit], tuple[int]]:
        return (ConcurrencyLimit, (self.limit,))


def run_all(call: Callable[[T], R], items: Sequence[T], limit: int) -> list[R]:
    """``call(item)`` for each item, up to ``limit`` in threads at once; results in order."""
    if len(items) <= 1 or limit <= 1:
        return [call(item) for item in items]
    pool = ThreadPoolExecutor(min(limit, len(items)), thread_name_prefix=_THREAD_PREFIX)
    try:
        futures = [pool.submit(call, item) for item in items]
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future.done() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        results = [future.result() for future in futures]
    except BaseException:
        # A failure or a Ctrl-C: raise now; the requests in flight cannot be stopped mid-way.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return results


async def arun_all(
    call: Callable[[T], Awaitable[R]], items: Sequence[T], limit: ConcurrencyLimit
) -> list[R]:
    """``await call(item)`` for each item, as many at once as ``limit`` lets; results in order.

    The limit is the client's: concurrent calls on one client in one loop share its bound.
    """
    gate = limit.semaphore()

    async def bounded(item: T) -> R:
        async with gate:
            return await call(item)

    if len(items) <= 1:
        return [await bounded(item) for item in items]
    tasks = [asyncio.ensure_future(bounded(item)) for item in items]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
