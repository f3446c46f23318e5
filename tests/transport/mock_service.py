"""A scripted mock service for transport tests: one response (or failure) per request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from opensearch_llm import AsyncChatClient, ChatClient

KEY = "sk-test-SECRET-0123456789"
USER = [{"role": "user", "content": "hi"}]


class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body sent in the given pieces; an exception among them is raised there."""

    def __init__(self, parts: list[bytes | BaseException]) -> None:
        self.parts = parts
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for part in self.parts:
            if isinstance(part, BaseException):
                raise part
            yield part

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            if isinstance(part, BaseException):
                raise part
            yield part

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def sse(*frames: Any, done: bool = True) -> list[bytes | BaseException]:
    parts: list[bytes | BaseException] = [
        f"data: {json.dumps(f)}\n\n".encode() if not isinstance(f, (bytes, BaseException)) else f
        for f in frames
    ]
    if done:
        parts.append(b"data: [DONE]\n\n")
    return parts


def chunk(content: str | None = None, finish: str | None = None, **delta: Any) -> dict[str, Any]:
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-req42",
        "object": "chat.completion.chunk",
        "model": "qwen-plus",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def completion(content: str = "Hello") -> dict[str, Any]:
    return {
        "id": "chatcmpl-req7",
        "object": "chat.completion",
        "model": "qwen-plus",
        "created": 1,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def stream_response(
    parts: list[bytes | BaseException], status: int = 200, **headers: str
) -> httpx.Response:
    return httpx.Response(
        status, headers={"content-type": "text/event-stream", **headers}, stream=Body(parts)
    )


Step = httpx.Response | BaseException | Callable[[httpx.Request], httpx.Response]


@dataclass
class Script:
    """Answers request i with step i (the last step repeats); records every request."""

    steps: list[Step]
    requests: list[httpx.Request] = field(default_factory=list)
    bodies: list[Body] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps[min(len(self.requests), len(self.steps)) - 1]
        if isinstance(step, BaseException):
            raise step
        response = (
            step(request) if callable(step) and not isinstance(step, httpx.Response) else step
        )
        if isinstance(response.stream, Body):
            self.bodies.append(response.stream)
        return response

    @property
    def payloads(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]

    def all_closed(self) -> bool:
        return all(body.closed for body in self.bodies)


@dataclass
class Caller:
    """Runs one test body against the sync or the async client."""

    mode: str
    script: Script = field(default_factory=lambda: Script([]))

    def client(self, **options: Any) -> Any:
        options.setdefault("base_url", "http://service.test/compatible-mode/v1")
        transport = httpx.MockTransport(self.script.handle)
        if self.mode == "sync":
            return ChatClient(KEY, http_client=httpx.Client(transport=transport), **options)
        return AsyncChatClient(KEY, http_client=httpx.AsyncClient(transport=transport), **options)

    async def create(
        self, *steps: Step, client_options: dict[str, Any] | None = None, **params: Any
    ) -> Any:
        self.script.steps = list(steps)
        client = self.client(**(client_options or {}))
        params.setdefault("model", "qwen-plus")
        params.setdefault("messages", USER)
        if self.mode == "sync":
            return client.create(**params)
        return await client.create(**params)

    async def stream(
        self,
        *steps: Step,
        received: list[Any] | None = None,
        client_options: dict[str, Any] | None = None,
        **params: Any,
    ) -> Any:
        """All chunks; ``received`` gets each chunk as it arrives (kept when an error is raised)."""
        self.script.steps = list(steps)
        client = self.client(**(client_options or {}))
        params.setdefault("model", "qwen-plus")
        params.setdefault("messages", USER)
        sink = received if received is not None else []
        if self.mode == "sync":
            with client.stream(**params) as stream:
                for item in stream:
                    sink.append(item)
                return stream
        async with client.stream(**params) as stream:
            async for item in stream:
                sink.append(item)
            return stream
