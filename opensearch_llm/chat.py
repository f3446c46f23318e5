"""Chat completions over compatible mode and the AI gateway, sync and async."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from typing_extensions import Unpack

from opensearch_llm._bodies import encode_json, request_id_of
from opensearch_llm._chat_stream import ChatChunkDecoder
from opensearch_llm._chat_wire import (
    ChatRequest,
    build_chat_request,
    completion_problem,
    normalise_completion,
)
from opensearch_llm._client_base import AsyncClientBase, SyncClientBase
from opensearch_llm._config import (
    CHAT_COMPLETIONS_PATH,
    DEFAULT_MAX_EVENT_BYTES,
    ClientConfig,
    ConnectionOptions,
    make_config,
    resolve_api_key,
    resolve_base_url,
)
from opensearch_llm._errors import ResponseDecodeError
from opensearch_llm._streams import AsyncStream, SyncStream
from opensearch_llm._types import ChatCompletion, ChatCompletionChunk, ChatParams, Message

if TYPE_CHECKING:
    import httpx

    from opensearch_llm._transport import OpenStream


def _completion(answer: Any, headers: Mapping[str, str]) -> ChatCompletion:
    if completion_problem(answer) is not None:
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
        **options: Unpack[ConnectionOptions],
    ) -> None:
        self._config = make_config(
            resolve_api_key(api_key), resolve_base_url(base_url, region), **options
        )
        self._url = self._config.base_url + CHAT_COMPLETIONS_PATH

    @property
    def base_url(self) -> str:
        """The base URL requests go to (``{base_url}/chat/completions``)."""
        return self._config.base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._config.base_url!r})"


class ChatClient(_ChatClientBase, SyncClientBase):
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
        self._connect(self._config, http_client)

    def create(
        self, *, model: str, messages: list[Message], **params: Unpack[ChatParams]
    ) -> ChatCompletion:
        """One completion. Models that only stream are streamed and aggregated."""
        request = build_chat_request(model, messages, params, stream=False)
        if request.aggregate:
            with self._stream(request) as stream:
                return stream.collect()
        return self._transport.post_json(
            self._url, encode_json(request.payload), request.headers, _completion
        )

    def stream(
        self, *, model: str, messages: list[Message], **params: Unpack[ChatParams]
    ) -> ChatStream:
        """A stream of chunks; validated now, sent when first iterated or entered."""
        return self._stream(build_chat_request(model, messages, params, stream=True))

    def _stream(self, request: ChatRequest) -> ChatStream:
        body = encode_json(request.payload)
        return ChatStream(
            lambda: self._transport.open_stream(
                self._url, body, request.headers, aggregate=request.aggregate
            ),
            self._config.max_event_bytes,
        )


class AsyncChatClient(_ChatClientBase, AsyncClientBase):
    """Chat completions, asynchronous; one aiohttp connection pool per instance (per event loop).

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
        self._connect(self._config, http_client)

    async def create(
        self, *, model: str, messages: list[Message], **params: Unpack[ChatParams]
    ) -> ChatCompletion:
        """One completion. Models that only stream are streamed and aggregated."""
        request = build_chat_request(model, messages, params, stream=False)
        if request.aggregate:
            async with self._stream(request) as stream:
                return await stream.collect()
        return await self._transport.post_json(
            self._url, encode_json(request.payload), request.headers, _completion
        )

    def stream(
        self, *, model: str, messages: list[Message], **params: Unpack[ChatParams]
    ) -> AsyncChatStream:
        """A stream of chunks; validated now, sent when first iterated or entered."""
        return self._stream(build_chat_request(model, messages, params, stream=True))

    def _stream(self, request: ChatRequest) -> AsyncChatStream:
        body = encode_json(request.payload)
        return AsyncChatStream(
            lambda: self._transport.open_stream(
                self._url, body, request.headers, aggregate=request.aggregate
            ),
            self._config.max_event_bytes,
        )


class ChatStream(SyncStream[ChatCompletionChunk, ChatCompletion]):
    """A streamed completion: iterate it for chunk dicts; use it in ``with`` to close it surely.

    ``completion()`` is the ``chat.completion`` received so far; a stream that breaks raises
    ``StreamError`` whose ``partial`` is that completion.
    """

    def __init__(
        self, opener: Callable[[], OpenStream], max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    ) -> None:
        super().__init__(opener, ChatChunkDecoder(max_event_bytes=max_event_bytes))

    def completion(self) -> ChatCompletion:
        """The ``chat.completion`` of everything received so far (the whole one at the end)."""
        return self.result()


class AsyncChatStream(AsyncStream[ChatCompletionChunk, ChatCompletion]):
    """A streamed completion: ``async for`` its chunks; ``async with`` closes it surely."""

    def __init__(
        self,
        opener: Callable[[], Coroutine[Any, Any, OpenStream]],
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        super().__init__(opener, ChatChunkDecoder(max_event_bytes=max_event_bytes))

    def completion(self) -> ChatCompletion:
        """The ``chat.completion`` of everything received so far (the whole one at the end)."""
        return self.result()
