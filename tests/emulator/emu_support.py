"""Helpers for the emulator's tests: a uniform caller and what it collects.

``call`` sends one request through the sync in-process transport, the async one, or a real
socket (``serve``), and collects whatever arrives, the error included, so one test body checks
all three.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from opensearch_llm.emulator import Emulator, EmulatorServer

KEY = "sk-emulator-test"
COMPATIBLE = "/compatible-mode/v1/chat/completions"
GATEWAY = "/api/v1/chat/completions"
KNOWLEDGE = "/v3/openapi/apps/my-app/actions/knowledge-llm"
IN_PROCESS_ORIGIN = "http://emulator.local"
MODES = ("sync", "async", "socket")


def ask(text: str = "Recommend one science fiction book", **params: Any) -> dict[str, Any]:
    """A chat body with one user message."""
    return {"model": "qwen-plus", "messages": [{"role": "user", "content": text}], **params}


@dataclass
class Result:
    """What a client saw: the head (unless the connection broke first), the body, the error."""

    status: int | None = None
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    body: bytes = b""
    error: Exception | None = None
    reads: int = 0

    def json(self) -> Any:
        return json.loads(self.body)

    def data(self) -> list[str]:
        """The payload of every SSE ``data:`` line."""
        lines = self.body.decode().split("\n")
        return [line[5:].strip() for line in lines if line.startswith("data:")]

    def chunks(self) -> list[Any]:
        """The JSON of every data frame but ``[DONE]``."""
        return [json.loads(data) for data in self.data() if data != "[DONE]"]


@dataclass
class Caller:
    """Sends requests in one mode (``sync``, ``async`` or ``socket``)."""

    mode: str
    emulator: Emulator
    server: EmulatorServer
    sync_client: httpx.Client
    async_client: httpx.AsyncClient
    socket_client: httpx.Client

    async def __call__(
        self,
        body: Any,
        path: str = COMPATIBLE,
        headers: dict[str, str] | None = None,
        key: str | None = KEY,
        method: str = "POST",
        timeout: float | None = 10.0,
    ) -> Result:
        sent = {"Authorization": f"Bearer {key}"} if key is not None else {}
        sent.update(headers or {})
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        options: dict[str, Any] = {"headers": sent, "content": content, "timeout": timeout}
        if self.mode == "async":
            return await _async_call(self.async_client, method, path, options)
        client = self.socket_client if self.mode == "socket" else self.sync_client
        return _sync_call(client, method, path, options)


def _sync_call(client: httpx.Client, method: str, path: str, options: dict[str, Any]) -> Result:
    result = Result()
    try:
        with client.stream(method, path, **options) as response:
            result.status, result.headers = response.status_code, response.headers
            for piece in response.iter_raw():
                result.body += piece
                result.reads += 1
    except httpx.TransportError as exc:
        result.error = exc
    return result


async def _async_call(
    client: httpx.AsyncClient, method: str, path: str, options: dict[str, Any]
) -> Result:
    result = Result()
    try:
        async with client.stream(method, path, **options) as response:
            result.status, result.headers = response.status_code, response.headers
            async for piece in response.aiter_raw():
                result.body += piece
                result.reads += 1
    except httpx.TransportError as exc:
        result.error = exc
    return result
