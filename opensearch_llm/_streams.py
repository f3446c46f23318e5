"""The sync and async stream objects every streaming call returns, over a pure decoder. No HTTP.

A stream hands the bytes of an ``OpenStream`` (``_transport``) to a decoder (chat chunks in
``_chat_stream``, knowledge-llm text in ``_knowledge``) and raises what it decides; it gives
its connection back when it ends, breaks or is closed. Importing this module loads no HTTP
library.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from typing_extensions import Self

from opensearch_llm._bodies import request_id_of
from opensearch_llm._errors import OpenSearchLLMError, StreamError, hide_secrets

if TYPE_CHECKING:
    from opensearch_llm._transport import OpenStream

Item = TypeVar("Item")
Result = TypeVar("Result")
Item_co = TypeVar("Item_co", covariant=True)
Result_co = TypeVar("Result_co", covariant=True)


class StreamDecoder(Protocol[Item_co, Result_co]):
    """What a stream shell needs of a pure decoder (chat chunks, knowledge-llm text)."""

    request_id: str | None

    @property
    def done(self) -> bool:
        """The end-of-stream marker arrived."""

    @property
    def finished(self) -> bool:
        """The answer is complete (only trailing frames such as usage may follow)."""

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

    def _finished(self) -> bool:
        # The answer is complete: what is left (usage, ``[DONE]``) is read, to reuse the
        # connection; a stream left half-way is closed instead.
        return self._decoder.done or self._decoder.finished

    def _raise_broken(self, error: OpenSearchLLMError) -> None:
        secrets = self._open.secrets if self._open is not None else ()
        hide_secrets(error, secrets)  # a frame may echo the key
        broken = self._decoder.broken(error)
        hide_secrets(broken, secrets)
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
            self._open.close(self._finished())

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
            await self._open.aclose(self._finished())

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
