"""The sans-IO response description: status, headers and a body of byte pieces and markers.

The pure core (``_core``) returns an :class:`EmuResponse`; the shells (ASGI app, httpx transports)
play it: they send byte pieces, sleep on :class:`Delay` and cut the connection on :class:`Reset`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Delay:
    """Send nothing for ``seconds`` (a slow first byte, a pause, or a stall before a reset)."""

    seconds: float


@dataclass(frozen=True)
class Reset:
    """Abort the connection: the client sees a connection reset, not a tidy response."""


#: One element of a body: bytes to send, or a marker telling the shell what to do.
Piece = bytes | Delay | Reset

RESET = Reset()

JSON_TYPE = b"application/json"
SSE_TYPE = b"text/event-stream; charset=utf-8"
HTML_TYPE = b"text/html; charset=utf-8"


@dataclass
class EmuResponse:
    """What to send: ``prelude`` markers before the head, then the head, then ``body`` pieces.

    A :class:`Reset` in ``prelude`` means the connection breaks before any response.
    """

    status: int
    headers: list[tuple[bytes, bytes]]
    body: list[Piece]
    prelude: list[Delay | Reset] = field(default_factory=list)
    #: An SSE stream (frames may be cut after N of them), not a single JSON body.
    streamed: bool = False

    @property
    def is_plain(self) -> bool:
        """No markers anywhere: the shells may take their fast path."""
        return not self.prelude and all(type(piece) is bytes for piece in self.body)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: Any) -> bytes:
    """Compact JSON bytes, non-ASCII kept as UTF-8 (as the service sends it)."""
    return _ENCODER.encode(value).encode()


def head(
    request_id: str, content_type: bytes, extra: Sequence[tuple[bytes, bytes]] = ()
) -> list[tuple[bytes, bytes]]:
    """Response headers: content type, ``x-request-id`` and any extra ones."""
    return [(b"content-type", content_type), (b"x-request-id", request_id.encode()), *extra]


def json_response(
    status: int, request_id: str, value: Any, extra: Sequence[tuple[bytes, bytes]] = ()
) -> EmuResponse:
    """A complete JSON response with a ``content-length``."""
    body = dumps(value)
    headers = head(request_id, JSON_TYPE, extra)
    headers.append((b"content-length", str(len(body)).encode()))
    return EmuResponse(status, headers, [body])


def sse_response(request_id: str, frames: Sequence[Piece]) -> EmuResponse:
    """A streamed ``text/event-stream`` response (no length: chunked over HTTP/1.1)."""
    headers = head(request_id, SSE_TYPE, [(b"cache-control", b"no-cache")])
    return EmuResponse(200, headers, list(frames), streamed=True)


#: Request headers as the shells get them: raw ``(name, value)`` byte pairs.
RawHeaders = Iterable[tuple[bytes, bytes]]


class Handler(Protocol):
    """What a shell (the ASGI app, the in-process transports) needs of an emulator."""

    def handle(self, method: str, path: str, headers: RawHeaders, body: bytes) -> EmuResponse:
        """The response to one request."""
        ...
