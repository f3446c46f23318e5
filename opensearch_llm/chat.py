"""Chat completions over compatible mode and the AI gateway, sync and async."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from typing import Any

import httpx
from pydantic import SecretStr
from typing_extensions import Self, Unpack

from opensearch_llm._config import (
    CHAT_COMPLETIONS_PATH,
    DEFAULT_MAX_RETRIES,
    ClientConfig,
    Timeouts,
    resolve_api_key,
    resolve_base_url,
)
from opensearch_llm._errors import OpenSearchLLMError, ResponseDecodeError, StreamError
from opensearch_llm._stream import ChatChunkDecoder
from opensearch_llm._transport import AsyncTransport, OpenStream, SyncTransport
from opensearch_llm._types import ChatCompletion, ChatCompletionChunk, ChatParams, Message
from opensearch_llm._wire import (
    ChatRequest,
    build_chat_request,
    encode_json,
    normalise_completion,
    request_id_of,
)


def make_config(
    api_key: str | SecretStr | None,
    base_url: str | None,
    region: str | None,
    timeout: float | Timeouts | None,
    connect_timeout: float | None,
    stream_idle_timeout: float | None,
    max_retries: int,
    default_headers: Mapping[str, str] | None,
) -> ClientConfig:
    """A ``ClientConfig`` from a client's arguments and the environment."""
    if isinstance(timeout, Timeouts):
        timeouts = timeout
    else:
        given = {"read": timeout, "connect": connect_timeout, "stream_idle": stream_idle_timeout}
        timeouts = Timeouts(**{k: v for k, v in given.items() if v is not None})
    return ClientConfig(
        api_key=resolve_api_key(api_key),
        base_url=resolve_base_url(base_url, region),
        timeouts=timeouts,
        max_retries=max_retries,
        default_headers=dict(default_headers or {}),
    )


def _completion(answer: Any, headers: Mapping[str, str]) -> ChatCompletion:
    if not isinstance(answer, dict) or "choices" not in answer:
        raise ResponseDecodeError(f"the answer is not a chat.completion: {str(answer)[:200]}")
    return normalise_completion(answer, request_id_of(answer, headers))


class _ChatClientBase:
    _config: ClientConfig

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        base_url: str | None = None,
        region: str | None = None,
        timeout: float | Timeouts | None = None,
        connect_timeout: float | None = None,
        stream_idle_timeout: float | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        self._config = make_config(
            api_key,
            base_url,
            region,
            timeout,
            connect_timeout,
            stream_idle_timeout,
            max_retries,
            default_headers,
        )
        self._url = self._config.base_url + CHAT_COMPLETIONS_PATH

    @property
    def base_url(self) -> str:
        """The base URL requests go to (``{base_url}/chat/completions``)."""
        return self._config.base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._config.base_url!r})"


