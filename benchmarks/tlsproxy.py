"""A TLS proxy on 127.0.0.1 that adds network latency: ``python -m benchmarks.tlsproxy``.

For the time-to-first-chunk figures of the transport suite: what a client pays before its first
token over a real network (TLS handshakes and round trips) that loopback hides. One asyncio
process, three listeners on 127.0.0.1:

- the front, what clients connect to: plain TCP carrying the client's TLS; each direction's
  bytes are forwarded ``delay`` seconds after they arrive (a link with that one-way latency and
  no bandwidth limit). A new connection's first bytes wait one round trip more (2 x delay): the
  TCP handshake, which loopback completes at once. So a new connection costs the round trips it
  costs on a network (TCP, then TLS 1.3's one), and a reused one none;
- behind it, the TLS terminator: a certificate for 127.0.0.1 signed by a CA made at start
  (``trustme``), whose certificate is written to ``--ca-file`` for the clients to trust
  (``SSL_CERT_FILE``); the plain HTTP goes on to the emulator;
- control: answers the number of front connections accepted so far, then closes (a worker
  asks before and after its streams: connections its client opened).

Prints ``{"port", "control_port", "pid", "ca_file"}`` on one line, serves until its standard
input closes. ``ProxyProcess`` starts and stops it from the runner.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import ssl
import subprocess
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from benchmarks.server import stop_child
from benchmarks.system import pin_to

READ_SIZE = 65536
#: Seconds a proxied connection may wait to connect to the next hop.
CONNECT_SECONDS = 10.0


def server_context(ca_file: str) -> ssl.SSLContext:
    """A server context with a new certificate for 127.0.0.1; its CA is written to ``ca_file``."""
    import trustme

    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    authority.cert_pem.write_to_path(ca_file)
    return context


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: float = 0.0,
    first_extra: float = 0.0,
) -> None:
    """Copy ``reader`` to ``writer``, each piece ``delay`` seconds after it arrived, in order.

    The first piece waits ``first_extra`` seconds more. At the end of the input, the output is
    ended (``write_eof``) where it can be, else closed.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read() -> None:
        extra, last_due = first_extra, 0.0
        try:
            while True:
                data = await reader.read(READ_SIZE)
                last_due = max(loop.time() + delay + extra, last_due)
                extra = 0.0
                queue.put_nowait((last_due, data))
                if not data:
                    return
        except (ConnectionError, ssl.SSLError, OSError):
            queue.put_nowait((loop.time(), b""))

    async def write() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                await _end(writer)
                return
            writer.write(data)
            await writer.drain()

    if not delay and not first_extra:
        await _copy(reader, writer)
        return
    reading = asyncio.ensure_future(read())
    try:
        await write()
    finally:
        reading.cancel()
        with contextlib.suppress(BaseException):
            await reading


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        data = await reader.read(READ_SIZE)
        if not data:
            await _end(writer)
            return
        writer.write(data)
        await writer.drain()


async def _end(writer: asyncio.StreamWriter) -> None:
    """Pass an end of stream on: half-close when the transport can, else close."""
    if writer.can_write_eof() and not writer.is_closing():
        with contextlib.suppress(Exception):
            writer.write_eof()
    else:
        await _close(writer)


async def _join(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int, delay: float
) -> None:
    """Connect to the next hop and copy both ways until both ends are done; then close."""
    try:
        up_reader, up_writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), CONNECT_SECONDS
        )
    except (OSError, asyncio.TimeoutError):
        await _close(writer)
        return
    pipes = [
        asyncio.ensure_future(_pipe(reader, up_writer, delay, 2 * delay)),
        asyncio.ensure_future(_pipe(up_reader, writer, delay)),
    ]
    try:
        await asyncio.gather(*pipes)
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        for pipe in pipes:
            pipe.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        await _close(up_writer)
        await _close(writer)


class Proxy:
    """The three listeners; ``accepted`` counts the front's connections."""

    def __init__(self, upstream_port: int, delay: float, context: ssl.SSLContext) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.context = context
        self.accepted = 0
        self.servers: list[asyncio.Server] = []
        self.handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> tuple[int, int]:
        """(front port, control port)."""
        terminator = await asyncio.start_server(self._terminate, "127.0.0.1", 0, ssl=self.context)
        self.terminator_port = terminator.sockets[0].getsockname()[1]
        front = await asyncio.start_server(self._front, "127.0.0.1", 0, backlog=1024)
        control = await asyncio.start_server(self._control, "127.0.0.1", 0)
        self.servers = [terminator, front, control]
        return front.sockets[0].getsockname()[1], control.sockets[0].getsockname()[1]

    async def _front(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        await self._handle(_join(reader, writer, self.terminator_port, self.delay))

    async def _terminate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._handle(_join(reader, writer, self.upstream_port, 0.0))

    async def _handle(self, joined: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(joined)
        self.handlers.add(task)
        task.add_done_callback(self.handlers.discard)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(str(self.accepted).encode())
        await _close(writer)

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        for task in list(self.handlers):
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)


async def serve(upstream_port: int, delay: float, ca_file: str) -> None:
    proxy = Proxy(upstream_port, delay, server_context(ca_file))
    port, control_port = await proxy.start()
    started = {"port": port, "control_port": control_port, "pid": os.getpid(), "ca_file": ca_file}
    print(json.dumps(started), flush=True)
    # Until the runner closes our standard input.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await proxy.stop()


def connections(control_port: int) -> int:
    """Front connections the proxy has accepted so far."""
    import socket

    with socket.create_connection(("127.0.0.1", control_port), timeout=5) as sock:
        data = b""
        while chunk := sock.recv(64):
            data += chunk
    return int(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream-port", type=int, required=True, help="the emulator's port")
    parser.add_argument("--delay-ms", type=float, default=25.0, help="one-way delay (ms)")
    parser.add_argument("--ca-file", required=True, help="where to write the CA certificate")
    parser.add_argument("--cpu", type=int, default=None, help="pin the proxy to this CPU")
    args = parser.parse_args()
    if args.cpu is not None:
        pin_to({args.cpu})
    # A client that drops a TLS connection is no news here.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    asyncio.run(serve(args.upstream_port, args.delay_ms / 1000, args.ca_file))


@dataclass
class ProxyProcess:
    """``with ProxyProcess(port, delay_ms, ca_file) as proxy:`` ``proxy.base_url`` is https."""

    upstream_port: int
    delay_ms: float
    ca_file: str
    cpu: int | None = None
    port: int = 0
    control_port: int = 0
    pid: int = 0
    _process: subprocess.Popen[str] | None = None

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/compatible-mode/v1"

    def __enter__(self) -> ProxyProcess:
        command = [
            sys.executable,
            "-m",
            "benchmarks.tlsproxy",
            "--upstream-port",
            str(self.upstream_port),
            "--delay-ms",
            str(self.delay_ms),
            "--ca-file",
            self.ca_file,
        ]
        if self.cpu is not None:
            command += ["--cpu", str(self.cpu)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self._process.kill()
            self._process.wait()
            raise RuntimeError("the TLS proxy did not start (is trustme installed?)")
        started = json.loads(line)
        self.port, self.control_port = started["port"], started["control_port"]
        self.pid = started["pid"]
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stop_child(self._process)


if __name__ == "__main__":
    main()
