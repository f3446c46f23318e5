"""A stream left half-way closes its connection: cancelled, abandoned, or broken out of.

Every streaming path is read to its second item while the emulator holds the rest back (a
stall), so the connection is provably in use; then the caller walks away in one of three
ways, and the pool must hold no connection that is neither idle nor closed.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from opensearch_llm.emulator import Emulator, EmulatorServer, Fault
from tests.reliability.matrix import PATHS
from tests.reliability.surfaces import Settings, Surface, open_surface

#: The emulator stalls after this many frames, for longer than any test waits.
STALL = Fault("stall", after=4, delay=5.0)
#: Items read before the caller walks away.
TAKEN = 2
#: Seconds a walked-away stream may take to release its connection.
RELEASE_WITHIN = 2.0
STREAMING_PATHS = [path.key for path in PATHS if path.streams]


async def _opened(key: str, server: EmulatorServer, mode: str, emulator: Emulator) -> Surface:
    emulator.script_faults([STALL])
    # The stream-idle timeout outlasts the stall: only the caller can end the stream.
    settings = Settings(max_retries=0, timeout=10.0)
    return await open_surface(key, server, mode, True, settings)


async def _released(surface: Surface) -> bool:
    """Whether the pool has no busy connection, within ``RELEASE_WITHIN`` (the loop runs)."""
    deadline = time.monotonic() + RELEASE_WITHIN
    while surface.busy_connections():
        if time.monotonic() > deadline:
            return False
        gc.collect()
        await asyncio.sleep(0.01)
    return True


@pytest.mark.parametrize("key", STREAMING_PATHS)
async def test_break_out_of_a_sync_stream(
    key: str, server: EmulatorServer, emulator: Emulator
) -> None:
    surface = await _opened(key, server, "sync", emulator)
    try:
        pieces = await surface.open_pieces()
        busy_before: list[Any] = []
        for count, _ in enumerate(pieces, start=1):
            if count == TAKEN:
                busy_before = surface.busy_connections()
                break
        del pieces
        assert len(busy_before) == 1, "the stream was not open when the caller broke out"
        assert surface.busy_connections() == []
        assert emulator.request_count == 1
    finally:
        await surface.close()


async def _take(pieces: Any, count: int, taken: asyncio.Event | None = None) -> list[Any]:
    received = []
    async for item in pieces:
        received.append(item)
        if len(received) == count and taken is not None:
            taken.set()
    return received


async def _cancel(surface: Surface, pieces: Any) -> None:
    taken = asyncio.Event()
    task = asyncio.ensure_future(_take(pieces, TAKEN, taken))
    await asyncio.wait_for(taken.wait(), timeout=5)
    assert len(surface.busy_connections()) == 1, "the stream was not open"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _abandon(surface: Surface, pieces: Any) -> None:
    iterator = pieces.__aiter__()
    for _ in range(TAKEN):
        await iterator.__anext__()
    assert len(surface.busy_connections()) == 1, "the stream was not open"
    del iterator, pieces  # neither exhausted nor closed: the event loop finalizes it


WalkAway = Callable[[Surface, Any], Awaitable[None]]


@pytest.mark.parametrize("walk_away", [_cancel, _abandon], ids=["cancelled", "abandoned"])
@pytest.mark.parametrize("key", STREAMING_PATHS)
async def test_async_stream_left_half_way(
    key: str, walk_away: WalkAway, server: EmulatorServer, emulator: Emulator
) -> None:
    surface = await _opened(key, server, "async", emulator)
    try:
        start = time.monotonic()
        await walk_away(surface, await surface.open_pieces())
        assert await _released(surface), "the connection is still in use"
        assert time.monotonic() - start < STALL.seconds, "released only when the stall ended"
        assert emulator.request_count == 1
    finally:
        await surface.close()


async def test_the_pool_is_reused_after_a_cancelled_stream(
    server: EmulatorServer, emulator: Emulator
) -> None:
    surface = await _opened("core-chat", server, "async", emulator)
    try:
        await _cancel(surface, await surface.open_pieces())
        assert await _released(surface)
        assert (await surface.call()).text == surface.expected
        assert emulator.request_count == 2
    finally:
        await surface.close()
