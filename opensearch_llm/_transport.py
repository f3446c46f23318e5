"""Send, retry, bound and stream: the transports every client sends through. No HTTP library here.

A transport hands a request to a *sender* (``_transport_httpx`` for sync clients and injected
httpx clients, ``_transport_aiohttp`` for async clients by default), which maps its library's
exceptions to ours and hands back a :class:`Body`. Everything else is decided here, once for
every sender: retries (what ``_retry`` allows; a stream only while it is being opened, never
after its first byte), the response size limit, the deadline of a whole response, and giving a
finished stream's connection back to the pool. Clients import this module when the first one is
made, not with the package; a sender's HTTP library loads with the first client that needs it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from opensearch_llm._bodies import decode_response
from opensearch_llm._config import STREAM_DRAIN_BYTES, USER_AGENT_PREFIX, ClientConfig
from opensearch_llm._errors import (
    ResponseDecodeError,
    hide_secrets,
)
from opensearch_llm._retry import backoff_delay, retry_allowed
from opensearch_llm._senders import AsyncBody, AsyncSender, Body, Limits, Sender
from opensearch_llm._version import __version__

if TYPE_CHECKING:
    import httpx
    import tenacity

logger = logging.getLogger("opensearch_llm")
T = TypeVar("T")

#: Extra headers of one request, or a function that makes them anew for every attempt (a signed
#: request needs a fresh date and nonce when it is retried).
Headers = Mapping[str, str] | Callable[[], Mapping[str, str]] | None


def request_headers(config: ClientConfig) -> dict[str, str]:
    """The headers every request carries: auth, JSON, user agent and the caller's defaults."""
    return {
        "Authorization": f"Bearer {config.api_key.get_secret_value()}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "User-Agent": f"{USER_AGENT_PREFIX}/{__version__}",
        **config.default_headers,
    }


def merge_headers(base: dict[str, str], headers: Headers) -> dict[str, str]:
    """``base`` updated with ``headers`` (made now if it is a function)."""
    extra = headers() if callable(headers) else headers
    return {**base, **extra} if extra else base


def call_limits(config: ClientConfig) -> Limits:
    """A non-streamed call: ``timeout`` bounds the whole response."""
    timeouts = config.timeouts
    return Limits(
        timeouts.connect, timeouts.read, timeouts.read, "timeout", config.max_response_bytes
    )


def stream_limits(config: ClientConfig, *, aggregate: bool = False) -> Limits:
    """A stream: the idle timeout between bytes, and a limit for the whole.

    The whole is bounded by ``stream_timeout``, or by ``timeout`` when the stream is aggregated
    into one answer for the caller (a model that only streams, called without streaming).
    """
    timeouts = config.timeouts
    total, setting = (
        (timeouts.read, "timeout") if aggregate else (timeouts.stream_total, "stream_timeout")
    )
    return Limits(timeouts.connect, timeouts.stream_idle, total, setting, config.max_response_bytes)


class _TransportLimits:
    """The limits of a transport's three kinds of request, made once."""

    __slots__ = ("aggregate", "call", "stream")

    def __init__(self, config: ClientConfig) -> None:
        self.call = call_limits(config)
        self.stream = stream_limits(config)
        self.aggregate = stream_limits(config, aggregate=True)


# --------------------------------------------------------------------------- streams


def _is_event_stream(headers: Mapping[str, str]) -> bool:
    return "json" not in (headers.get("content-type") or "")


