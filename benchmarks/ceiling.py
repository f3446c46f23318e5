"""The server's ceiling: how fast the emulator answers when the client costs (almost) nothing.

A raw-socket asyncio client (prebuilt request bytes, HTTP/1.1 keep-alive, no parsing beyond
framing) loads the server for a few seconds: ``concurrency`` connections of non-streamed calls,
then a few connections of 500-chunk streams. Reported: responses per wall second, and per CPU
second the server used (its capacity on one whole core, whatever the load generator manages).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

from benchmarks.measure import ServerClock
from benchmarks.workload import Target, Workload

_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


def request_bytes(target: Target, body: dict[str, Any]) -> bytes:
    url = urlsplit(target.url)
    data = json.dumps(body).encode()
    head = (
        f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {target.api_key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """The body of one response, by Content-Length or chunked framing."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = _CONTENT_LENGTH.search(head)
    if length:
        return await reader.readexactly(int(length.group(1)))
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append((await reader.readexactly(size + 2))[:-2])


async def _connection(target: Target, request: bytes, deadline: float, done: list[int]) -> None:
    url = urlsplit(target.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    while time.perf_counter() < deadline:
        writer.write(request)
        await read_response(reader)
        done[0] += 1
    writer.close()
    await writer.wait_closed()


async def _load(target: Target, request: bytes, seconds: float, connections: int) -> int:
    done = [0]
    deadline = time.perf_counter() + seconds
    await asyncio.gather(
        *(_connection(target, request, deadline, done) for _ in range(connections))
    )
    return done[0]


def _rates(
    target: Target, request: bytes, seconds: float, connections: int, pid: int
) -> tuple[float, float | None]:
    """Responses per wall second, and per CPU second the server used (None without /proc)."""
    clock = ServerClock(pid)
    start = time.perf_counter()
    responses = asyncio.run(_load(target, request, seconds, connections))
    wall = time.perf_counter() - start
    used = clock.used()
    return responses / wall, (responses / used if used else None)


def _frames(target: Target, request: bytes) -> int:
    async def one() -> bytes:
        url = urlsplit(target.url)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write(request)
        body = await read_response(reader)
        writer.close()
        await writer.wait_closed()
        return body

    return asyncio.run(one()).count(b"data: {")


def measure_ceiling(target: Target, work: Workload, pid: int) -> dict[str, Any]:
    short = request_bytes(target, {"model": target.model, "messages": target.messages(long=False)})
    long = request_bytes(
        target,
        {
            "model": target.model,
            "messages": target.messages(long=True),
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    rps, rps_cpu = _rates(target, short, work.ceiling_seconds, work.concurrency, pid)
    frames = _frames(target, long)
    streams = work.ceiling_stream_connections
    sps, sps_cpu = _rates(target, long, work.ceiling_seconds, streams, pid)
    return {
        "server_rps": rps,
        "server_rps_per_cpu": rps_cpu,
        "server_chunks_per_s": sps * frames,
        "server_chunks_per_cpu": None if sps_cpu is None else sps_cpu * frames,
        "frames_per_stream": frames,
    }