class ChatClient(_ChatClientBase):
    """Chat completions, synchronous; one pooled ``httpx.Client`` per instance.

    Example::

        with ChatClient(region="singapore") as client:
            answer = client.create(model="qwen-plus", messages=[{"role": "user", "content": "Hi"}])
            print(answer["choices"][0]["message"]["content"])
            with client.stream(model="qwen-plus", messages=[...]) as stream:
                for chunk in stream:
                    ...
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        http_client: httpx.Client | None = None,
        **options: Any,
    ) -> None:
        super().__init__(api_key, **options)
        self._transport = SyncTransport(self._config, http_client)

    def create(
        self, *, model: str, messages: list[Message], **params: Unpack[ChatParams]
    ) -> ChatCompletion:
        """One completion. Models that only stream are streamed and aggregated."""
        request = build_chat_request(model, messages, params, stream=False)
        if request.aggregate:
            with self._stream(request) as stream:
                return stream.collect()
        answer, headers = self._transport.post_json(
            self._url, encode_json(request.payload), request.headers
        )
        return _completion(answer, headers)

    def stream(
        self, *, model: str, messages: list[Message], **params: Unpack[ChatParams]
    ) -> ChatStream:
        """A stream of chunks; validated now, sent when first iterated or entered."""
        return self._stream(build_chat_request(model, messages, params, stream=True))

    def _stream(self, request: ChatRequest) -> ChatStream:
        body = encode_json(request.payload)
        return ChatStream(lambda: self._transport.open_stream(self._url, body, request.headers))

    def close(self) -> None:
        """Close the connection pool (unless the ``http_client`` was passed in)."""
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncChatClient(_ChatClientBase):
    """Chat completions, asynchronous; one pooled ``httpx.AsyncClient`` per instance.

    Example::

        async with AsyncChatClient() as client:
            answer = await client.create(model="qwen-plus", messages=[...])
            async with client.stream(model="qwen-plus", messages=[...]) as stream:
                async for chunk in stream:
                    ...
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        http_client: httpx.AsyncClient | None = None,
        **options: Any,
    ) -> None:
        super().__init__(api_key, **options)
        self._transport = AsyncTransport(self._config, http_client)

    async def create(
        self, *, model: str, messages: list[Message], **params: Unpack[ChatParams]
    ) -> ChatCompletion:
        """One completion. Models that only stream are streamed and aggregated."""
        request = build_chat_request(model, messages, params, stream=False)
        if request.aggregate:
            async with self._stream(request) as stream:
                return await stream.collect()
        answer, headers = await self._transport.post_json(
            self._url, encode_json(request.payload), request.headers
        )
        return _completion(answer, headers)

    def stream(
        self, *, model: str, messages: list[Message], **params: Unpack[ChatParams]
    ) -> AsyncChatStream:
        """A stream of chunks; validated now, sent when first iterated or entered."""
        return self._stream(build_chat_request(model, messages, params, stream=True))

    def _stream(self, request: ChatRequest) -> AsyncChatStream:
        body = encode_json(request.payload)
        return AsyncChatStream(
            lambda: self._transport.open_stream(self._url, body, request.headers)
        )

    async def aclose(self) -> None:
        """Close the connection pool (unless the ``http_client`` was passed in)."""
        await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


class _StreamBase:
    def __init__(self) -> None:
        self._decoder = ChatChunkDecoder()
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

    def completion(self) -> ChatCompletion:
        """The ``chat.completion`` of everything received so far (the whole one at the end)."""
        return self._decoder.completion()

    def _opened(self, opened: OpenStream) -> OpenStream:
        self._open = opened
        self._decoder.request_id = request_id_of(None, opened.headers)
        return opened

    def _claim(self) -> None:
        if self._started or self._closed:
            raise StreamError("a stream can be iterated only once", partial=self.completion())
        self._started = True


class ChatStream(_StreamBase):
    """A streamed completion: iterate it for chunk dicts; use it in ``with`` to close it surely."""

    def __init__(self, opener: Callable[[], OpenStream]) -> None:
        super().__init__()
        self._opener = opener

    def __enter__(self) -> Self:
        self._ensure_open()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        self._claim()
        return self._chunks()

    def collect(self) -> ChatCompletion:
        """Read the rest of the stream; the whole ``chat.completion``."""
        for _ in self:
            pass
        return self.completion()

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

    def _chunks(self) -> Iterator[ChatCompletionChunk]:
        decoder = self._decoder
        try:
            opened = self._ensure_open()
            if opened.body is not None:
                yield from decoder.feed_completion(opened.body)
                return
            for data in opened.iter_bytes():
                yield from decoder.feed(data)
                if decoder.done:
                    return
            yield from decoder.finish()
        except OpenSearchLLMError as error:
            broken = decoder.broken(error)
            if broken is error:
                raise
            raise broken from error
        finally:
            self.close()


class AsyncChatStream(_StreamBase):
    """A streamed completion: ``async for`` its chunks; ``async with`` closes it surely."""

    def __init__(self, opener: Callable[[], Coroutine[Any, Any, OpenStream]]) -> None:
        super().__init__()
        self._opener = opener

    async def __aenter__(self) -> Self:
        await self._ensure_open()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        self._claim()
        return self._chunks()

    async def collect(self) -> ChatCompletion:
        """Read the rest of the stream; the whole ``chat.completion``."""
        async for _ in self:
            pass
        return self.completion()

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

    async def _chunks(self) -> AsyncIterator[ChatCompletionChunk]:
        decoder = self._decoder
        try:
            opened = await self._ensure_open()
            if opened.body is not None:
                for chunk in decoder.feed_completion(opened.body):
                    yield chunk
                return
            async for data in opened.aiter_bytes():
                for chunk in decoder.feed(data):
                    yield chunk
                if decoder.done:
                    return
            for chunk in decoder.finish():
                yield chunk
        except OpenSearchLLMError as error:
            broken = decoder.broken(error)
            if broken is error:
                raise
            raise broken from error
        finally:
            await self.aclose()
