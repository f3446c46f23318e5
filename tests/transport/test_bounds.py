"""Every response is bounded in time and size, on every sender: httpx (sync), aiohttp (async by
default) and an injected ``httpx.AsyncClient``; over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from opensearch_llm import (
    APITimeoutError,
    AsyncChatClient,
    ChatClient,
    ResponseTooLargeError,
    StreamError,
)
from opensearch_llm.emulator import Emulator, serve

from .mock_service import KEY, USER, completion
from .raw_server import raw_server

LIMIT = 1_000_000
COMPLETION = json.dumps(completion("x" * 200)).encode()


async def _declared_too_large(request: web.Request) -> web.Response:
    return web.json_response({"pad": "x" * (2 * LIMIT)})


async def _chunked_too_large(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(4 * LIMIT // 65536):
        await response.write(b" " * 65536)
    await response.write_eof()
    return response


# 64 MiB of spaces, gzip-compressed to about 64 KiB: small on the wire, large decoded.
_BOMB = gzip.compress(b" " * (64 * 1024 * 1024), compresslevel=9)


async def _gzip_bomb(request: web.Request) -> web.Response:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    return web.Response(body=_BOMB, headers=headers)


async def _error_too_large(request: web.Request) -> web.Response:
    return web.json_response({"error": {"message": "x" * (2 * LIMIT)}}, status=500)


async def _trickled_json(request: web.Request) -> web.StreamResponse:
    # A server that never stops sending yet never finishes: one byte every 20 ms.
    response = web.StreamResponse(
        headers={"Content-Type": "application/json", "Content-Length": str(len(COMPLETION))}
    )
    await response.prepare(request)
    try:
        for index in range(len(COMPLETION)):
            await response.write(COMPLETION[index : index + 1])
            await asyncio.sleep(0.02)
    except (ConnectionError, RuntimeError):
        pass
    return response


_FIRST = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "choices": [{"index": 0, "delta": {"content": "Hello"}, "finish_reason": None}],
}


async def _huge_sse_line(request: web.Request) -> web.StreamResponse:
    # One good chunk, then a line that never ends: 4 MB and counting.
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b"data: " + json.dumps(_FIRST).encode() + b"\n\n")
    try:
        await response.write(b'data: {"content": "')
        for _ in range(4 * LIMIT // 65536):
            await response.write(b"x" * 65536)
    except (ConnectionError, RuntimeError):
        pass
    return response


ROUTES = {
    "/sse/chat/completions": _huge_sse_line,
    "/declared/chat/completions": _declared_too_large,
    "/chunked/chat/completions": _chunked_too_large,
    "/gzip/chat/completions": _gzip_bomb,
    "/error/chat/completions": _error_too_large,
    "/trickle/chat/completions": _trickled_json,
}


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    with raw_server(ROUTES) as url:
        yield url


@pytest.fixture(scope="module")
def emulator_server() -> Iterator[Any]:
    with serve(Emulator()) as server:
        yield server


MODES = ["sync", "async", "async-httpx"]


async def _client_call(
    mode: str, base_url: str, call: str, messages: Any = USER, **options: Any
) -> Any:
    """``create`` (or a whole trickled ``stream``) on a client of ``mode``; closes the client."""
    options.setdefault("max_retries", 0)
    params = {"model": "qwen-plus", "messages": messages}
    if call == "stream":
        params["extra_headers"] = {"X-Emulator-Fault": "trickle", "X-Emulator-Delay": "0.05"}
    if mode == "sync":
        with ChatClient(KEY, base_url=base_url, **options) as client:
            if call == "create":
                return client.create(**params)
            with client.stream(**params) as stream:
                return stream.collect()
    http_client = httpx.AsyncClient() if mode == "async-httpx" else None
    async with AsyncChatClient(KEY, base_url=base_url, http_client=http_client, **options) as c:
        try:
            if call == "create":
                return await c.create(**params)
            async with c.stream(**params) as stream:
                return await stream.collect()
        finally:
            if http_client is not None:
                await http_client.aclose()


#: 40 words: a stream of 45 frames, trickled 50 ms apart (over 2 s in all).
LONG = [{"role": "user", "content": " ".join(["word"] * 40)}]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", ["declared", "chunked", "gzip", "error"])
async def test_a_body_over_max_response_bytes_is_refused(origin: str, mode: str, path: str) -> None:
    start = time.monotonic()
    with pytest.raises(ResponseTooLargeError) as info:
        await _client_call(mode, f"{origin}/{path}", "create", max_response_bytes=LIMIT)
    assert info.value.limit == LIMIT and info.value.setting == "max_response_bytes"
    assert "max_response_bytes=1000000" in str(info.value)
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("mode", MODES)
async def test_a_trickled_body_is_cut_off_at_the_timeout(origin: str, mode: str) -> None:
    # Each byte comes well within the read timeout; only a limit on the whole ends it.
    start = time.monotonic()
    with pytest.raises(APITimeoutError, match=r"timeout=0\.5s"):
        await _client_call(mode, f"{origin}/trickle", "create", timeout=0.5)
    assert time.monotonic() - start < 3


@pytest.mark.parametrize("mode", MODES)
async def test_a_trickled_stream_is_cut_off_at_the_stream_timeout(
    emulator_server: Any, mode: str
) -> None:
    start = time.monotonic()
    with pytest.raises(StreamError) as info:
        await _client_call(
            mode, emulator_server.compatible_base_url, "stream", LONG, stream_timeout=0.5
        )
    assert time.monotonic() - start < 3
    assert isinstance(info.value.cause, APITimeoutError)
    assert "stream_timeout=0.5s" in str(info.value)
    assert info.value.partial["choices"][0]["message"]["content"]  # what came is kept


@pytest.mark.parametrize("mode", MODES)
async def test_a_trickled_stream_without_stream_timeout_runs_to_its_end(
    emulator_server: Any, mode: str
) -> None:
    completion = await _client_call(mode, emulator_server.compatible_base_url, "stream")
    assert completion["choices"][0]["message"]["content"] == "You said: hi"


def test_limits_are_checked_when_the_client_is_made() -> None:
    from opensearch_llm import RequestValidationError

    for options in (
        {"max_response_bytes": 0},
        {"max_event_bytes": -1},
        {"max_connections": 0},
        {"stream_timeout": 0},
        {"max_response_bytes": 1.5},
    ):
        with pytest.raises(RequestValidationError, match=next(iter(options)).split("_", 1)[-1]):
            ChatClient(KEY, **options)


@pytest.mark.parametrize("mode", MODES)
async def test_a_stream_line_over_max_event_bytes_is_refused_keeping_what_came(
    origin: str, mode: str
) -> None:
    with pytest.raises(StreamError) as info:
        await _client_call(mode, f"{origin}/sse", "stream", max_event_bytes=LIMIT)
    cause = info.value.cause
    assert isinstance(cause, ResponseTooLargeError) and cause.setting == "max_event_bytes"
    assert info.value.partial["choices"][0]["message"]["content"] == "Hello"
