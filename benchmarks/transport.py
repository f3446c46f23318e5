"""The transport suite's measurements, in a worker process (``benchmarks.worker``).

- ``acalls``: non-streamed calls from ``concurrency`` asyncio tasks sharing one client (the
  default event loop): calls per second and the client process's CPU time per call.
- ``astreams``: ``stream_concurrency`` concurrent 500-chunk streams: chunks per second handed to
  the caller, CPU per chunk.
- ``ttfc``: a fresh client's first ``ttfc_streams`` streams, one after the other, through the
  latency-injecting TLS proxy (``benchmarks.tlsproxy``): the time to each first chunk, and the
  connections the proxy accepted meanwhile. Another client has streamed once before in the
  same process (and been closed): imports and first-run costs are not in the figures.
- ``all`` (smoke): each of the above the client takes part in, in one process.

Every loop is bounded by a count and by seconds: tasks start no new call once either is spent,
and what is still running at the time limit is cancelled and counted as ``unfinished``. Errors
are counted, never raised. A worker prints ``{"records": [...]}``, one record per measurement.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.clients import BenchClient
from benchmarks.measure import ServerClock, peak_rss_mb
from benchmarks.transport_clients import CALLS, STREAMS, TRANSPORT_BY_KEY, TTFC, TransportSpec
from benchmarks.workload import MAX_CONNECTIONS, Target, TransportWorkload

Result = dict[str, Any]
#: Seconds allowed to cancel what runs at a time limit, and to close a client.
CLEANUP_SECONDS = 15.0
#: Seconds one stream through the proxy may take.
TTFC_STREAM_SECONDS = 30.0


@dataclass
class Window:
    """What a bounded closed loop did until it ended (all done, or its time limit)."""

    ok: int = 0
    errors: int = 0
    items: int = 0
    issued: int = 0
    unfinished: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    server_cpu: float | None = None
    first_error: str | None = None
    sample: str | None = None


Operation = Callable[[Window], Awaitable[str]]


async def closed_loop(
    operation: Operation, tasks: int, budget: int, seconds: float, server_pid: int = 0
) -> Window:
    """``tasks`` tasks run ``operation`` back to back, ``budget`` times in all at most, for
    ``seconds`` at most; what still runs then is cancelled. Figures are taken at the end."""
    window = Window()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while window.issued < budget and time.perf_counter() < deadline:
            window.issued += 1
            try:
                reply = await operation(window)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                window.errors += 1
                if window.first_error is None:
                    window.first_error = f"{type(error).__name__}: {error}"[:300]
            else:
                window.ok += 1
                if window.sample is None:
                    window.sample = reply

    clock, cpu, start = ServerClock(server_pid), time.process_time(), time.perf_counter()
    running = [asyncio.ensure_future(worker()) for _ in range(tasks)]
    _, pending = await asyncio.wait(running, timeout=max(deadline - time.perf_counter(), 0.0))
    window.wall = time.perf_counter() - start
    window.cpu = time.process_time() - cpu
    window.server_cpu = clock.used()
    window.unfinished = window.issued - window.ok - window.errors
    snapshot = Window(**vars(window))
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=CLEANUP_SECONDS)
    return snapshot


def _call(client: BenchClient) -> Operation:
    async def call(window: Window) -> str:
        return await client.acall()

    return call


def _stream(client: BenchClient) -> Operation:
    async def stream(window: Window) -> str:
        parts = []
        async for delta in client.astream():
            window.items += 1
            parts.append(delta)
        return "".join(parts)

    return stream


async def _aclose(client: BenchClient) -> str | None:
    try:
        await asyncio.wait_for(client.aclose(), CLEANUP_SECONDS)
    except Exception as error:
        return f"{type(error).__name__}: {error}"[:300]
    return None


def _figures(window: Window, count: int, per: str) -> Result:
    """The common figures of a window; CPU seconds per ``count`` (calls or chunks)."""
    return {
        "ok": window.ok,
        "errors": window.errors,
        "unfinished": window.unfinished,
        "seconds": window.wall,
        "first_error": window.first_error,
        "client_busy": window.cpu / window.wall if window.wall else None,
        "server_busy": None if window.server_cpu is None else window.server_cpu / window.wall,
        f"cpu_per_{per}_s": window.cpu / count if count else None,
    }


async def _calls(
    spec: TransportSpec, target: Target, work: TransportWorkload, pid: int, level: int
) -> Result:
    client = spec.factory(target)  # type: ignore[misc]
    warm = await closed_loop(
        _call(client), min(level, MAX_CONNECTIONS), work.call_warmup, work.call_seconds
    )
    window = await closed_loop(_call(client), level, work.calls, work.call_seconds, pid)
    close_error = await _aclose(client)
    client.close()
    return {
        "kind": CALLS,
        "concurrency": level,
        "rps": window.ok / window.wall if window.wall else 0.0,
        **_figures(window, window.ok, "call"),
        "reply": warm.sample,
        "reply_ok": warm.sample == "You said: " + target.short_prompt,
        "warmup_errors": warm.errors,
        "close_error": close_error,
    }


async def _streams(
    spec: TransportSpec, target: Target, work: TransportWorkload, pid: int
) -> Result:
    client = spec.factory(target)  # type: ignore[misc]
    # Open the pool (non-streamed calls), then the stream's code paths, then measure.
    tasks = work.stream_concurrency
    warm = await closed_loop(_call(client), tasks, tasks, work.call_seconds)
    check = await closed_loop(_stream(client), 1, 2, work.stream_seconds)
    window = await closed_loop(_stream(client), tasks, work.streams, work.stream_seconds, pid)
    close_error = await _aclose(client)
    client.close()
    return {
        "kind": STREAMS,
        "concurrency": tasks,
        "chunks_per_s": window.items / window.wall if window.wall else 0.0,
        "chunks": window.items,
        "chunks_per_stream": check.items / check.ok if check.ok else None,
        **_figures(window, window.items, "chunk"),
        "stream_text_ok": check.sample == "You said: " + target.long_prompt,
        "warmup_errors": warm.errors + check.errors,
        "close_error": close_error,
    }


def _ttfc_sync(client: BenchClient, count: int) -> list[tuple[float, float, str]]:
    runs = []
    for _ in range(count):
        start, first, parts = time.perf_counter(), None, []
        for delta in client.stream():
            if first is None:
                first = time.perf_counter()
            parts.append(delta)
        end = time.perf_counter()
        runs.append(((first or end) - start, end - start, "".join(parts)))
    client.close()
    return runs


async def _ttfc_async(client: BenchClient, count: int) -> list[tuple[float, float, str]]:
    async def one() -> tuple[float, float, str]:
        start, first, parts = time.perf_counter(), None, []
        async for delta in client.astream():
            if first is None:
                first = time.perf_counter()
            parts.append(delta)
        end = time.perf_counter()
        return (first or end) - start, end - start, "".join(parts)

    try:
        return [await asyncio.wait_for(one(), TTFC_STREAM_SECONDS) for _ in range(count)]
    finally:
        await _aclose(client)


def _streams_of(
    spec: TransportSpec, target: Target, mode: str, count: int
) -> list[tuple[float, float, str]]:
    """(time to first chunk, time of the stream, text) of a fresh client's ``count`` streams."""
    client = spec.factory(target)  # type: ignore[misc]
    if mode == "sync":
        return _ttfc_sync(client, count)
    return asyncio.run(_ttfc_async(client, count))


