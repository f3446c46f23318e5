"""The measurements a worker runs after the timed import (see ``benchmarks.worker``)."""

from __future__ import annotations

import asyncio
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.clients import BY_KEY, BenchClient, ClientSpec
from benchmarks.system import process_cpu_seconds, read_text
from benchmarks.workload import Target, Workload

Result = dict[str, Any]


class ServerClock:
    """The server's CPU seconds over a measured window (None where /proc is not available)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = process_cpu_seconds(pid) if pid else None

    def used(self) -> float | None:
        end = process_cpu_seconds(self.pid) if self.pid else None
        return None if end is None or self.start is None else end - self.start


def peak_rss_mb() -> float:
    """This process's peak resident set (MiB): VmHWM, else ru_maxrss.

    ru_maxrss survives execve on Linux, so a child would report its parent's peak if larger;
    VmHWM belongs to the process image alone.
    """
    status = read_text("/proc/self/status") or ""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def build(spec: ClientSpec, target: Target) -> BenchClient:
    assert spec.factory is not None, f"{spec.key} is import-only"
    return spec.factory(target)


def timed_calls(call: Callable[[], object], count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def measure_calls(spec: ClientSpec, target: Target, work: Workload, pid: int) -> Result:
    start = time.perf_counter()
    client = build(spec, target)
    built = time.perf_counter()
    reply = client.call()
    first = time.perf_counter()
    timed_calls(client.call, work.call_warmup)
    cpu = time.process_time()
    times = timed_calls(client.call, work.calls)
    cpu = time.process_time() - cpu
    client.close()
    return {
        "construct_s": built - start,
        "first_call_s": first - built,
        "call_s": statistics.median(times),
        "call_mean_s": statistics.fmean(times),
        "call_cpu_s": cpu / work.calls,
        "reply": reply,
        "rss_mb": peak_rss_mb(),
    }


def one_stream(client: BenchClient) -> tuple[float, float, int]:
    """(time to first chunk, time from the first chunk to the end, chunks the caller got)."""
    start = time.perf_counter()
    first = 0.0
    count = 0
    for _ in client.stream():
        if not count:
            first = time.perf_counter()
        count += 1
    return first - start, time.perf_counter() - first, count


def stream_text_ok(client: BenchClient, target: Target) -> bool:
    """Whether a stream's deltas add up to the emulator's reply (checks the client, untimed)."""
    return "".join(client.stream()) == "You said: " + target.long_prompt


def measure_stream(spec: ClientSpec, target: Target, work: Workload, pid: int) -> Result:
    client = build(spec, target)
    text_ok = stream_text_ok(client, target)
    for _ in range(work.stream_warmup):
        one_stream(client)
    clock, cpu = ServerClock(pid), time.process_time()
    runs = [one_stream(client) for _ in range(work.streams)]
    server_cpu, cpu = clock.used(), time.process_time() - cpu
    client.close()
    rest = [run[1] for run in runs]
    return {
        "ttfc_s": statistics.median(run[0] for run in runs),
        # Every client reads the same frames: divide by the frames after the first one.
        "chunk_s": statistics.median(rest) / (work.stream_chunks - 1),
        # CPU per chunk includes the request and the first chunk: a little above the wall figure.
        "chunk_cpu_s": cpu / work.streams / work.stream_chunks,
        "chunks_seen": runs[0][2],
        "stream_text_ok": text_ok,
        "server_cpu_per_stream_s": None if server_cpu is None else server_cpu / len(runs),
        "rss_mb": peak_rss_mb(),
    }


async def _concurrent(client: BenchClient, tasks: int, calls_each: int) -> None:
    async def task() -> None:
        for _ in range(calls_each):
            await client.acall()

    await asyncio.gather(*(task() for _ in range(tasks)))


async def _throughput(client: BenchClient, work: Workload, pid: int) -> Result:
    each = max(1, work.async_calls // work.concurrency)
    await _concurrent(client, work.concurrency, max(1, work.async_warmup // work.concurrency))
    clock, cpu, start = ServerClock(pid), time.process_time(), time.perf_counter()
    await _concurrent(client, work.concurrency, each)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    server_cpu = clock.used()
    await client.aclose()
    return {
        "async_rps": work.concurrency * each / wall,
        "server_busy": None if server_cpu is None else server_cpu / wall,
        "client_busy": cpu / wall,
    }


def measure_async(spec: ClientSpec, target: Target, work: Workload, pid: int) -> Result:
    client = build(spec, target)
    result = asyncio.run(_throughput(client, work, pid))
    client.close()
    result["rss_mb"] = peak_rss_mb()
    return result


def run(job: dict[str, Any]) -> Result:
    """The measurement ``job["kind"]`` of client ``job["client"]`` (already imported)."""
    work = Workload.from_json(job["workload"])
    target = Target(job["base_url"], work.words)
    kind, pid = job["kind"], job["server_pid"]
    if kind == "ceiling":
        from benchmarks.ceiling import measure_ceiling

        return measure_ceiling(target, work, pid)
    if kind == "import":
        return {}
    spec = BY_KEY[job["client"]]
    if kind == "all":  # smoke mode: everything in one process; quick, not a measurement
        return {
            key: value
            for measure in MEASURES.values()
            for key, value in measure(spec, target, work, pid).items()
        }
    return MEASURES[kind](spec, target, work, pid)


MEASURES: dict[str, Callable[[ClientSpec, Target, Workload, int], Result]] = {
    "calls": measure_calls,
    "stream": measure_stream,
    "async": measure_async,
}
