"""The sans-IO core, the request log, the text rules and the shells' plumbing."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
from emu_support import COMPATIBLE, KEY, Caller, ask
from hypothesis import given
from hypothesis import strategies as st

from opensearch_llm.emulator import Emulator, serve
from opensearch_llm.emulator._response import RESET, Delay
from opensearch_llm.emulator._text import count_tokens, cut_at_stop, split_pieces, truncate
from opensearch_llm.emulator._transport import _Pacer

HEADERS = [(b"authorization", b"Bearer k"), (b"content-type", b"application/json")]


def test_handle_is_a_pure_request_to_response_mapping() -> None:
    emu = Emulator()
    response = emu.handle(
        "POST",
        COMPATIBLE,
        HEADERS,
        b'{"model":"qwen-plus","messages":[{"role":"user","content":"x"}]}',
    )
    assert response.status == 200 and not response.streamed and response.is_plain
    assert (b"x-request-id", b"e0000000-0000-4000-8000-000000000001") in response.headers
    assert b'"content":"You said: x"' in response.body[0]  # type: ignore[operator]


def test_handle_describes_markers_instead_of_acting() -> None:
    emu = Emulator()
    body = b'{"model":"qwen-plus","stream":true,"messages":[{"role":"user","content":"a b c"}]}'
    stall = [*HEADERS, (b"x-emulator-fault", b"stall"), (b"x-emulator-delay", b"9")]
    response = emu.handle("POST", COMPATIBLE, stall, body)
    assert response.streamed and response.body[-2:] == [Delay(9.0), RESET]
    assert emu.handle(
        "POST", COMPATIBLE, [*HEADERS, (b"x-emulator-fault", b"reset")], body
    ).prelude == [RESET]


async def test_request_log(call: Caller) -> None:
    await call(ask("logged"), headers={"X-Trace": "t1"})
    (recorded,) = call.emulator.requests
    assert recorded.method == "POST" and recorded.path == COMPATIBLE
    assert recorded.json == ask("logged")
    assert recorded.headers["authorization"] == "<redacted>"
    assert recorded.headers["x-trace"] == "t1"
    assert KEY not in repr(recorded)
    assert call.emulator.request_count == 1


async def test_failed_requests_are_logged_too(in_process: Caller) -> None:
    await in_process(ask(), headers={"X-Emulator-Fault": "reset"})
    await in_process(ask(), key=None)
    assert in_process.emulator.request_count == 2
    assert "authorization" not in in_process.emulator.requests[1].headers


def test_log_keeps_the_last_max_recorded() -> None:
    emu = Emulator(max_recorded=2)
    for text in ("a", "b", "c"):
        emu.handle(
            "POST",
            COMPATIBLE,
            HEADERS,
            f'{{"model":"qwen-plus","messages":[{{"role":"user","content":"{text}"}}]}}'.encode(),
        )
    assert [r.json["messages"][0]["content"] for r in emu.requests] == ["b", "c"]
    assert emu.request_count == 3
    emu.reset()
    assert emu.requests == [] and emu.request_count == 0


def test_an_emulator_bug_is_a_500_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("opensearch_llm.emulator._exchange.make_plan", broken)
    response = Emulator().handle(
        "POST",
        COMPATIBLE,
        HEADERS,
        b'{"model":"qwen-plus","messages":[{"role":"user","content":"x"}]}',
    )
    assert response.status == 500 and b"boom" in response.body[0]  # type: ignore[operator]


def test_in_process_read_timeout_counts_time_without_bytes() -> None:
    request = httpx.Request("POST", "http://e", extensions={"timeout": {"read": 0.25}})
    pacer = _Pacer(request)
    assert pacer.wait(Delay(0.15)) == (0.15, None)
    seconds, error = pacer.wait(Delay(0.15))
    assert seconds == pytest.approx(0.1) and isinstance(error, httpx.ReadTimeout)
    pacer.idle = 0.0  # bytes arrived
    assert pacer.wait(Delay(0.2)) == (0.2, None)
    assert isinstance(pacer.wait(RESET)[1], httpx.ReadError)


async def test_asgi_app_speaks_lifespan() -> None:
    sent: list[MutableMapping[str, Any]] = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await Emulator().app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_asgi_reset_without_a_transport_raises() -> None:
    body = b'{"model":"qwen-plus","messages":[{"role":"user","content":"x"}]}'

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        raise AssertionError("nothing may be sent before a reset")

    scope = {
        "type": "http",
        "method": "POST",
        "path": COMPATIBLE,
        "headers": [*HEADERS, (b"x-emulator-fault", b"reset")],
    }
    with pytest.raises(ConnectionAbortedError):
        await Emulator().app(scope, receive, send)


async def test_asgi_app_reads_a_body_in_parts() -> None:
    parts = iter([b'{"model":"qwen-plus",', b'"messages":[{"role":"user","content":"split"}]}'])
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        part = next(parts)
        return {"type": "http.request", "body": part, "more_body": part.startswith(b'{"model')}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await Emulator().app(
        {"type": "http", "method": "POST", "path": COMPATIBLE, "headers": HEADERS}, receive, send
    )
    assert sent[0]["status"] == 200 and b"You said: split" in sent[1]["body"]


def test_serve_starts_on_a_free_port_and_stops(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), serve() as server:
        assert server.host == "127.0.0.1" and server.port > 0
        assert server.compatible_base_url == f"http://127.0.0.1:{server.port}/compatible-mode/v1"
        assert server.gateway_base_url == f"http://127.0.0.1:{server.port}/api/v1"
        assert server.knowledge_url("app").endswith("/v3/openapi/apps/app/actions/knowledge-llm")
        with httpx.Client() as client:
            headers = {"Authorization": "Bearer k"}
            reply = client.post(
                server.compatible_base_url + "/chat/completions", json=ask(), headers=headers
            )
            assert reply.status_code == 200
            with pytest.raises(httpx.ReadError):
                client.post(
                    server.compatible_base_url + "/chat/completions",
                    json=ask(),
                    headers={**headers, "X-Emulator-Fault": "reset"},
                )
        port = server.port
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_client_leaving_during_a_stall_frees_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = ask("a b c", stream=True)
    headers = {"Authorization": "Bearer k", "X-Emulator-Fault": "stall", "X-Emulator-Delay": "30"}
    with caplog.at_level(logging.WARNING), serve() as server:
        async with (
            httpx.AsyncClient(base_url=server.origin) as client,
            client.stream("POST", COMPATIBLE, json=body, headers=headers) as response,
        ):
            async for _ in response.aiter_raw():
                break
        await asyncio.sleep(0.1)
        leaving = time.perf_counter()
    assert time.perf_counter() - leaving < 0.9  # no wait for a stalled task at shutdown
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@given(st.text())
def test_pieces_join_back_and_count_tokens(text: str) -> None:
    pieces = split_pieces(text)
    assert "".join(pieces) == text
    assert len([p for p in pieces if p.strip()]) == count_tokens(text)


@given(st.text(), st.integers(min_value=1, max_value=20))
def test_truncate_keeps_at_most_n_tokens(text: str, limit: int) -> None:
    cut, was_cut = truncate(text, limit)
    assert text.startswith(cut)
    assert count_tokens(cut) == min(limit, count_tokens(text))
    assert was_cut == (count_tokens(text) > limit)


@given(st.text(), st.lists(st.text(min_size=1), max_size=3))
def test_cut_at_stop_removes_every_stop_string(text: str, stops: list[str]) -> None:
    cut, found = cut_at_stop(text, stops)
    assert text.startswith(cut)
    assert found == any(stop in text for stop in stops)
    assert not any(stop in cut for stop in stops)


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_resets_with_either_uvicorn_protocol(http: str) -> None:
    if http == "httptools":
        pytest.importorskip("httptools")
    body = ask("a b c d", stream=True)
    headers = {"Authorization": "Bearer k", "X-Emulator-Fault": "reset-mid-stream"}
    with serve(http=http) as server, httpx.Client(base_url=server.origin) as client:
        received = b""
        with (
            pytest.raises(httpx.ReadError),
            client.stream("POST", COMPATIBLE, json=body, headers=headers) as response,
        ):
            for piece in response.iter_raw():
                received += piece
        assert received.count(b"data: ") == 2
        assert (
            client.post(COMPATIBLE, json=ask(), headers={"Authorization": "Bearer k"}).status_code
            == 200
        )
