"""Test helpers: a scripted fake endpoint, wire-dict builders, and sync/async call shims.

``ScriptedService`` answers each request with the next scripted reply: a ``chat.completion``
dict (JSON), a list of chunk dicts (SSE, optionally cut short by a network error), or an
``httpx.Response``. It records every request body. It lives in ``httpx.MockTransport``, so no
socket is opened.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse

from llama_index_opensearch_llm import OpenSearchLLM

BASE_URL = "http://emulator.local/compatible-mode/v1"
API_KEY = "sk-test-secret-123"


# --------------------------------------------------------------------------- wire dicts


def completion(
    content: str | None = "Hello!",
    *,
    reasoning: str | None = None,
    tool_calls: Sequence[dict[str, Any]] = (),
    finish_reason: str = "stop",
    usage: dict[str, Any] | None = None,
    model: str = "qwen-plus",
    request_id: str = "req-1",
) -> dict[str, Any]:
    """A ``chat.completion`` body as the service sends it."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning:
        message["reasoning_content"] = reasoning
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": usage
        if usage is not None
        else {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """A complete tool call of a non-streamed message."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def chunk(
    delta: dict[str, Any] | None = None,
    *,
    finish: str | None = None,
    request_id: str = "req-1",
    model: str = "qwen-plus",
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` with one choice."""
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
        "usage": None,
    }


def usage_chunk(prompt: int = 5, completion_tokens: int = 7, **details: Any) -> dict[str, Any]:
    """The usage-only last chunk (``choices: []``)."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
        **details,
    }
    return {
        "id": "chatcmpl-req-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "qwen-plus",
        "choices": [],
        "usage": usage,
    }


def fragment(
    index: int, call_id: str | None = "", name: str | None = None, arguments: str | None = None
) -> dict[str, Any]:
    """A streamed tool-call fragment as the service sends it (``"id": ""`` after the first)."""
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    return {"index": index, "id": call_id, "type": "function", "function": function}


def text_chunks(*pieces: str) -> list[dict[str, Any]]:
    """A plain streamed answer: the role chunk's content is the first piece (not empty)."""
    chunks = [chunk({"role": "assistant", "content": pieces[0]})]
    chunks += [chunk({"content": piece}) for piece in pieces[1:]]
    chunks.append(chunk({"content": ""}, finish="stop"))
    chunks.append(usage_chunk())
    return chunks


# --------------------------------------------------------------------------- the fake service


@dataclass
class Broken:
    """A stream that sends ``chunks`` and then loses its connection."""

    chunks: list[dict[str, Any]]


def sse_frames(chunks: Sequence[dict[str, Any]], *, done: bool = True) -> list[bytes]:
    """SSE frames of ``chunks``, one per network read as a real connection delivers them."""
    frames = [f"data: {json.dumps(c, ensure_ascii=False)}\n\n".encode() for c in chunks]
    return frames + ([b"data: [DONE]\n\n"] if done else [])


class FramedStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Yields ``frames`` one at a time; then, if ``broken``, raises like a connection reset."""

    def __init__(self, frames: list[bytes], *, broken: bool = False) -> None:
        self._frames = frames
        self._broken = broken
        self.closed = False

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True

    def __iter__(self) -> Iterator[bytes]:
        yield from self._frames
        if self._broken:
            raise httpx.ReadError("connection reset by peer")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for frame in self._frames:
            yield frame
        if self._broken:
            raise httpx.ReadError("connection reset by peer")


def event_stream(frames: list[bytes], *, broken: bool = False) -> httpx.Response:
    """A ``text/event-stream`` response made of ``frames``."""
    return httpx.Response(
        200,
        headers={"content-type": "text/event-stream"},
        stream=FramedStream(frames, broken=broken),
    )


Reply = dict[str, Any] | list[dict[str, Any]] | Broken | httpx.Response


@dataclass
class ScriptedService:
    """Answers requests with scripted replies, in order; records the request bodies."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[httpx.Headers] = field(default_factory=list)
    streams: list[FramedStream] = field(default_factory=list)

    def script(self, *replies: Reply) -> ScriptedService:
        self.replies.extend(replies)
        return self

    @property
    def last(self) -> dict[str, Any]:
        return self.requests[-1]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(json.loads(request.content))
        self.headers.append(request.headers)
        if not self.replies:
            raise AssertionError("unexpected request: " + request.content.decode()[:300])
        reply = self.replies.pop(0)
        if isinstance(reply, httpx.Response):
            return reply
        if isinstance(reply, Broken):
            return self._stream(event_stream(sse_frames(reply.chunks, done=False), broken=True))
        if isinstance(reply, list):
            return self._stream(event_stream(sse_frames(reply)))
        return httpx.Response(200, json=reply)

    def _stream(self, response: httpx.Response) -> httpx.Response:
        assert isinstance(response.stream, FramedStream)
        self.streams.append(response.stream)
        return response

    def llm(self, **fields: Any) -> OpenSearchLLM:
        """An OpenSearchLLM whose sync and async clients both talk to this service."""
        transport = httpx.MockTransport(self.handle)
        options: dict[str, Any] = {"api_key": API_KEY, "base_url": BASE_URL}
        options.update(fields)
        return OpenSearchLLM(
            http_client=httpx.Client(transport=transport),
            async_http_client=httpx.AsyncClient(transport=transport),
            **options,
        )


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


