"""The ASGI 3 shell: plays the core's response over a real connection.

Without markers, a body goes out in few large messages (many SSE frames per message). A
:class:`Delay` waits (ending early if the client goes away); a :class:`Reset` aborts the socket
with ``SO_LINGER`` 0, so the client sees a real connection reset. The transport comes from the
scope's ``extensions`` (see ``_server``); under another server a reset raises instead.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, cast

from opensearch_llm.emulator._response import Delay, EmuResponse, Handler, Reset

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: ``scope["extensions"]`` key under which the server puts the asyncio transport.
TRANSPORT_EXTENSION = "opensearch_llm.emulator.transport"
#: Bytes gathered into one ``http.response.body`` message.
BATCH_BYTES = 64 * 1024


class EmulatorApp:
    """The ASGI 3 application of an :class:`Emulator`."""

    def __init__(self, emulator: Handler) -> None:
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        response = self.emulator.handle(scope["method"], scope["path"], scope["headers"], body)
        if response.is_plain:
            await _send_plain(response, send)
        else:
            await _Player(scope, receive, send).play(response)


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    parts = [body]
    while message.get("more_body"):
        message = await receive()
        parts.append(message.get("body", b""))
    return b"".join(parts)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        await send({"type": f"{message['type']}.complete"})
        if message["type"] == "lifespan.shutdown":
            return


def _start(response: EmuResponse) -> Message:
    return {"type": "http.response.start", "status": response.status, "headers": response.headers}


async def _send_plain(response: EmuResponse, send: Send) -> None:
    await send(_start(response))
    body = cast("list[bytes]", response.body)
    if len(body) == 1:
        await send({"type": "http.response.body", "body": body[0]})
        return
    for batch in _batches(body):
        await send({"type": "http.response.body", "body": batch, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _batches(pieces: list[bytes]) -> list[bytes]:
    batches: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for piece in pieces:
        current.append(piece)
        size += len(piece)
        if size >= BATCH_BYTES:
            batches.append(b"".join(current))
            current, size = [], 0
    if current:
        batches.append(b"".join(current))
    return batches


class _Player:
    """Plays a response with markers: bytes in batches, delays, resets."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.transport = scope.get("extensions", {}).get(TRANSPORT_EXTENSION)
        self.receive = receive
        self.send = send
        self.gone: asyncio.Future[Message] | None = None

    async def play(self, response: EmuResponse) -> None:
        try:
            for marker in response.prelude:
                if not await self._marker(marker):
                    return
            await self.send(_start(response))
            await self._body(response)
        finally:
            if self.gone is not None and not self.gone.done():
                self.gone.cancel()

    async def _body(self, response: EmuResponse) -> None:
        pending: list[bytes] = []
        for piece in response.body:
            if isinstance(piece, bytes):
                pending.append(piece)
                continue
            await self._flush(pending, more=True)
            pending = []
            if not await self._marker(piece):
                return
        await self._flush(pending, more=False)

    async def _flush(self, pending: list[bytes], more: bool) -> None:
        if pending or not more:
            await self.send(
                {"type": "http.response.body", "body": b"".join(pending), "more_body": more}
            )

    async def _marker(self, marker: Delay | Reset) -> bool:
        """Play a marker; False when the exchange is over (reset, or the client left)."""
        if isinstance(marker, Reset):
            await self._reset()
            return False
        return await self._wait(marker.seconds)

    async def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds``; False as soon as the client disconnects."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            if self.gone is None:
                self.gone = asyncio.ensure_future(self.receive())
            done, _ = await asyncio.wait({self.gone}, timeout=max(deadline - loop.time(), 0))
            if not done:
                return True
            if self.gone.result().get("type") == "http.disconnect":
                return False
            self.gone = None

    async def _reset(self) -> None:
        if self.transport is None:
            raise ConnectionAbortedError("emulated connection reset (no transport in the scope)")
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()
        await asyncio.sleep(0)  # let the server see the connection lost before the app returns
