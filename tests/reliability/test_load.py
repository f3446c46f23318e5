"""Load against the emulator served on 127.0.0.1 by a separate process.

- 10,000 async calls at concurrency 256: no error, no connection left in use, and the
  resident memory after them no higher (beyond a generous bound) than after 1,000.
- 1,000 streams open at the same time (each waits, after its first chunk, until all are
  open): no error, no connection left in use.
- With 10% of requests failing with 503 (the emulator's seeded ``fault_rate``), every call
  and every stream still succeeds, through retries.

Counts come from ``RELIABILITY_LOAD_CALLS`` (default 10,000), ``RELIABILITY_LOAD_STREAMS``
(1,000), ``RELIABILITY_LOAD_FAULTY_CALLS`` (1,000) and ``RELIABILITY_LOAD_FAULTY_STREAMS`` (500). Figures (time, requests per second,
resident and peak memory) are printed in the terminal summary.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opensearch_llm import AsyncChatClient
from tests.connections import busy_connections
from tests.reliability.load_server import LoadServer, load_server
from tests.reliability.support import (
    CHAT_ANSWER,
    CHAT_MODEL,
    KEY,
    LOAD_FIGURES,
    QUESTION,
    fast_backoff,
    memory_kib,
)

CALLS = int(os.environ.get("RELIABILITY_LOAD_CALLS", "10000"))
STREAMS = int(os.environ.get("RELIABILITY_LOAD_STREAMS", "1000"))
FAULTY_CALLS = int(os.environ.get("RELIABILITY_LOAD_FAULTY_CALLS", "1000"))
FAULTY_STREAMS = int(os.environ.get("RELIABILITY_LOAD_FAULTY_STREAMS", "500"))
WARM_UP_CALLS = min(1000, CALLS)
CONCURRENCY = 256
#: Resident memory may grow this much between the 1,000-call run and the 10,000-call run.
RSS_GROWTH_LIMIT_MIB = 50
MESSAGES = [{"role": "user", "content": QUESTION}]


@pytest.fixture(scope="module")
def clean_server() -> Iterator[LoadServer]:
    with load_server() as server:
        yield server


@pytest.fixture(scope="module")
def faulty_server() -> Iterator[LoadServer]:
    with load_server(fault_rate={"503": 0.1}, seed=7) as server:
        yield server


@dataclass
class Run:
    """What one run measured."""

    count: int
    seconds: float
    errors: list[BaseException]
    rss_mib: float
    peak_mib: float

    def figures(self) -> str:
        """One line for the summary."""
        rate = self.count / self.seconds if self.seconds else 0.0
        return (
            f"{self.count} in {self.seconds:.1f} s ({rate:.0f}/s), {len(self.errors)} errors, "
            f"RSS {self.rss_mib:.0f} MiB, peak {self.peak_mib:.0f} MiB"
        )


def _mib(field: str) -> float:
    return memory_kib(field) / 1024


def _reset_peak() -> None:
    # Linux: writing 5 to clear_refs resets VmHWM, so each run reports its own peak.
    Path("/proc/self/clear_refs").write_text("5")


async def _measured(count: int, work: Callable[[], Awaitable[list[BaseException]]]) -> Run:
    gc.collect()
    _reset_peak()
    start = time.monotonic()
    errors = await work()
    seconds = time.monotonic() - start
    gc.collect()
    return Run(count, seconds, errors, _mib("VmRSS"), _mib("VmHWM"))


async def _call(client: AsyncChatClient) -> None:
    answer = await client.create(model=CHAT_MODEL, messages=MESSAGES)
    assert answer["choices"][0]["message"]["content"] == CHAT_ANSWER


async def _calls(client: AsyncChatClient, count: int) -> list[BaseException]:
    """``count`` calls by ``CONCURRENCY`` workers; the errors."""
    numbers = iter(range(count))
    errors: list[BaseException] = []

    async def worker() -> None:
        for _ in numbers:  # one iterator shared by every worker: each call runs once
            try:
                await _call(client)
            except Exception as error:
                errors.append(error)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return errors


async def _streams(client: AsyncChatClient, count: int) -> list[BaseException]:
    """``count`` streams, all open at once: each waits after its first chunk for the others."""
    opened = 0
    all_open = asyncio.Event()

    async def one() -> None:
        nonlocal opened
        async with client.stream(model=CHAT_MODEL, messages=MESSAGES) as stream:
            chunks = stream.__aiter__()
            await chunks.__anext__()
            opened += 1
            if opened == count:
                all_open.set()
            await asyncio.wait_for(all_open.wait(), timeout=120)
            async for _ in chunks:
                pass
        assert stream.completion()["choices"][0]["message"]["content"] == CHAT_ANSWER

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    return [r for r in results if isinstance(r, BaseException)]


def _client(server: LoadServer, **options: Any) -> AsyncChatClient:
    client = AsyncChatClient(KEY, base_url=server.origin + "/compatible-mode/v1", **options)
    fast_backoff(client)
    return client


def _record(name: str, run: Run) -> None:
    LOAD_FIGURES[name] = run.figures()


async def test_10000_calls_at_concurrency_256(clean_server: LoadServer) -> None:
    async with _client(clean_server, max_retries=0) as client:
        small = await _measured(WARM_UP_CALLS, lambda: _calls(client, WARM_UP_CALLS))
        large = await _measured(CALLS, lambda: _calls(client, CALLS))
        _record(f"calls x{WARM_UP_CALLS}", small)
        _record(f"calls x{CALLS}", large)
        assert small.errors == [] and large.errors == []
        assert busy_connections(client) == []
    growth = large.rss_mib - small.rss_mib
    LOAD_FIGURES["RSS growth, 1,000 -> 10,000 calls"] = f"{growth:+.1f} MiB"
    assert growth < RSS_GROWTH_LIMIT_MIB
    assert large.peak_mib - small.peak_mib < RSS_GROWTH_LIMIT_MIB


async def test_1000_concurrent_streams(clean_server: LoadServer) -> None:
    # The default pool holds 256 connections; 1,000 streams open at once need 1,000.
    async with _client(clean_server, max_retries=0, max_connections=STREAMS) as client:
        run = await _measured(STREAMS, lambda: _streams(client, STREAMS))
        _record(f"concurrent streams x{STREAMS}", run)
        assert run.errors == []
        assert busy_connections(client) == []


class _Retries(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += record.getMessage().startswith("retrying")


async def test_every_call_succeeds_through_10_percent_of_503(faulty_server: LoadServer) -> None:
    retries = _Retries()
    logger = logging.getLogger("opensearch_llm")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(retries)
    connections = max(FAULTY_STREAMS, CONCURRENCY)
    try:
        async with _client(faulty_server, max_retries=8, max_connections=connections) as client:
            calls = await _measured(FAULTY_CALLS, lambda: _calls(client, FAULTY_CALLS))
            streams = await _measured(FAULTY_STREAMS, lambda: _streams(client, FAULTY_STREAMS))
            assert busy_connections(client) == []
    finally:
        logger.removeHandler(retries)
        logger.setLevel(level)
    _record(f"calls x{FAULTY_CALLS}, 10% 503", calls)
    _record(f"concurrent streams x{FAULTY_STREAMS}, 10% 503", streams)
    LOAD_FIGURES["retries under 10% 503"] = str(retries.count)
    assert calls.errors == [] and streams.errors == []
    attempts = FAULTY_CALLS + FAULTY_STREAMS
    assert 0.05 * attempts < retries.count < 0.2 * attempts, "the 503s were not retried"
    faulty_server.stop()
    sent = (faulty_server.request_count, attempts, retries.count)
    assert faulty_server.request_count == attempts + retries.count, sent