# --------------------------------------------------------------------------- sync / async shims


class Calls:
    """One interface over the sync methods and their async twins, for parametrized tests.

    Stream helpers append each response to ``into`` as it arrives, so a test can inspect what
    was yielded before an error.
    """

    mode = ""

    def chat(self, llm: Any, messages: list[ChatMessage], **kw: Any) -> ChatResponse:
        raise NotImplementedError

    def complete(self, llm: Any, prompt: str, **kw: Any) -> CompletionResponse:
        raise NotImplementedError

    def stream_chat(
        self, llm: Any, messages: list[ChatMessage], into: list[Any] | None = None, **kw: Any
    ) -> list[ChatResponse]:
        raise NotImplementedError

    def stream_complete(
        self, llm: Any, prompt: str, into: list[Any] | None = None, **kw: Any
    ) -> list[CompletionResponse]:
        raise NotImplementedError

    def call(self, llm: Any, name: str, *args: Any, **kw: Any) -> Any:
        """``llm.<name>(...)`` or ``await llm.a<name>(...)``."""
        raise NotImplementedError

    def stream(
        self, llm: Any, name: str, *args: Any, into: list[Any] | None = None, **kw: Any
    ) -> list[Any]:
        """Everything ``llm.<name>(...)`` or ``llm.a<name>(...)`` yields."""
        raise NotImplementedError


class SyncCalls(Calls):
    mode = "sync"

    def chat(self, llm: Any, messages: list[ChatMessage], **kw: Any) -> ChatResponse:
        return llm.chat(messages, **kw)  # type: ignore[no-any-return]

    def complete(self, llm: Any, prompt: str, **kw: Any) -> CompletionResponse:
        return llm.complete(prompt, **kw)  # type: ignore[no-any-return]

    def stream_chat(
        self, llm: Any, messages: list[ChatMessage], into: list[Any] | None = None, **kw: Any
    ) -> list[ChatResponse]:
        return _drain(llm.stream_chat(messages, **kw), into)

    def stream_complete(
        self, llm: Any, prompt: str, into: list[Any] | None = None, **kw: Any
    ) -> list[CompletionResponse]:
        return _drain(llm.stream_complete(prompt, **kw), into)

    def call(self, llm: Any, name: str, *args: Any, **kw: Any) -> Any:
        return getattr(llm, name)(*args, **kw)

    def stream(
        self, llm: Any, name: str, *args: Any, into: list[Any] | None = None, **kw: Any
    ) -> list[Any]:
        return _drain(getattr(llm, name)(*args, **kw), into)


class AsyncCalls(Calls):
    mode = "async"

    def chat(self, llm: Any, messages: list[ChatMessage], **kw: Any) -> ChatResponse:
        return asyncio.run(llm.achat(messages, **kw))  # type: ignore[no-any-return]

    def complete(self, llm: Any, prompt: str, **kw: Any) -> CompletionResponse:
        return asyncio.run(llm.acomplete(prompt, **kw))  # type: ignore[no-any-return]

    def stream_chat(
        self, llm: Any, messages: list[ChatMessage], into: list[Any] | None = None, **kw: Any
    ) -> list[ChatResponse]:
        return asyncio.run(_adrain(lambda: llm.astream_chat(messages, **kw), into))

    def stream_complete(
        self, llm: Any, prompt: str, into: list[Any] | None = None, **kw: Any
    ) -> list[CompletionResponse]:
        return asyncio.run(_adrain(lambda: llm.astream_complete(prompt, **kw), into))

    def call(self, llm: Any, name: str, *args: Any, **kw: Any) -> Any:
        return asyncio.run(getattr(llm, "a" + name)(*args, **kw))

    def stream(
        self, llm: Any, name: str, *args: Any, into: list[Any] | None = None, **kw: Any
    ) -> list[Any]:
        return asyncio.run(_adrain(lambda: getattr(llm, "a" + name)(*args, **kw), into))


def _drain(items: Iterator[Any], into: list[Any] | None) -> list[Any]:
    out = [] if into is None else into
    for item in items:
        out.append(item)
    return out


async def _adrain(make: Callable[[], Any], into: list[Any] | None) -> list[Any]:
    out = [] if into is None else into
    gen = await make()
    async for item in gen:
        out.append(item)
    return out
