"""The only module that sends with httpx: sync and async transports that send, retry, stream.

Everything about content (bodies, frames, errors) is decided by the pure modules; the transports
send bytes, map httpx's exceptions (here, in one place), retry what ``_retry`` allows and hand
back bodies or byte streams. A stream is retried only while it is being opened, never after its
first byte. Clients import this module when the first one is made, not with the package: httpx
(and, on the first retry, tenacity) cost more to import than everything else of ours.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
)
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx

from opensearch_llm._config import DEFAULT_POOL_LIMITS, USER_AGENT_PREFIX, ClientConfig
from opensearch_llm._errors import APIConnectionError, APITimeoutError, ResponseDecodeError
from opensearch_llm._retry import backoff_delay, retry_allowed
from opensearch_llm._shell import Headers
from opensearch_llm._version import __version__
from opensearch_llm._wire import decode_response

if TYPE_CHECKING:
    import tenacity

logger = logging.getLogger("opensearch_llm")
T = TypeVar("T")

_TIMEOUT_KINDS: tuple[tuple[type[httpx.TimeoutException], str], ...] = (
    (httpx.ConnectTimeout, "connecting"),
    (httpx.ReadTimeout, "waiting for data"),
    (httpx.WriteTimeout, "sending the request"),
    (httpx.PoolTimeout, "waiting for a free connection"),
)


def map_httpx_error(error: httpx.HTTPError, url: str = "") -> APIConnectionError:
    """Our typed error for an httpx exception (never includes headers, so never the key)."""
    where = f" to {url}" if url else ""
    if isinstance(error, httpx.TimeoutException):
        kind = next((text for cls, text in _TIMEOUT_KINDS if isinstance(error, cls)), "waiting")
        return APITimeoutError(f"Timed out {kind}{where}; raise the timeout or retry later.")
    detail = str(error) or type(error).__name__
    return APIConnectionError(
        f"Connection failed{where}: {detail}. Check the base_url and the network."
    )


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


def _timeouts(config: ClientConfig, *, stream: bool) -> httpx.Timeout:
    read = config.timeouts.stream_idle if stream else config.timeouts.read
    connect = config.timeouts.connect
    return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)


def _is_event_stream(response: httpx.Response) -> bool:
    return "json" not in response.headers.get("content-type", "")


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


def _replaying(failure: Exception, attempt: Callable[..., T]) -> Callable[..., T]:
    """``attempt`` whose first call raises ``failure`` again (tenacity counts it as attempt 1)."""
    pending = [failure]

    def replay(*args: Any) -> T:
        if pending:
            raise pending.pop()
        return attempt(*args)

    return replay


def _areplaying(
    failure: Exception, attempt: Callable[..., Awaitable[T]]
) -> Callable[..., Awaitable[T]]:
    """``_replaying`` for a coroutine function (tenacity awaits only those, not lambdas)."""
    pending = [failure]

    async def replay(*args: Any) -> T:
        if pending:
            raise pending.pop()
        return await attempt(*args)

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


class OpenStream:
    """A stream whose response started well: its headers and its body, as bytes or decoded JSON."""

    def __init__(
        self,
        response: httpx.Response | None,
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

    def iter_bytes(self) -> Iterator[bytes]:
        """The body's bytes as they arrive; httpx failures become our typed errors."""
        if self.response is None:
            if self.content:
                yield self.content
            return
        try:
            yield from self.response.iter_bytes()
        except httpx.HTTPError as error:
            raise map_httpx_error(error) from error

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive; httpx failures become our typed errors."""
        if self.response is None:
            if self.content:
                yield self.content
            return
        try:
            async for data in self.response.aiter_bytes():
                yield data
        except httpx.HTTPError as error:
            raise map_httpx_error(error) from error

    def close(self) -> None:
        """Release the connection."""
        if self.response is not None:
            self.response.close()

    async def aclose(self) -> None:
        """Release the connection."""
        if self.response is not None:
            await self.response.aclose()


def buffered_stream(status: int, content: bytes, headers: Mapping[str, str]) -> OpenStream:
    """A stream request answered with a body read whole: raise its error, else replay it."""
    try:
        return OpenStream(None, headers, decode_response(status, content, headers))
    except ResponseDecodeError:
        # Not one JSON document (e.g. back-to-back JSON objects): the stream decoder reads it.
        return OpenStream(None, headers, content=content)


class SyncTransport:
    """Sends requests through one reused ``httpx.Client``, with retries."""

    def __init__(self, config: ClientConfig, http_client: httpx.Client | None = None) -> None:
        self.config = config
        self._owns_client = http_client is None
        self.http_client = http_client or httpx.Client(limits=httpx.Limits(**DEFAULT_POOL_LIMITS))
        self._headers = request_headers(config)

    def __repr__(self) -> str:
        return f"SyncTransport(base_url={self.config.base_url!r})"

    def post_json(
        self, url: str, body: bytes, headers: Headers = None
    ) -> tuple[Any, Mapping[str, str]]:
        """POST ``body``; the decoded JSON answer and the response headers. Retries."""
        return self._retrying(self._post_once, url, body, headers)

    def open_stream(self, url: str, body: bytes, headers: Headers = None) -> OpenStream:
        """POST ``body`` for a stream; retries until the response starts well, never after."""
        return self._retrying(self._open_once, url, body, headers)

    def close(self) -> None:
        """Close the httpx client if this transport made it."""
        if self._owns_client:
            self.http_client.close()

    def _retrying(self, attempt: Callable[..., T], *args: Any) -> T:
        # The first attempt runs bare: tenacity costs more than our whole request on a success.
        try:
            return attempt(*args)
        except Exception as error:
            if not _worth_retrying(error, self.config):
                raise
            replay = _replaying(error, attempt)
        return cast(T, _retrier(self.config, asynchronous=False)(replay, *args))

    def _post_once(self, url: str, body: bytes, headers: Headers) -> tuple[Any, Mapping[str, str]]:
        try:
            response = self.http_client.post(
                url,
                content=body,
                headers=self._merge(headers),
                timeout=_timeouts(self.config, stream=False),
            )
        except httpx.HTTPError as error:
            raise map_httpx_error(error, url) from error
        return decode_response(
            response.status_code, response.content, response.headers
        ), response.headers

    def _open_once(self, url: str, body: bytes, headers: Headers) -> OpenStream:
        request = self.http_client.build_request(
            "POST",
            url,
            content=body,
            headers=self._merge(headers),
            timeout=_timeouts(self.config, stream=True),
        )
        try:
            response = self.http_client.send(request, stream=True)
        except httpx.HTTPError as error:
            raise map_httpx_error(error, url) from error
        if response.status_code < 400 and _is_event_stream(response):
            return OpenStream(response, response.headers)
        try:
            content = response.read()
        except httpx.HTTPError as error:
            raise map_httpx_error(error, url) from error
        finally:
            response.close()
        return buffered_stream(response.status_code, content, response.headers)

    def _merge(self, headers: Headers) -> dict[str, str]:
        return merge_headers(self._headers, headers)


class AsyncTransport:
    """Sends requests through one reused ``httpx.AsyncClient``, with retries."""

    def __init__(self, config: ClientConfig, http_client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._owns_client = http_client is None
        self.http_client = http_client or httpx.AsyncClient(
            limits=httpx.Limits(**DEFAULT_POOL_LIMITS)
        )
        self._headers = request_headers(config)

    def __repr__(self) -> str:
        return f"AsyncTransport(base_url={self.config.base_url!r})"

    async def post_json(
        self, url: str, body: bytes, headers: Headers = None
    ) -> tuple[Any, Mapping[str, str]]:
        """POST ``body``; the decoded JSON answer and the response headers. Retries."""
        return await self._retrying(self._post_once, url, body, headers)

    async def open_stream(self, url: str, body: bytes, headers: Headers = None) -> OpenStream:
        """POST ``body`` for a stream; retries until the response starts well, never after."""
        return await self._retrying(self._open_once, url, body, headers)

    async def aclose(self) -> None:
        """Close the httpx client if this transport made it."""
        if self._owns_client:
            await self.http_client.aclose()

    async def _retrying(self, attempt: Callable[..., Awaitable[T]], *args: Any) -> T:
        try:
            return await attempt(*args)
        except Exception as error:
            if not _worth_retrying(error, self.config):
                raise
            replay = _areplaying(error, attempt)
        return cast(T, await _retrier(self.config, asynchronous=True)(replay, *args))

    async def _post_once(
        self, url: str, body: bytes, headers: Headers
    ) -> tuple[Any, Mapping[str, str]]:
        try:
            response = await self.http_client.post(
                url,
                content=body,
                headers=self._merge(headers),
                timeout=_timeouts(self.config, stream=False),
            )
        except httpx.HTTPError as error:
            raise map_httpx_error(error, url) from error
        return decode_response(
            response.status_code, response.content, response.headers
        ), response.headers

    async def _open_once(self, url: str, body: bytes, headers: Headers) -> OpenStream:
        request = self.http_client.build_request(
            "POST",
            url,
            content=body,
            headers=self._merge(headers),
            timeout=_timeouts(self.config, stream=True),
        )
        try:
            response = await self.http_client.send(request, stream=True)
        except httpx.HTTPError as error:
            raise map_httpx_error(error, url) from error
        if response.status_code < 400 and _is_event_stream(response):
            return OpenStream(response, response.headers)
        try:
            content = await response.aread()
        except httpx.HTTPError as error:
            raise map_httpx_error(error, url) from error
        finally:
            await response.aclose()
        return buffered_stream(response.status_code, content, response.headers)

    def _merge(self, headers: Headers) -> dict[str, str]:
        return merge_headers(self._headers, headers)
