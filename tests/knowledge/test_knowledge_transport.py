"""``KnowledgeClient`` / ``AsyncKnowledgeClient`` over ``httpx.MockTransport`` (no sockets)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from opensearch_llm import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    ContentFilterError,
    InternalServerError,
    MissingAPIKeyError,
    NotFoundError,
    RequestValidationError,
    ResponseDecodeError,
    StreamError,
)
from opensearch_llm.emulator import Emulator, serve
from opensearch_llm.knowledge import AccessKeyCredentials, AsyncKnowledgeClient, KnowledgeClient
from tests.connections import pool_closed, uses_aiohttp

from .support import (
    APP,
    CLIENTS,
    HOST,
    KEY,
    URL,
    Caller,
    body,
    call_answer,
    entered,
    failure,
    sse,
    stream_response,
)


async def test_answer_posts_the_documented_body_with_bearer_key(caller: Caller) -> None:
    result = await caller.answer(
        httpx.Response(200, json=body("answer text")),
        content=["OpenSearch", "Havenask"],
        model="qwen-turbo",
        csi_level="none",
    )
    assert result.answer == "answer text" and result.request_id == "abc123-ABC"
    assert result.latency == 10.0 and result.model == "qwen-turbo"
    assert result.data == [{"answer": "answer text", "type": "text"}]
    sent = caller.script.requests[0]
    assert sent.method == "POST" and str(sent.url) == URL
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert caller.script.payloads == [
        {
            "question": "what is OpenSearch",
            "type": "text",
            "content": ["OpenSearch", "Havenask"],
            "model": "qwen-turbo",
            "csi_level": "none",
        }
    ]


async def test_prompt_call_sends_only_the_prompt(caller: Caller) -> None:
    await caller.answer(httpx.Response(200, json=body()), question=None, prompt="Say hi")
    assert caller.script.payloads == [{"prompt": "Say hi"}]


async def test_extra_body_and_headers(caller: Caller) -> None:
    await caller.answer(
        httpx.Response(200, json=body()),
        client_options={"default_headers": {"X-Team": "kb"}},
        extra_body={"session": "s"},
        extra_headers={"X-Trace": "t1"},
    )
    sent = caller.script.requests[0]
    assert sent.headers["x-team"] == "kb" and sent.headers["x-trace"] == "t1"
    assert caller.script.payloads[0]["session"] == "s"


@pytest.mark.parametrize(
    ("status", "answer", "error", "code"),
    [
        (200, failure("InvalidParameter", "bad"), APIStatusError, "InvalidParameter"),
        (200, {**failure(), "errors": []}, APIStatusError, None),
        (
            200,
            failure("data_inspection_failed", "blocked"),
            ContentFilterError,
            "data_inspection_failed",
        ),
        (404, failure(), NotFoundError, "1001"),
        (401, failure("InvalidApiKey", "bad key"), AuthenticationError, "InvalidApiKey"),
    ],
)
async def test_service_errors_are_typed_with_code_and_message(
    caller: Caller,
    status: int,
    answer: dict[str, Any],
    error: type[APIStatusError],
    code: str | None,
) -> None:
    with pytest.raises(error) as caught:
        await caller.answer(httpx.Response(status, json=answer))
    assert caught.value.code == code
    assert caught.value.request_id == "rid-err"
    assert len(caller.script.requests) == 1  # never retried
    assert KEY not in str(caught.value)


async def test_documented_numeric_code_under_200_is_not_a_server_error(caller: Caller) -> None:
    with pytest.raises(APIStatusError) as caught:
        await caller.answer(httpx.Response(200, json=failure("1001", "APP is not found")))
    assert caught.value.code == "1001" and caught.value.message == "APP is not found"
    assert not isinstance(caught.value, InternalServerError)
    assert len(caller.script.requests) == 1


async def test_5xx_is_retried_then_succeeds(caller: Caller) -> None:
    result = await caller.answer(
        httpx.Response(503, json=failure("ServiceUnavailable", "busy")),
        httpx.Response(200, json=body("ok")),
        client_options={"max_retries": 2},
    )
    assert result.answer == "ok" and len(caller.script.requests) == 2


async def test_retries_give_up_with_the_last_error(caller: Caller) -> None:
    with pytest.raises(InternalServerError):
        await caller.answer(
            httpx.Response(500, json=failure("InternalError", "x")),
            client_options={"max_retries": 1},
        )
    assert len(caller.script.requests) == 2


async def test_connection_errors_are_mapped(caller: Caller) -> None:
    with pytest.raises(APIConnectionError):
        await caller.answer(httpx.ConnectError("refused"), client_options={"max_retries": 0})


async def test_non_json_answer_is_a_decode_error(caller: Caller) -> None:
    with pytest.raises(ResponseDecodeError):
        await caller.answer(httpx.Response(200, text="<html>hi</html>"))
    with pytest.raises(ResponseDecodeError):
        await caller.answer(httpx.Response(200, json={"request_id": "r"}))


# --------------------------------------------------------------------------- streams


async def test_stream_yields_pieces_and_keeps_the_result(caller: Caller) -> None:
    received: list[str] = []
    stream = await caller.stream(
        stream_response([sse("Open", "Search", " rocks", done="[DONE]")]),
        received=received,
        model="qwen-plus",
    )
    assert received == ["Open", "Search", " rocks"]
    result = stream.result()
    assert result.answer == "OpenSearch rocks" and result.request_id == "abc123-ABC"
    assert result.model == "qwen-plus" and stream.text == "OpenSearch rocks"
    assert caller.script.payloads[0]["options"] == {"stream": True}
    assert caller.script.all_closed()


async def test_stream_split_anywhere_and_cumulative(caller: Caller) -> None:
    data = sse("Open", "OpenSearch", "OpenSearch rocks", space=False, done="[done]")
    parts: list[bytes | BaseException] = [data[i : i + 7] for i in range(0, len(data), 7)]
    received: list[str] = []
    await caller.stream(stream_response(parts), received=received)
    assert received == ["Open", "Search", " rocks"]


async def test_stream_of_back_to_back_json_without_sse(caller: Caller) -> None:
    data = b"".join(json.dumps(body(a)).encode() for a in ["a", "b", "c"])
    received: list[str] = []
    await caller.stream(
        stream_response([data[:10], data[10:]], content_type="text/plain"), received=received
    )
    assert received == ["a", "b", "c"]


async def test_concatenated_json_stream_sent_as_application_json(caller: Caller) -> None:
    data = b"\n".join(json.dumps(body(a)).encode() for a in ["a", "b"])
    received: list[str] = []
    await caller.stream(stream_response([data], content_type="application/json"), received=received)
    assert received == ["a", "b"]


async def test_stream_answered_with_one_json_body(caller: Caller) -> None:
    received: list[str] = []
    stream = await caller.stream(httpx.Response(200, json=body("whole answer")), received=received)
    assert received == ["whole answer"] and stream.result().request_id == "abc123-ABC"


async def test_stream_request_refused_before_any_byte(caller: Caller) -> None:
    with pytest.raises(ContentFilterError):
        await caller.stream(httpx.Response(200, json=failure("data_inspection_failed", "blocked")))
    with pytest.raises(NotFoundError):
        await caller.stream(httpx.Response(404, json=failure()))


async def test_stream_opening_is_retried(caller: Caller) -> None:
    received: list[str] = []
    await caller.stream(
        httpx.Response(503, json=failure("ServiceUnavailable", "busy")),
        stream_response([sse("ok")]),
        received=received,
    )
    assert received == ["ok"] and len(caller.script.requests) == 2


async def test_error_frame_mid_stream_keeps_the_partial_answer(caller: Caller) -> None:
    error_frame = f"data: {json.dumps(failure('InternalError', 'model failed'))}\n\n".encode()
    received: list[str] = []
    with pytest.raises(StreamError) as caught:
        await caller.stream(
            stream_response([sse("Open", "Search"), error_frame, sse("never")]), received=received
        )
    assert received == ["Open", "Search"]
    assert caught.value.partial.answer == "OpenSearch" and caught.value.code == "InternalError"
    assert isinstance(caught.value.cause, APIStatusError)
    assert len(caller.script.requests) == 1 and caller.script.all_closed()


async def test_error_frame_first_raises_the_service_error(caller: Caller) -> None:
    error_frame = f"data: {json.dumps(failure('data_inspection_failed', 'blocked'))}\n\n".encode()
    with pytest.raises(ContentFilterError):
        await caller.stream(stream_response([error_frame]))


async def test_connection_lost_mid_stream(caller: Caller) -> None:
    received: list[str] = []
    with pytest.raises(StreamError) as caught:
        await caller.stream(
            stream_response([sse("Open"), httpx.ReadError("reset by peer")]), received=received
        )
    assert received == ["Open"] and caught.value.partial.answer == "Open"
    assert isinstance(caught.value.cause, APIConnectionError)
    assert len(caller.script.requests) == 1 and caller.script.all_closed()


async def test_stream_cut_inside_a_frame(caller: Caller) -> None:
    data = sse("Open", "Search")
    with pytest.raises(StreamError) as caught:
        await caller.stream(stream_response([data[:-10]]))
    assert caught.value.partial.answer == "Open"


async def test_early_break_and_exit_close_the_response(caller: Caller) -> None:
    client = caller.client(stream_response([sse("a"), sse("b"), sse("c")]))
    if caller.mode == "sync":
        with client.stream("q") as stream:
            for _ in stream:
                break
    else:
        async with client.stream("q") as stream:
            async for _ in stream:
                break
    assert caller.script.all_closed()
    assert stream.result().answer == "a"


async def test_a_stream_is_iterated_once(caller: Caller) -> None:
    stream = await caller.stream(stream_response([sse("a")]))
    with pytest.raises(StreamError):
        if caller.mode == "sync":
            iter(stream)
        else:
            stream.__aiter__()


async def test_collect(caller: Caller) -> None:
    client = caller.client(stream_response([sse("a", "b")]))
    if caller.mode == "sync":
        result = client.stream("q").collect()
    else:
        result = await client.stream("q").collect()
    assert result.answer == "ab" and caller.script.all_closed()


async def test_validation_happens_before_sending(caller: Caller) -> None:
    client = caller.client(httpx.Response(200, json=body()))
    for call, field in [
        ({}, "question"),
        ({"question": "q", "content": []}, "content"),
        ({"question": "q", "csi_level": "x"}, "csi_level"),
    ]:
        with pytest.raises(RequestValidationError) as caught:
            client.stream(**call)
        assert caught.value.field == field
        with pytest.raises(RequestValidationError):
            if caller.mode == "sync":
                client.answer(**call)
            else:
                await client.answer(**call)
    assert caller.script.requests == []


# --------------------------------------------------------------------------- AccessKey signature

ACCESS_ID = "LTAI-example-id"
ACCESS_SECRET = "access-SECRET-must-not-leak-42"


def _verify_signature(request: httpx.Request) -> None:
    """Check the request's signature as the service would, from what went on the wire."""
    md5 = hashlib.md5(request.content).hexdigest()
    assert request.headers["content-md5"] == md5
    nonce = request.headers["x-opensearch-nonce"]
    assert nonce.isdigit() and len(nonce) == 16
    to_sign = "\n".join(
        [
            "POST",
            md5,
            request.headers["content-type"],
            request.headers["date"],
            f"x-opensearch-nonce:{nonce}",
            request.url.raw_path.decode(),
        ]
    )
    digest = hmac.new(ACCESS_SECRET.encode(), to_sign.encode(), hashlib.sha1).digest()
    assert (
        request.headers["authorization"]
        == f"OPENSEARCH {ACCESS_ID}:{base64.b64encode(digest).decode()}"
    )