class OpenStream:
    """A stream whose response started well: its headers and its body, as bytes or decoded JSON.

    ``close(finished=True)`` reads what is left of a stream whose answer is complete (the
    ``[DONE]`` line, the end of the chunked body; at most ``STREAM_DRAIN_BYTES``) so that its
    connection goes back to the pool; a stream abandoned half-way is closed.
    """

    def __init__(
        self,
        response: Body | AsyncBody | None,
        headers: Mapping[str, str],
        body: Any = None,
        content: bytes = b"",
    ):
        self.response = response
        self.headers = headers
        #: Set when the service answered a stream request with one JSON document.
        self.body = body
        #: A body read whole that is not one JSON document (e.g. back-to-back JSON objects).
        self.content = content
        self._pieces: Any = None
        #: What errors raised while reading must mask (set by the transport that opened it).
        self.secrets: tuple[str, ...] = ()

    def iter_bytes(self) -> Iterator[bytes]:
        """The body's bytes as they arrive (the same iterator on every call)."""
        if self._pieces is None:
            response = cast("Body | None", self.response)
            self._pieces = response.pieces() if response is not None else iter(self._replayed())
        return cast("Iterator[bytes]", self._pieces)

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (the same iterator on every call)."""
        if self._pieces is None:
            response = cast("AsyncBody | None", self.response)
            self._pieces = response.pieces() if response is not None else _aiter(self._replayed())
        return cast("AsyncIterator[bytes]", self._pieces)

    def _replayed(self) -> list[bytes]:
        return [self.content] if self.content else []

    def close(self, finished: bool = False) -> None:
        """Release the connection: to the pool when ``finished`` and the rest is short."""
        response = cast("Body | None", self.response)
        if response is None:
            return
        self.response = None
        try:
            if finished:
                _drain(self.iter_bytes())
        except Exception:  # a failure after the answer was complete costs only the connection
            logger.debug("closing a finished stream instead of reusing it", exc_info=True)
        finally:
            response.close()

    async def aclose(self, finished: bool = False) -> None:
        """Release the connection: to the pool when ``finished`` and the rest is short."""
        response = cast("AsyncBody | None", self.response)
        if response is None:
            return
        self.response = None
        try:
            if finished:
                await _adrain(self.aiter_bytes())
        except Exception:
            logger.debug("closing a finished stream instead of reusing it", exc_info=True)
        finally:
            await response.aclose()


def _drain(pieces: Iterator[bytes]) -> None:
    left = STREAM_DRAIN_BYTES
    for piece in pieces:
        left -= len(piece)
        if left < 0:
            return


async def _adrain(pieces: AsyncIterator[bytes]) -> None:
    left = STREAM_DRAIN_BYTES
    async for piece in pieces:
        left -= len(piece)
        if left < 0:
            return


async def _aiter(items: list[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


def buffered_stream(status: int, content: bytes, headers: Mapping[str, str]) -> OpenStream:
    """A stream request answered with a body read whole: raise its error, else replay it."""
    try:
        return OpenStream(None, headers, decode_response(status, content, headers))
    except ResponseDecodeError:
        # Not one JSON document (e.g. back-to-back JSON objects): the stream decoder reads it.
        return OpenStream(None, headers, content=content)


# --------------------------------------------------------------------------- retries


def _wait_seconds(config: ClientConfig) -> Callable[[tenacity.RetryCallState], float]:
    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return backoff_delay(
            state.attempt_number,
            getattr(error, "retry_after", None),
            initial=config.backoff_initial,
            maximum=config.backoff_max,
        )

    return wait


def _log_retry(state: tenacity.RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    sleep = state.next_action.sleep if state.next_action else 0.0
    logger.info("retrying after %s (attempt %d) in %.2fs", error, state.attempt_number + 1, sleep)


def _worth_retrying(error: Exception, config: ClientConfig) -> bool:
    return config.max_retries > 0 and retry_allowed(error, config.max_retry_after)


def _replaying(
    failure: Exception, attempt: Callable[..., T], secrets: tuple[str, ...]
) -> Callable[..., T]:
    """``attempt`` whose first call raises ``failure`` again (tenacity counts it as attempt 1).

    Each error is masked before tenacity logs it.
    """
    pending = [failure]

    def replay(*args: Any) -> T:
        if pending:
            raise pending.pop()
        try:
            return attempt(*args)
        except Exception as error:
            hide_secrets(error, secrets)
            raise

    return replay


def _areplaying(
    failure: Exception, attempt: Callable[..., Awaitable[T]], secrets: tuple[str, ...]
) -> Callable[..., Awaitable[T]]:
    """``_replaying`` for a coroutine function (tenacity awaits only those, not lambdas)."""
    pending = [failure]

    async def replay(*args: Any) -> T:
        if pending:
            raise pending.pop()
        try:
            return await attempt(*args)
        except Exception as error:
            hide_secrets(error, secrets)
            raise

    return replay


def _retrier(config: ClientConfig, *, asynchronous: bool) -> Any:
    """Tenacity's ``Retrying`` (or ``AsyncRetrying``) for ``config``, made after a failure."""
    import tenacity  # only once a first attempt has failed: most calls never need it

    options: dict[str, Any] = {
        "stop": tenacity.stop_after_attempt(config.max_retries + 1),
        "retry": tenacity.retry_if_exception(lambda e: retry_allowed(e, config.max_retry_after)),
        "wait": _wait_seconds(config),
        "before_sleep": _log_retry,
        "reraise": True,
    }
    if asynchronous:
        return tenacity.AsyncRetrying(sleep=asyncio.sleep, **options)
    return tenacity.Retrying(sleep=time.sleep, **options)


# --------------------------------------------------------------------------- transports

#: Turns a decoded answer and its response headers into a client's result.
Parse = Callable[[Any, Mapping[str, str]], T]


def _parsed(
    parse: Parse[T], answer: Any, headers: Mapping[str, str], secrets: tuple[str, ...]
) -> T:
    try:
        return parse(answer, headers)
    except Exception as error:  # a parse error copies the service's text
        hide_secrets(error, secrets)
        raise


