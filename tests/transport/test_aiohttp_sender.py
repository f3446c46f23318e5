"""The aiohttp sender, the async default: one session per event loop, released when dropped,
proxies and CA bundles from the environment, aiohttp's failures as our errors."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from opensearch_llm import APIConnectionError, AsyncChatClient, AsyncKnowledgeClient
from opensearch_llm import _transport_aiohttp as sender_module
from opensearch_llm.emulator import Emulator, EmulatorServer, serve
from tests.connections import busy_connections, pool_closed, uses_aiohttp

from .mock_service import KEY, USER


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with serve(Emulator()) as running:
        yield running


async def _ask(client: AsyncChatClient) -> str:
    answer = await client.create(model="qwen-plus", messages=USER)
    return str(answer["choices"][0]["message"]["content"])


def test_async_clients_send_with_aiohttp_unless_given_an_httpx_client() -> None:
    import httpx

    assert uses_aiohttp(AsyncChatClient(KEY))
    assert uses_aiohttp(AsyncKnowledgeClient(KEY, host="http://h", app="a"))
    assert not uses_aiohttp(AsyncChatClient(KEY, http_client=httpx.AsyncClient()))


def test_one_client_in_two_event_loops_gets_a_session_in_each(server: EmulatorServer) -> None:
    # asyncio.run twice (a script, then a notebook cell): the first loop's pool is dead.
    client = AsyncChatClient(KEY, base_url=server.compatible_base_url)
    sessions = []

    async def one_call() -> str:
        text = await _ask(client)
        sessions.append(client._transport.sender.session)
        return text

    assert asyncio.run(one_call()) == asyncio.run(one_call()) == "You said: hi"
    assert sessions[0] is not sessions[1] and sessions[0].closed
    asyncio.run(client.aclose())
    assert pool_closed(client)


async def test_a_client_dropped_without_aclose_releases_its_connections(
    server: EmulatorServer,
) -> None:
    reported: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    client = AsyncChatClient(KEY, base_url=server.compatible_base_url)
    await _ask(client)
    session = client._transport.sender.session
    assert session is not None and not session.closed
    gc.collect()  # what earlier tests left behind is not this test's to judge
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del client
        gc.collect()
    assert session.closed
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert reported == []
    loop.set_exception_handler(None)


async def test_the_pool_is_bounded_by_max_connections(server: EmulatorServer) -> None:
    async with AsyncChatClient(
        KEY, base_url=server.compatible_base_url, max_connections=3
    ) as client:
        answers = await asyncio.gather(*(_ask(client) for _ in range(20)))
        assert set(answers) == {"You said: hi"}
        connector = client._transport.sender.session.connector
        assert connector.limit == 3 and busy_connections(client) == []


async def test_a_refused_connection_is_a_retryable_connection_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with AsyncChatClient(
        KEY, base_url=f"http://127.0.0.1:{port}/v1", max_retries=0
    ) as client:
        with pytest.raises(APIConnectionError) as info:
            await _ask(client)
    assert f"127.0.0.1:{port}" in str(info.value) and KEY not in str(info.value)


def test_the_proxy_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert sender_module._env_proxy("https://dashscope.example/v1") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.local:3128")
    assert sender_module._env_proxy("https://dashscope.example/v1") == "http://proxy.local:3128"
    assert sender_module._env_proxy("http://plain.example/v1") is None
    monkeypatch.setenv("NO_PROXY", "dashscope.example")
    assert sender_module._env_proxy("https://dashscope.example/v1") is None


def test_tls_trusts_ssl_cert_file_when_it_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from pathlib import Path

    import certifi

    first = Path(certifi.where()).read_text(encoding="ascii").split("-----END")[0]
    bundle = tmp_path / "ca.pem"
    bundle.write_text(first + "-----END CERTIFICATE-----\n")
    sender_module._ssl_context.cache_clear()
    try:
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        default_count = len(sender_module._ssl_context().get_ca_certs())
        sender_module._ssl_context.cache_clear()
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
        assert len(sender_module._ssl_context().get_ca_certs()) == 1 < default_count
    finally:
        sender_module._ssl_context.cache_clear()


async def test_a_redirect_is_not_followed_and_names_the_location() -> None:
    from aiohttp import web

    from opensearch_llm import APIStatusError
    from tests.transport.raw_server import raw_server

    async def moved(request: web.Request) -> web.StreamResponse:
        return web.Response(status=307, headers={"Location": "https://elsewhere.example/v1"})

    with raw_server({"/compatible-mode/v1/chat/completions": moved}) as origin:
        async with AsyncChatClient(KEY, base_url=f"{origin}/compatible-mode/v1") as client:
            for call in (_ask, _streamed):
                with pytest.raises(APIStatusError, match=r"elsewhere\.example") as info:
                    await call(client)
                assert info.value.status == 307


async def _streamed(client: AsyncChatClient) -> list[Any]:
    async with client.stream(model="qwen-plus", messages=USER) as stream:
        return [chunk async for chunk in stream]
