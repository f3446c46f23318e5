"""What a sender (one HTTP library's side of a transport) is, and what every sender shares.

The protocols a sender implements (``Sender``, ``AsyncSender`` and the ``Body`` they return),
the ``Limits`` of one attempt, and the errors for network failures and oversized bodies,
worded once for every library. ``_transport`` decides; ``_transport_httpx`` and
``_transport_aiohttp`` send. No HTTP library here.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from opensearch_llm._errors import APIConnectionError, APITimeoutError, ResponseTooLargeError

# --------------------------------------------------------------------------- network errors


def connection_failed(detail: str, url: str = "") -> APIConnectionError:
    """The error for a request that got no response (never names a header, so never the key)."""
    where = f" to {url}" if url else ""
    return APIConnectionError(
        f"Connection failed{where}: {detail}. "
        "Check the base_url (knowledge-llm: the host) and the network."
    )


def timed_out(kind: str, url: str = "") -> APITimeoutError:
    """The error for a connect, read or pool timeout; ``kind`` says what was awaited."""
    where = f" to {url}" if url else ""
    return APITimeoutError(f"Timed out {kind}{where}; raise the timeout or retry later.")


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: made once per transport
class Limits:
    """How long one attempt may take and how much it may read, as a sender needs them.

    ``read`` bounds each wait for bytes; ``total`` (when set) the whole attempt, named by
    ``total_setting`` in the error that ends it.
    """

    connect: float
    read: float
    total: float | None
    total_setting: str
    max_bytes: int

    def deadline(self) -> float | None:
        """The monotonic time by which an attempt that starts now must end."""
        return None if self.total is None else time.monotonic() + self.total

    def check(self, deadline: float | None) -> None:
        """Raise ``APITimeoutError`` once ``deadline`` has passed."""
        if deadline is not None and time.monotonic() > deadline:
            raise self.overrun()

    def overrun(self, url: str = "") -> APITimeoutError:
        """The error for a response that took longer than ``total``."""
        where = f" from {url}" if url else ""
        return APITimeoutError(
            f"The response{where} took longer than {self.total_setting}={self.total:g}s; "
            f"raise {self.total_setting} or retry later."
        )


def too_large(status: int, limit: int) -> ResponseTooLargeError:
    """The error for a response body over ``max_response_bytes``."""
    return ResponseTooLargeError(
        f"HTTP {status}: the response body",
        limit=limit,
        setting="max_response_bytes",
        status=status,
    )


def declared_too_large(headers: Mapping[str, str], limit: int) -> bool:
    """Whether ``Content-Length`` already says the body is over ``limit``."""
    length = headers.get("content-length") or ""
    return length.isdigit() and int(length) > limit


def capped_join(pieces: Iterator[bytes], status: int, limit: int) -> bytes:
    """The body from its pieces; ``ResponseTooLargeError`` as soon as it passes ``limit``."""
    parts: list[bytes] = []
    size = 0
    for piece in pieces:
        size += len(piece)
        if size > limit:
            raise too_large(status, limit)
        parts.append(piece)
    return b"".join(parts)


async def acapped_join(pieces: AsyncIterator[bytes], status: int, limit: int) -> bytes:
    """``capped_join`` for an async iterator."""
    parts: list[bytes] = []
    size = 0
    async for piece in pieces:
        size += len(piece)
        if size > limit:
            raise too_large(status, limit)
        parts.append(piece)
    return b"".join(parts)


# --------------------------------------------------------------------------- senders


class Body(Protocol):
    """A response whose head has arrived (sync): the sender's part of a transport."""

    status: int
    headers: Mapping[str, str]

    def pieces(self) -> Iterator[bytes]:
        """The body's (decoded) bytes as they arrive; one iterator per response."""

    def read(self) -> bytes:
        """The whole body, within the request's limits."""

    def close(self) -> None:
        """Give the connection back to the pool if the body was read to its end, else close it."""


class AsyncBody(Protocol):
    """A response whose head has arrived (async)."""

    status: int
    headers: Mapping[str, str]

    def pieces(self) -> AsyncIterator[bytes]:
        """The body's (decoded) bytes as they arrive; one iterator per response."""

    async def read(self) -> bytes:
        """The whole body, within the request's limits."""

    async def aclose(self) -> None:
        """Give the connection back to the pool if the body was read to its end, else close it."""


class Sender(Protocol):
    """Sends one POST with one HTTP library (sync)."""

    def send(self, url: str, body: bytes, headers: dict[str, str], limits: Limits) -> Body:
        """The response, once its head has arrived; our typed errors for network failures."""

    def close(self) -> None:
        """Close the pool if the sender made it."""


class AsyncSender(Protocol):
    """Sends one POST with one HTTP library (async)."""

    async def send(
        self, url: str, body: bytes, headers: dict[str, str], limits: Limits
    ) -> AsyncBody:
        """The response, once its head has arrived; our typed errors for network failures."""

    async def aclose(self) -> None:
        """Close the pool if the sender made it."""