class SyncTransport:
    """Sends requests through one reused ``httpx.Client``, with retries and limits."""

    def __init__(self, config: ClientConfig, http_client: httpx.Client | None = None) -> None:
        from opensearch_llm._transport_httpx import HttpxSender

        self.config = config
        self.sender: Sender = HttpxSender(config, http_client)
        self._headers = request_headers(config)
        self._limits = _TransportLimits(config)
        self._secrets = config.secrets

    def __repr__(self) -> str:
        return f"SyncTransport(base_url={self.config.base_url!r})"

    def post_json(self, url: str, body: bytes, headers: Headers, parse: Parse[T]) -> T:
        """POST ``body``; ``parse(answer, response headers)`` of the decoded JSON. Retries."""
        answer, response_headers = self._retrying(self._post_once, url, body, headers)
        return _parsed(parse, answer, response_headers, self._secrets)

    def open_stream(
        self, url: str, body: bytes, headers: Headers = None, *, aggregate: bool = False
    ) -> OpenStream:
        """POST ``body`` for a stream; retries until the response starts well, never after."""
        opened = self._retrying(self._open_once, url, body, headers, aggregate)
        opened.secrets = self._secrets
        return opened

    def close(self) -> None:
        """Close the connection pool if this transport made it."""
        self.sender.close()

    def _retrying(self, attempt: Callable[..., T], *args: Any) -> T:
        # The first attempt runs bare: tenacity costs more than our whole request on a success.
        try:
            return attempt(*args)
        except Exception as error:
            hide_secrets(error, self._secrets)
            if not _worth_retrying(error, self.config):
                raise
            replay = _replaying(error, attempt, self._secrets)
        return cast(T, _retrier(self.config, asynchronous=False)(replay, *args))

    def _post_once(self, url: str, body: bytes, headers: Headers) -> tuple[Any, Mapping[str, str]]:
        response = self.sender.send(url, body, self._merge(headers), self._limits.call)
        try:
            content = response.read()
        finally:
            response.close()
        return decode_response(response.status, content, response.headers), response.headers

    def _open_once(self, url: str, body: bytes, headers: Headers, aggregate: bool) -> OpenStream:
        limits = self._limits.aggregate if aggregate else self._limits.stream
        response = self.sender.send(url, body, self._merge(headers), limits)
        if response.status < 300 and _is_event_stream(response.headers):
            return OpenStream(response, response.headers)
        try:
            content = response.read()
        finally:
            response.close()
        return buffered_stream(response.status, content, response.headers)

    def _merge(self, headers: Headers) -> dict[str, str]:
        return merge_headers(self._headers, headers)


class AsyncTransport:
    """Sends requests through aiohttp (or an injected ``httpx.AsyncClient``), with retries."""

    def __init__(self, config: ClientConfig, http_client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.sender: AsyncSender
        if http_client is None:
            from opensearch_llm._transport_aiohttp import AiohttpSender

            self.sender = AiohttpSender(config)
        else:
            from opensearch_llm._transport_httpx import AsyncHttpxSender

            self.sender = AsyncHttpxSender(config, http_client)
        self._headers = request_headers(config)
        self._limits = _TransportLimits(config)
        self._secrets = config.secrets

    def __repr__(self) -> str:
        return f"AsyncTransport(base_url={self.config.base_url!r})"

    async def post_json(self, url: str, body: bytes, headers: Headers, parse: Parse[T]) -> T:
        """POST ``body``; ``parse(answer, response headers)`` of the decoded JSON. Retries."""
        answer, response_headers = await self._retrying(self._post_once, url, body, headers)
        return _parsed(parse, answer, response_headers, self._secrets)

    async def open_stream(
        self, url: str, body: bytes, headers: Headers = None, *, aggregate: bool = False
    ) -> OpenStream:
        """POST ``body`` for a stream; retries until the response starts well, never after."""
        opened = await self._retrying(self._open_once, url, body, headers, aggregate)
        opened.secrets = self._secrets
        return opened

    async def aclose(self) -> None:
        """Close the connection pool if this transport made it."""
        await self.sender.aclose()

    async def _retrying(self, attempt: Callable[..., Awaitable[T]], *args: Any) -> T:
        try:
            return await attempt(*args)
        except Exception as error:
            hide_secrets(error, self._secrets)
            if not _worth_retrying(error, self.config):
                raise
            replay = _areplaying(error, attempt, self._secrets)
        return cast(T, await _retrier(self.config, asynchronous=True)(replay, *args))

    async def _post_once(
        self, url: str, body: bytes, headers: Headers
    ) -> tuple[Any, Mapping[str, str]]:
        response = await self.sender.send(url, body, self._merge(headers), self._limits.call)
        try:
            content = await response.read()
        finally:
            await response.aclose()
        return decode_response(response.status, content, response.headers), response.headers

    async def _open_once(
        self, url: str, body: bytes, headers: Headers, aggregate: bool
    ) -> OpenStream:
        limits = self._limits.aggregate if aggregate else self._limits.stream
        response = await self.sender.send(url, body, self._merge(headers), limits)
        if response.status < 300 and _is_event_stream(response.headers):
            return OpenStream(response, response.headers)
        try:
            content = await response.read()
        finally:
            await response.aclose()
        return buffered_stream(response.status, content, response.headers)

    def _merge(self, headers: Headers) -> dict[str, str]:
        return merge_headers(self._headers, headers)
