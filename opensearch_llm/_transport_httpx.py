"""The httpx senders: sync clients, and async clients given an ``httpx.AsyncClient``.

httpx's exceptions are mapped to ours here, in one place. httpx has no timeout for a whole
response, so a deadline is checked as each piece of the body arrives (each wait for a piece is
bounded by the read timeout). The async sender is the slower path: httpx's async pool costs
milliseconds of CPU per request under concurrency (``_transport_aiohttp`` is the default).
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Iterator, Mapping

import httpx

from opensearch_llm._config import DEFAULT_MAX_KEEPALIVE_CONNECTIONS, ClientConfig
from opensearch_llm._errors import APIConnectionError
from opensearch_llm._senders import (
    Limits,
    acapped_join,
    capped_join,
    connection_failed,
    declared_too_large,
    timed_out,
    too_large,
)

_TIMEOUT_KINDS: tuple[tuple[type[httpx.TimeoutException], str], ...] = (
    (httpx.ConnectTimeout, "connecting"),
    (httpx.ReadTimeout, "waiting for data"),
    (httpx.WriteTimeout, "sending the request"),
    (httpx.PoolTimeout, "waiting for a free connection"),
)


def map_httpx_error(error: httpx.HTTPError, url: str = "") -> APIConnectionError:
    """Our typed error for an httpx exception (never includes headers, so never the key)."""
    if isinstance(error, httpx.TimeoutException):
        kind = next((text for cls, text in _TIMEOUT_KINDS if isinstance(error, cls)), "waiting")
        return timed_out(kind, url)
    return connection_failed(str(error) or type(error).__name__, url)


def _pool_limits(config: ClientConfig) -> httpx.Limits:
    connections = config.max_connections
    return httpx.Limits(
        max_connections=connections,
        max_keepalive_connections=min(connections, DEFAULT_MAX_KEEPALIVE_CONNECTIONS),
    )


def _timeout(limits: Limits) -> httpx.Timeout:
    return httpx.Timeout(
        connect=limits.connect, read=limits.read, write=limits.read, pool=limits.connect
    )


def _request(
    client: httpx.Client | httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    limits: Limits,
) -> httpx.Request:
    return client.build_request(
        "POST", url, content=body, headers=headers, timeout=_timeout(limits)
    )


class HttpxBody:
    """A sync httpx response: its body read within the size limit and the deadline."""

    def __init__(self, response: httpx.Response, limits: Limits, deadline: float | None) -> None:
        self.response = response
        self.status = response.status_code
        self.headers: Mapping[str, str] = response.headers
        self._limits = limits
        self._deadline = deadline

    def pieces(self) -> Iterator[bytes]:
        """The decoded body as it arrives; our errors for httpx's."""
        try:
            for piece in self.response.iter_bytes():
                self._limits.check(self._deadline)
                yield piece
        except httpx.HTTPError as error:
            raise map_httpx_error(error) from error

    def read(self) -> bytes:
        """The whole body, at most ``max_response_bytes``."""
        limit = self._limits.max_bytes
        if declared_too_large(self.headers, limit):
            raise too_large(self.status, limit)
        return capped_join(self.pieces(), self.status, limit)

    def close(self) -> None:
        """Back to the pool if read to its end, else closed."""
        self.response.close()


class HttpxSender:
    """Sends through one reused ``httpx.Client`` (made here unless one is given)."""

    def __init__(self, config: ClientConfig, http_client: httpx.Client | None = None) -> None:
        self.http_client = http_client or httpx.Client(limits=_pool_limits(config))
        # A sender dropped without close() (a framework model nobody closes) closes its pool
        # when collected, instead of leaving its sockets to warn at the garbage collector.
        self._release = None if http_client else weakref.finalize(self, self.http_client.close)

    def send(self, url: str, body: bytes, headers: dict[str, str], limits: Limits) -> HttpxBody:
        """The response once its head has arrived."""
        deadline = limits.deadline()
        try:
            response = self.http_client.send(
                _request(self.http_client, url, body, headers, limits), stream=True
            )
        except httpx.HTTPError as error:
            raise map_httpx_error(error, url) from error
        return HttpxBody(response, limits, deadline)

    def close(self) -> None:
        """Close the httpx client if this sender made it."""
        if self._release is not None:
            self._release()


class AsyncHttpxBody:
    """An async httpx response: its body read within the size limit and the deadline."""

    def __init__(self, response: httpx.Response, limits: Limits, deadline: float | None) -> None:
        self.response = response
        self.status = response.status_code
        self.headers: Mapping[str, str] = response.headers
        self._limits = limits
        self._deadline = deadline

    async def pieces(self) -> AsyncIterator[bytes]:
        """The decoded body as it arrives; our errors for httpx's."""
        try:
            async for piece in self.response.aiter_bytes():
                self._limits.check(self._deadline)
                yield piece
        except httpx.HTTPError as error:
            raise map_httpx_error(error) from error

    async def read(self) -> bytes:
        """The whole body, at most ``max_response_bytes``."""
        limit = self._limits.max_bytes
        if declared_too_large(self.headers, limit):
            raise too_large(self.status, limit)
        return await acapped_join(self.pieces(), self.status, limit)

    async def aclose(self) -> None:
        """Back to the pool if read to its end, else closed."""
        await self.response.aclose()


class AsyncHttpxSender:
    """Sends through a caller's ``httpx.AsyncClient`` (never closed here)."""

    def __init__(self, config: ClientConfig, http_client: httpx.AsyncClient) -> None:
        self.http_client = http_client

    async def send(
        self, url: str, body: bytes, headers: dict[str, str], limits: Limits
    ) -> AsyncHttpxBody:
        """The response once its head has arrived."""
        deadline = limits.deadline()
        try:
            response = await self.http_client.send(
                _request(self.http_client, url, body, headers, limits), stream=True
            )
        except httpx.HTTPError as error:
            raise map_httpx_error(error, url) from error
        return AsyncHttpxBody(response, limits, deadline)

    async def aclose(self) -> None:
        """Nothing: the caller owns the client."""
