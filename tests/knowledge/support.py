"""Helpers: knowledge-llm bodies and frames, and a caller that runs one body sync or async."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from opensearch_llm.emulator import Emulator
from opensearch_llm.knowledge import AsyncKnowledgeClient, KnowledgeClient, KnowledgeResult
from tests.transport.mock_service import Body, Script, Step

KEY = "sk-knowledge-SECRET-0123456789"
HOST = "http://kb.service.test"
APP = "my_app"
URL = f"{HOST}/v3/openapi/apps/{APP}/actions/knowledge-llm"


def body(
    answer: str = "answer text", request_id: str = "abc123-ABC", **extra: Any
) -> dict[str, Any]:
    """The documented response (api-docs 002), as valid JSON."""
    return {
        "request_id": request_id,
        "latency": 10.0,
        "result": {"data": [{"answer": answer, "type": "text"}]},
        "errors": [],
        **extra,
    }


def failure(code: str = "1001", message: str = "APP is not found") -> dict[str, Any]:
    """An error body as knowledge-llm sends it (under any status)."""
    return {
        "request_id": "rid-err",
        "latency": 0.1,
        "status": "FAIL",
        "result": {"data": []},
        "errors": [{"code": code, "message": message}],
    }


def sse(*answers: str, space: bool = True, done: str | None = None) -> bytes:
    """SSE frames, one per answer (each a whole response object)."""
    prefix = "data: " if space else "data:"
    text = "".join(f"{prefix}{json.dumps(body(a))}\n\n" for a in answers)
    return (text + (f"{prefix}{done}\n\n" if done else "")).encode()


def stream_response(
    parts: list[bytes | BaseException], content_type: str = "text/event-stream", status: int = 200
) -> httpx.Response:
    return httpx.Response(status, headers={"content-type": content_type}, stream=Body(parts))


def fast(client: Any) -> Any:
    """``client`` with millisecond retry backoff (the retry policy is unchanged)."""
    client._transport.config = replace(
        client._transport.config, backoff_initial=0.001, backoff_max=0.002
    )
    return client


#: The client each mode runs.
CLIENTS = {"sync": KnowledgeClient, "async": AsyncKnowledgeClient}


@asynccontextmanager
async def entered(resource: Any, mode: str) -> AsyncIterator[Any]:
    """``with resource`` in sync mode, ``async with resource`` in async mode."""
    if mode == "sync":
        with resource as value:
            yield value
    else:
        async with resource as value:
            yield value


async def call_answer(client: Any, mode: str, **call: Any) -> KnowledgeResult:
    """``client.answer(**call)``, awaited in async mode."""
    if mode == "sync":
        return client.answer(**call)  # type: ignore[no-any-return]
    return await client.answer(**call)  # type: ignore[no-any-return]


async def read_stream(
    client: Any, mode: str, received: list[str] | None = None, **call: Any
) -> Any:
    """``client.stream(**call)`` after reading it all; ``received`` gets each piece (kept on error)."""
    sink = received if received is not None else []
    async with entered(client.stream(**call), mode) as stream:
        if mode == "sync":
            for piece in stream:
                sink.append(piece)
        else:
            async for piece in stream:
                sink.append(piece)
        return stream


@dataclass
class Caller:
    """Runs one test body against the sync or the async knowledge client."""

    mode: str
    script: Script = field(default_factory=lambda: Script([]))

    def client(self, *steps: Step, **options: Any) -> Any:
        self.script.steps = list(steps)
        options.setdefault("host", HOST)
        options.setdefault("app", APP)
        if "auth" not in options:
            options.setdefault("api_key", KEY)
        transport = httpx.MockTransport(self.script.handle)
        if self.mode == "sync":
            return fast(KnowledgeClient(http_client=httpx.Client(transport=transport), **options))
        return fast(
            AsyncKnowledgeClient(http_client=httpx.AsyncClient(transport=transport), **options)
        )

    async def answer(
        self, *steps: Step, client_options: dict[str, Any] | None = None, **call: Any
    ) -> KnowledgeResult:
        client = self.client(*steps, **(client_options or {}))
        call.setdefault("question", "what is OpenSearch")
        return await call_answer(client, self.mode, **call)

    async def stream(
        self,
        *steps: Step,
        received: list[str] | None = None,
        client_options: dict[str, Any] | None = None,
        **call: Any,
    ) -> Any:
        """The stream after reading it all; ``received`` gets each piece (kept on error)."""
        client = self.client(*steps, **(client_options or {}))
        call.setdefault("question", "what is OpenSearch")
        return await read_stream(client, self.mode, received, **call)


@dataclass
class EmulatorCaller:
    """The same, against the emulator's in-process transports."""

    mode: str
    emulator: Emulator = field(default_factory=Emulator)

    def client(self, **options: Any) -> Any:
        options.setdefault("host", "http://emulator.local")
        options.setdefault("app", APP)
        options.setdefault("api_key", KEY)
        if self.mode == "sync":
            return fast(
                KnowledgeClient(
                    http_client=httpx.Client(transport=self.emulator.transport()), **options
                )
            )
        return fast(
            AsyncKnowledgeClient(
                http_client=httpx.AsyncClient(transport=self.emulator.async_transport()), **options
            )
        )

    async def answer(
        self, client_options: dict[str, Any] | None = None, **call: Any
    ) -> KnowledgeResult:
        return await call_answer(self.client(**(client_options or {})), self.mode, **call)

    async def stream(
        self,
        received: list[str] | None = None,
        client_options: dict[str, Any] | None = None,
        **call: Any,
    ) -> Any:
        return await read_stream(self.client(**(client_options or {})), self.mode, received, **call)
