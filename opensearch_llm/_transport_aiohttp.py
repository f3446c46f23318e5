"""The aiohttp sender: the default of async clients (httpx's async pool is CPU-bound under load).

aiohttp's exceptions are mapped to ours here, in one place. The session is made on the first
request, in the running event loop (aiohttp's pools belong to one loop); a client used from a
new loop after its first loop ended gets a new session. TLS verifies against certifi's bundle,
as httpx does, unless ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` names another; the proxy comes
from the environment (``HTTPS_PROXY``, ``NO_PROXY``...), read once per session. A session
that is dropped without ``aclose()`` has its connections closed when the sender is collected,
or when its event loop shuts down (``asyncio.run``'s end), whichever comes first.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import urllib.request
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Mapping

import aiohttp

from opensearch_llm._config import ClientConfig
from opensearch_llm._errors import APIConnectionError
from opensearch_llm._senders import (
    Limits,
    acapped_join,
    connection_failed,
    declared_too_large,
    timed_out,
    too_large,
)

_TIMEOUT_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (aiohttp.ConnectionTimeoutError, "connecting"),
    (aiohttp.SocketTimeoutError, "waiting for data"),
    (aiohttp.ServerTimeoutError, "waiting for data"),
)


def map_aiohttp_error(
    error: BaseException, limits: Limits | None = None, url: str = ""
) -> APIConnectionError:
    """Our typed error for an aiohttp exception or a timeout (never includes the headers)."""
    if isinstance(error, asyncio.TimeoutError):
        kind = next((text for cls, text in _TIMEOUT_KINDS if isinstance(error, cls)), None)
        if kind is None and limits is not None and limits.total is not None:
            return limits.overrun(url)
        return timed_out(kind or "waiting", url)
    return connection_failed(str(error) or type(error).__name__, url)


_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    # Loading a CA bundle takes tens of milliseconds: once per process, not per client.
    if os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context()
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _env_proxy(url: str) -> str | None:
    scheme = url.split("://", 1)[0]
    host = url.split("://", 1)[1].split("/", 1)[0]
    if urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies().get(scheme)


@functools.lru_cache(maxsize=64)
def _client_timeout(limits: Limits) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=limits.total, connect=limits.connect, sock_read=limits.read)


class AiohttpBody:
    """An aiohttp response: its body read within the size limit (the deadline is aiohttp's)."""

    def __init__(self, response: aiohttp.ClientResponse, limits: Limits) -> None:
        self.response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self._limits = limits

    async def pieces(self) -> AsyncIterator[bytes]:
        """The decoded body as it arrives; our errors for aiohttp's."""
        content = self.response.content
        try:
            while True:
                piece = await content.readany()
                if not piece:
                    return
                yield piece
        except _ERRORS as error:
            raise map_aiohttp_error(error, self._limits) from error

    async def read(self) -> bytes:
        """The whole body, at most ``max_response_bytes``."""
        limit = self._limits.max_bytes
        if declared_too_large(self.headers, limit):
            raise too_large(self.status, limit)
        if self.headers.get("content-length") and not self.headers.get("content-encoding"):
            try:  # the length is known and within the limit: one read
                return await self.response.read()
            except _ERRORS as error:
                raise map_aiohttp_error(error, self._limits) from error
        return await acapped_join(self.pieces(), self.status, limit)

    async def aclose(self) -> None:
        """Back to the pool if read to its end (aiohttp released it then), else closed."""
        self.response.close()


class AiohttpSender:
    """Sends through one ``aiohttp.ClientSession`` per event loop, made on first use."""

    def __init__(self, config: ClientConfig) -> None:
        self._proxy = _env_proxy(config.base_url)
        self._max_connections = config.max_connections
        self.session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._finalizer: weakref.finalize | None = None  # type: ignore[type-arg]
        self._closer: AsyncGenerator[None, None] | None = None

    async def send(
        self, url: str, body: bytes, headers: dict[str, str], limits: Limits
    ) -> AiohttpBody:
        """The response once its head has arrived."""
        session = self.session
        if session is None or self._loop is not asyncio.get_running_loop():
            session = await self._new_session()
        try:
            response = await session.post(
                url,
                data=body,
                headers=headers,
                timeout=_client_timeout(limits),
                proxy=self._proxy,
                allow_redirects=False,
            )
        except _ERRORS as error:
            raise map_aiohttp_error(error, limits, url) from error
        return AiohttpBody(response, limits)

    async def aclose(self) -> None:
        """Close the session and its connections."""
        loop, finalizer, closer = self._loop, self._finalizer, self._closer
        self.session = self._loop = self._finalizer = self._closer = None
        if finalizer is None or closer is None:
            return
        if loop is asyncio.get_running_loop():
            finalizer.detach()
            await closer.aclose()  # closes the session
        else:
            finalizer()  # another loop's session cannot be awaited here

    async def _new_session(self) -> aiohttp.ClientSession:
        """A session in the running loop (the first, or another loop's session was left)."""
        if self._finalizer is not None:
            self._finalizer()  # another loop's session: its connections cannot serve this one
        loop = asyncio.get_running_loop()
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, limit_per_host=0, ssl=_ssl_context()
        )
        session = aiohttp.ClientSession(
            connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
        )
        self.session, self._loop = session, loop
        self._finalizer = weakref.finalize(self, _abandon, session, loop)
        self._closer = _closed_at_shutdown(session)
        await self._closer.__anext__()  # the loop now closes it when it shuts down
        return session


async def _closed_at_shutdown(session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    """Closes ``session`` when closed itself, at the latest when its event loop shuts down.

    It waits at its ``yield`` until ``aclose()``, or the loop's ``shutdown_asyncgens()``
    (``asyncio.run`` and ``asyncio.Runner`` call it before closing the loop), so that a session
    nobody closed still closes its sockets while its loop can.
    """
    try:
        yield
    finally:
        await session.close()


def _abandon(session: aiohttp.ClientSession, loop: asyncio.AbstractEventLoop) -> None:
    """Close a session's connections without awaiting (its owner is gone, or its loop ended)."""
    connector = session.connector
    if connector is None or connector.closed:
        return
    if loop.is_closed():
        # Only marks it closed (no warning at collection): a closed loop cannot close its
        # sockets any more, the garbage collector does.
        connector._close()
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        connector._close()
    else:  # collected in another thread: close on the loop's own thread
        loop.call_soon_threadsafe(connector._close)
