"""Throughput of the emulator under uvicorn on one core: non-streamed requests/s, streamed chunks/s.

    python tests/emulator/bench_emulator.py [--http auto|h11|httptools] [--seconds 5]

The server runs in a child process pinned to CPU 0 (``serve()``, the code path tests use); the
load comes from ``wrk`` when it is installed (pinned to the other CPUs), else from a small asyncio
keep-alive client in this process. Chunks/s = streamed responses/s x frames per response.
Not collected by pytest (the file name does not start with ``test_``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import tempfile
import time
from typing import Any

CHAT_PATH = "/compatible-mode/v1/chat/completions"
SHORT = {"model": "qwen-plus", "messages": [{"role": "user", "content": "Recommend one book"}]}


def stream_body(words: int) -> dict[str, Any]:
    text = " ".join(["word"] * words)
    return {
        "model": "qwen-plus",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": text}],
    }


def _pin(cpus: set[int]) -> None:
    if hasattr(os, "sched_setaffinity") and cpus & os.sched_getaffinity(0):
        os.sched_setaffinity(0, cpus & os.sched_getaffinity(0))


def _server(conn: Any, http: str) -> None:
    """Serve until told to stop; answer each message with this process's CPU seconds."""
    _pin({0})
    from opensearch_llm.emulator import Emulator, serve

    with serve(Emulator(max_recorded=1000), http=http) as server:
        conn.send(server.port)
        while conn.recv() != "stop":
            conn.send(time.process_time())


def _request_bytes(port: int, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST {CHAT_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer bench\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    match = re.search(rb"(?i)content-length: *(\d+)", head)
    if match:
        return await reader.readexactly(int(match.group(1)))
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append((await reader.readexactly(size + 2))[:-2])


async def _worker(port: int, request: bytes, deadline: float, done: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.perf_counter() < deadline:
        writer.write(request)
        await _read_response(reader)
        done[0] += 1
    writer.close()


async def _python_load(port: int, body: dict[str, Any], seconds: float, connections: int) -> float:
    request = _request_bytes(port, body)
    done = [0]
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(*(_worker(port, request, deadline, done) for _ in range(connections)))
    return done[0] / (time.perf_counter() - start)


_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench"
wrk.body = {body}
"""


def _wrk_load(port: int, body: dict[str, Any], seconds: float, connections: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA.format(body=json.dumps(json.dumps(body))))
    others = sorted(os.sched_getaffinity(0) - {0}) if hasattr(os, "sched_getaffinity") else []
    pin = (
        ["taskset", "-c", ",".join(map(str, others))] if others and shutil.which("taskset") else []
    )
    command = [
        *pin,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "-s",
        script.name,
        f"http://127.0.0.1:{port}{CHAT_PATH}",
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]


def _frames_per_stream(port: int, body: dict[str, Any]) -> int:
    async def one() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_request_bytes(port, body))
        data = await _read_response(reader)
        writer.close()
        return data

    return asyncio.run(one()).count(b"data: ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--http", default="auto", help="uvicorn HTTP protocol: auto, h11, httptools"
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--stream-connections", type=int, default=4)
    parser.add_argument("--words", type=int, default=2000, help="words in the streamed reply")
    parser.add_argument("--python-client", action="store_true", help="do not use wrk")
    args = parser.parse_args()

    conn, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_server, args=(child, args.http), daemon=True)
    server.start()
    port = conn.recv()

    def server_cpu() -> float:
        conn.send("cpu")
        return float(conn.recv())

    use_wrk = shutil.which("wrk") is not None and not args.python_client
    _pin(set(os.sched_getaffinity(0)) - {0} if hasattr(os, "sched_getaffinity") else set())

    def load(body: dict[str, Any], connections: int) -> tuple[float, float]:
        """Responses per wall second, and per CPU second the server used."""
        cpu, start = server_cpu(), time.perf_counter()
        if use_wrk:
            rate = _wrk_load(port, body, args.seconds, connections)
        else:
            rate = asyncio.run(_python_load(port, body, args.seconds, connections))
        wall, used = time.perf_counter() - start, server_cpu() - cpu
        return rate, rate * wall / used

    try:
        requests, requests_cpu = load(SHORT, args.connections)
        streamed = stream_body(args.words)
        frames = _frames_per_stream(port, streamed)
        streams, streams_cpu = load(streamed, args.stream_connections)
    finally:
        conn.send("stop")
        server.join(10)
    client = "wrk" if use_wrk else "python asyncio client"
    print(f"uvicorn http={args.http}, load from {client}, server pinned to CPU 0")
    print(f"non-streamed: {requests:,.0f} requests/s ({requests_cpu:,.0f} per server CPU second)")
    print(
        f"streamed: {streams * frames:,.0f} chunks/s ({streams_cpu * frames:,.0f} per server CPU "
        f"second; {frames} frames per stream)"
    )


if __name__ == "__main__":
    main()