def _ttfc(spec: TransportSpec, job: dict[str, Any], work: TransportWorkload, mode: str) -> Result:
    """A first client streams once (untimed: lazy imports, code paths) and is closed; then a
    fresh client's streams are timed, and the proxy's new connections counted."""
    from benchmarks.tlsproxy import connections

    target = Target(job["tls_base_url"], work.words)
    control = job["control_port"]
    result: Result = {"kind": TTFC, "mode": mode}
    try:
        _streams_of(spec, target, mode, 1)
        before, start = connections(control), time.perf_counter()
        runs = _streams_of(spec, target, mode, work.ttfc_streams)
    except Exception as error:
        result.update(errors=1, first_error=f"{type(error).__name__}: {error}"[:300])
        return result
    result.update(
        errors=0,
        build_and_streams_s=time.perf_counter() - start,
        ttfc_s=[run[0] for run in runs],
        stream_s=[run[1] for run in runs],
        connections=connections(control) - before,
        stream_text_ok=all(run[2] == "You said: " + target.long_prompt for run in runs),
    )
    return result


def run(job: dict[str, Any]) -> Result:
    """The measurement(s) of ``job`` for client ``job["client"]`` (already imported)."""
    work = TransportWorkload.from_json(job["workload"])
    target = Target(job["base_url"], work.words)
    spec, pid, kind = TRANSPORT_BY_KEY[job["client"]], job["server_pid"], job["kind"]
    if kind == "all":  # smoke: everything this client takes part in, in one process
        jobs: list[tuple[str, dict[str, Any]]] = []
        if spec.calls:
            jobs += [(CALLS, {"concurrency": level}) for level in work.levels]
        jobs += spec.kinds()
    else:
        jobs = [(kind, {k: job[k] for k in ("concurrency", "mode") if k in job})]
    records = []
    for one_kind, parameters in jobs:
        if one_kind == CALLS:
            record = asyncio.run(_calls(spec, target, work, pid, parameters["concurrency"]))
        elif one_kind == STREAMS:
            record = asyncio.run(_streams(spec, target, work, pid))
        else:
            record = _ttfc(spec, job, work, parameters["mode"])
        records.append({**record, "rss_mb": peak_rss_mb()})
    return {"records": records}