async def test_access_key_signature_on_answers_and_streams(caller: Caller) -> None:
    options = {"auth": AccessKeyCredentials(ACCESS_ID, ACCESS_SECRET)}
    await caller.answer(httpx.Response(200, json=body()), client_options=options, content=["你好"])
    await caller.stream(stream_response([sse("a")]), client_options=options)
    for request in caller.script.requests:
        _verify_signature(request)
        assert request.headers.get_list("authorization")[0].startswith("OPENSEARCH ")
        assert len(request.headers.get_list("authorization")) == 1
        assert "Bearer" not in request.headers["authorization"]


async def test_access_key_auth_needs_no_api_key_and_leaks_no_secret(
    caller: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    options = {"auth": AccessKeyCredentials(ACCESS_ID, ACCESS_SECRET), "max_retries": 1}
    client = caller.client(
        httpx.Response(503, json=failure("ServiceUnavailable", "busy")), **options
    )
    with pytest.raises(InternalServerError) as caught:
        if caller.mode == "sync":
            client.answer("q")
        else:
            await client.answer("q")
    assert len(caller.script.requests) == 2
    texts = [str(caught.value), repr(caught.value), caplog.text, repr(client), str(vars(client))]
    assert not [t for t in texts if ACCESS_SECRET in t]


async def test_every_retry_is_signed_anew(caller: Caller) -> None:
    options = {"auth": AccessKeyCredentials(ACCESS_ID, ACCESS_SECRET), "max_retries": 2}
    await caller.answer(
        httpx.Response(
            503, json=failure("ServiceUnavailable", "busy"), headers={"retry-after": "0"}
        ),
        httpx.Response(200, json=body()),
        client_options=options,
    )
    first, second = caller.script.requests
    for request in (first, second):
        _verify_signature(request)
    assert first.headers["x-opensearch-nonce"] != second.headers["x-opensearch-nonce"]


def test_bad_auth_value_is_not_echoed() -> None:
    with pytest.raises(RequestValidationError) as caught:
        KnowledgeClient(KEY, host=HOST, app=APP, auth=("id", ACCESS_SECRET))  # type: ignore[arg-type]
    assert caught.value.field == "auth" and ACCESS_SECRET not in str(caught.value)


@pytest.mark.parametrize("cls", [KnowledgeClient, AsyncKnowledgeClient])
def test_client_construction_checks(cls: Any) -> None:
    with pytest.raises(RequestValidationError) as caught:
        cls(KEY, host=HOST)
    assert caught.value.field == "app"
    with pytest.raises(RequestValidationError) as caught:
        cls(KEY, app=APP)
    assert caught.value.field == "host"
    with pytest.raises(RequestValidationError) as caught:
        cls(KEY, app=APP, host="kb.example.com")
    assert caught.value.field == "host"
    with pytest.raises(MissingAPIKeyError):
        cls(host=HOST, app=APP)
    with pytest.raises(RequestValidationError):
        cls(KEY, host=HOST, app=APP, max_retries=-1)


@pytest.mark.parametrize("cls", [KnowledgeClient, AsyncKnowledgeClient])
def test_key_and_host_from_environment(cls: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", KEY)
    monkeypatch.setenv("OPENSEARCH_LLM_KNOWLEDGE_HOST", "https://env.example/")
    client = cls(app=APP)
    assert client.url == "https://env.example/v3/openapi/apps/my_app/actions/knowledge-llm"
    assert client.host == "https://env.example" and client.app == APP
    assert KEY not in repr(client) and KEY not in str(vars(client))
    assert (
        repr(client) == f"{cls.__name__}(host='https://env.example', app='my_app', auth='bearer')"
    )


@pytest.mark.usefixtures("local_sockets")
async def test_client_context_manager_closes_its_pool(mode: str) -> None:
    """The default pool of each mode: httpx when sync, aiohttp when async."""
    with serve(Emulator()) as server:
        async with entered(CLIENTS[mode](KEY, host=server.origin, app=APP), mode) as client:
            await call_answer(client, mode, question="q", content=["passage"])
            assert uses_aiohttp(client) == (mode == "async") and not pool_closed(client)
        assert pool_closed(client)


class _HangingBody(httpx.AsyncByteStream):
    """Sends one frame, then waits forever (until cancelled)."""

    def __init__(self, first: bytes) -> None:
        self.first = first
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.first
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closed = True


async def test_cancelled_async_stream_releases_the_response() -> None:
    hanging = _HangingBody(sse("first"))
    transport = httpx.MockTransport(
        lambda request: httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=hanging
        )
    )
    client = AsyncKnowledgeClient(
        KEY, host=HOST, app=APP, http_client=httpx.AsyncClient(transport=transport)
    )
    received: list[str] = []

    async def consume() -> None:
        async with client.stream("q") as stream:
            async for piece in stream:
                received.append(piece)

    task = asyncio.create_task(consume())
    while not received:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert received == ["first"] and hanging.closed


async def test_entered_but_unread_stream_is_closed_on_exit(caller: Caller) -> None:
    client = caller.client(stream_response([sse("a")]))
    if caller.mode == "sync":
        with client.stream("q"):
            pass
    else:
        async with client.stream("q"):
            pass
    assert len(caller.script.requests) == 1 and caller.script.all_closed()
