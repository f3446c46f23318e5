"""The only module that touches httpx: sync and async shells that send, retry and stream bytes.

Everything about content (bodies, frames, errors) is decided by the pure modules; the shells
send bytes, map httpx's exceptions (here, in one place), retry what ``_retry`` allows and hand
back bodies or byte streams. A stream is retried only while it is being opened, never after its
first byte.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
)
from typing import Any, Generic, Protocol, TypeVar

import httpx
import tenacity
from typing_extensions import Self

from opensearch_llm._config import DEFAULT_POOL_LIMITS, USER_AGENT_PREFIX, ClientConfig
from opensearch_llm._errors import (
    APIConnectionError,
    APITimeoutError,
    OpenSearchLLMError,
    ResponseDecodeError,
    StreamError,
)
from opensearch_llm._retry import backoff_delay, retry_allowed
from opensearch_llm._version import __version__
from opensearch_llm._wire import decode_response, request_id_of

logger = logging.getLogger("opensearch_llm")
T = TypeVar("T")
Item = TypeVar("Item")
Result = TypeVar("Result")
Item_co = TypeVar("Item_co", covariant=True)
Result_co = TypeVar("Result_co", covariant=True)

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


#: Extra headers of one request, or a function that makes them anew for every attempt (a signed
#: request needs a fresh date and nonce when it is retried).
Headers = Mapping[str, str] | Callable[[], Mapping[str, str]] | None


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


def _retry_options(config: ClientConfig) -> dict[str, Any]:
    return {
        "stop": tenacity.stop_after_attempt(config.max_retries + 1),
        "retry": tenacity.retry_if_exception(lambda e: retry_allowed(e, config.max_retry_after)),
        "wait": _wait_seconds(config),
        "before_sleep": _log_retry,
        "reraise": True,
    }


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
        if self.config.max_retries == 0:
            return attempt(*args)
        return tenacity.Retrying(sleep=time.sleep, **_retry_options(self.config))(attempt, *args)

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
        # tenacity awaits only coroutine functions: pass the method itself, not a lambda.
        if self.config.max_retries == 0:
            return await attempt(*args)
        retrying = tenacity.AsyncRetrying(sleep=asyncio.sleep, **_retry_options(self.config))
        return await retrying(attempt, *args)

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


class StreamDecoder(Protocol[Item_co, Result_co]):
    """What a stream shell needs of a pure decoder (chat chunks, knowledge-llm text)."""

    request_id: str | None

    @property
    def done(self) -> bool:
        """The end-of-stream marker arrived."""

    def feed(self, data: bytes) -> Iterable[Item_co]:
        """The items completed by ``data``."""

    def feed_body(self, body: Any) -> Iterable[Item_co]:
        """The items of a stream request answered with one JSON document."""

    def finish(self) -> Iterable[Item_co]:
        """The last items when the body ends."""

    def broken(self, cause: OpenSearchLLMError) -> OpenSearchLLMError:
        """The error to raise for ``cause``, carrying what was received."""

    def result(self) -> Result_co:
        """Everything received so far, aggregated."""


class _Stream(Generic[Item, Result]):
    def __init__(self, decoder: StreamDecoder[Item, Result]) -> None:
        self._decoder = decoder
        self._open: OpenStream | None = None
        self._started = False
        self._closed = False

    @property
    def request_id(self) -> str | None:
        """The service's request id, once the response has started."""
        return self._decoder.request_id

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers, once the response has started."""
        return self._open.headers if self._open is not None else {}

    def result(self) -> Result:
        """Everything received so far, aggregated (the whole answer at the end)."""
        return self._decoder.result()

    def _opened(self, opened: OpenStream) -> OpenStream:
        self._open = opened
        self._decoder.request_id = request_id_of(None, opened.headers) or self._decoder.request_id
        return opened

    def _claim(self) -> None:
        if self._started or self._closed:
            raise StreamError("a stream can be iterated only once", partial=self.result())
        self._started = True

    def _raise_broken(self, error: OpenSearchLLMError) -> None:
        broken = self._decoder.broken(error)
        if broken is error:
            raise error
        raise broken from error


class SyncStream(_Stream[Item, Result]):
    """A streamed response: a context manager and an iterable, sent when first entered or read."""

    def __init__(self, opener: Callable[[], OpenStream], decoder: StreamDecoder[Item, Result]):
        super().__init__(decoder)
        self._opener = opener

    def __enter__(self) -> Self:
        self._ensure_open()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Item]:
        self._claim()
        return self._items()

    def collect(self) -> Result:
        """Read the rest of the stream; everything, aggregated."""
        for _ in self:
            pass
        return self.result()

    def close(self) -> None:
        """Release the connection; safe to call more than once."""
        self._closed = True
        if self._open is not None:
            self._open.close()

    def _ensure_open(self) -> OpenStream:
        if self._open is None:
            if self._closed:
                raise StreamError("the stream was closed before it was opened")
            return self._opened(self._opener())
        return self._open

    def _items(self) -> Iterator[Item]:
        decoder = self._decoder
        try:
            opened = self._ensure_open()
            if opened.body is not None:
                yield from decoder.feed_body(opened.body)
                return
            for data in opened.iter_bytes():
                yield from decoder.feed(data)
                if decoder.done:
                    return
            yield from decoder.finish()
        except OpenSearchLLMError as error:
            self._raise_broken(error)
        finally:
            self.close()


class AsyncStream(_Stream[Item, Result]):
    """A streamed response: an async context manager and async iterable, sent when first used."""

    def __init__(
        self,
        opener: Callable[[], Coroutine[Any, Any, OpenStream]],
        decoder: StreamDecoder[Item, Result],
    ):
        super().__init__(decoder)
        self._opener = opener

    async def __aenter__(self) -> Self:
        await self._ensure_open()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[Item]:
        self._claim()
        return self._items()

    async def collect(self) -> Result:
        """Read the rest of the stream; everything, aggregated."""
        async for _ in self:
            pass
        return self.result()

    async def aclose(self) -> None:
        """Release the connection; safe to call more than once."""
        self._closed = True
        if self._open is not None:
            await self._open.aclose()

    async def _ensure_open(self) -> OpenStream:
        if self._open is None:
            if self._closed:
                raise StreamError("the stream was closed before it was opened")
            return self._opened(await self._opener())
        return self._open

    async def _items(self) -> AsyncIterator[Item]:
        decoder = self._decoder
        try:
            opened = await self._ensure_open()
            if opened.body is not None:
                for item in decoder.feed_body(opened.body):
                    yield item
                return
            async for data in opened.aiter_bytes():
                for item in decoder.feed(data):
                    yield item
                if decoder.done:
                    return
            for item in decoder.finish():
                yield item
        except OpenSearchLLMError as error:
            self._raise_broken(error)
        finally:
            await self.aclose()


class SyncClient:
    """Closing for clients that own a ``SyncTransport``: ``close()`` and ``with``."""

    _transport: SyncTransport

    def close(self) -> None:
        """Close the connection pool (unless the ``http_client`` was passed in)."""
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncClient:
    """Closing for clients that own an ``AsyncTransport``: ``aclose()`` and ``async with``."""

    _transport: AsyncTransport

    async def aclose(self) -> None:
        """Close the connection pool (unless the ``http_client`` was passed in)."""
        await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
