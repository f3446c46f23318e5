"""In-process httpx shells, sync and async: no sockets, but the timing and failures of one.

Bodies are real incremental streams (one SSE frame per read). A :class:`Delay` sleeps, and if
the time without bytes exceeds the request's read timeout, raises ``httpx.ReadTimeout`` as a
socket read would; a :class:`Reset` raises ``httpx.ReadError`` (before the head: from the send;
in the body: while it is read).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx

from opensearch_llm.emulator._response import Delay, EmuResponse, Handler, Piece, Reset

_RESET_MESSAGE = "[Errno 104] Connection reset by peer (emulated)"
_TIMEOUT_MESSAGE = "The read operation timed out (emulated)"


class _Pacer:
    """Tracks the time without bytes, against the request's read timeout."""

    def __init__(self, request: httpx.Request) -> None:
        timeout = request.extensions.get("timeout") or {}
        self.read_timeout: float | None = timeout.get("read")
        self.request = request
        self.idle = 0.0

    def wait(self, marker: Delay | Reset) -> tuple[float, httpx.TransportError | None]:
        """Seconds to sleep for ``marker``, then the error to raise (if any)."""
        if isinstance(marker, Reset):
            return 0.0, httpx.ReadError(_RESET_MESSAGE, request=self.request)
        waited, self.idle = self.idle, self.idle + marker.seconds
        if self.read_timeout is not None and self.idle > self.read_timeout:
            timeout = httpx.ReadTimeout(_TIMEOUT_MESSAGE, request=self.request)
            return max(self.read_timeout - waited, 0.0), timeout
        return marker.seconds, None


def _response(
    response: EmuResponse,
    request: httpx.Request,
    stream: httpx.SyncByteStream | httpx.AsyncByteStream,
) -> httpx.Response:
    return httpx.Response(response.status, headers=response.headers, stream=stream, request=request)


class EmulatorTransport(httpx.BaseTransport):
    """Sends requests to an :class:`Emulator` in this process (sync)."""

    def __init__(self, emulator: Handler) -> None:
        self.emulator = emulator

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` in-process; prelude markers play before the head returns."""
        path, body = request.url.path, request.read()
        response = self.emulator.handle(request.method, path, request.headers.raw, body)
        pacer = _Pacer(request)
        for marker in response.prelude:
            _play(pacer, marker)
        return _response(response, request, _SyncBody(response.body, pacer))


def _play(pacer: _Pacer, marker: Delay | Reset) -> None:
    seconds, error = pacer.wait(marker)
    if seconds:
        time.sleep(seconds)
    if error is not None:
        raise error


class _SyncBody(httpx.SyncByteStream):
    def __init__(self, pieces: list[Piece], pacer: _Pacer) -> None:
        self.pieces = pieces
        self.pacer = pacer

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.pieces:
            if isinstance(piece, bytes):
                self.pacer.idle = 0.0
                yield piece
            else:
                _play(self.pacer, piece)


class AsyncEmulatorTransport(httpx.AsyncBaseTransport):
    """Sends requests to an :class:`Emulator` in this process (async)."""

    def __init__(self, emulator: Handler) -> None:
        self.emulator = emulator

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` in-process; prelude markers play before the head returns."""
        path, body = request.url.path, await request.aread()
        response = self.emulator.handle(request.method, path, request.headers.raw, body)
        pacer = _Pacer(request)
        for marker in response.prelude:
            await _aplay(pacer, marker)
        return _response(response, request, _AsyncBody(response.body, pacer))


async def _aplay(pacer: _Pacer, marker: Delay | Reset) -> None:
    seconds, error = pacer.wait(marker)
    if seconds:
        await anyio.sleep(seconds)
    if error is not None:
        raise error


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, pieces: list[Piece], pacer: _Pacer) -> None:
        self.pieces = pieces
        self.pacer = pacer

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            if isinstance(piece, bytes):
                self.pacer.idle = 0.0
                yield piece
            else:
                await _aplay(self.pacer, piece)
