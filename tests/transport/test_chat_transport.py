import json
import logging
import time
from types import SimpleNamespace

import httpx
import pytest
import tenacity

from opensearch_llm import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    InternalServerError,
    RateLimitError,
    RequestValidationError,
    StreamError,
    _transport,
)
from opensearch_llm._config import DEFAULT_BACKOFF_INITIAL

from .mock_service import KEY, Body, Caller, chunk, completion, sse, stream_response

pytestmark = pytest.mark.asyncio

USAGE = {
    "id": "chatcmpl-req42",
    "choices": [],
    "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5},
}


def error(status: int, code: str = "x", **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "error": {"message": f"failed {status}", "code": code},
            "request_id": f"rid-{status}",
        },
        headers=headers,
    )


async def test_create_returns_the_completion_with_request_id(caller: Caller) -> None:
    result = await caller.create(httpx.Response(200, json=completion("Hi there")))
    assert result["choices"][0]["message"]["content"] == "Hi there"
    assert result["request_id"] == "req7"
    sent = caller.script.requests[0]
    assert sent.url == "http://service.test/compatible-mode/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert caller.script.payloads == [
        {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]}
    ]


async def test_gateway_envelope_non_streamed_and_streamed(caller: Caller) -> None:
    envelope = {"success": True, "code": "200", "message": "successful", "data": completion("gw")}
    result = await caller.create(httpx.Response(200, json=envelope))
    assert result["choices"][0]["message"]["content"] == "gw"
    frames = [
        {"success": True, "code": "200", "message": "ok", "data": c}
        for c in (chunk("a"), chunk("b", finish="stop"), USAGE)
    ]
    stream = await caller.stream(stream_response(sse(*frames)))
    assert stream.completion()["choices"][0]["message"]["content"] == "ab"
    assert stream.completion()["usage"]["total_tokens"] == 5


async def test_stream_chunks_usage_and_aggregate_equal_create_shape(caller: Caller) -> None:
    received: list[dict] = []
    stream = await caller.stream(
        stream_response(
            sse(chunk("Hel", role="assistant"), chunk("lo", finish="stop"), USAGE),
            **{"x-request-id": "hdr-1"},
        ),
        received=received,
    )
    assert [c["choices"][0]["delta"].get("content") for c in received[:2]] == ["Hel", "lo"]
    assert received[-1]["choices"] == [] and received[-1]["usage"]["total_tokens"] == 5
    assert caller.script.payloads[0]["stream"] is True
    assert caller.script.payloads[0]["stream_options"] == {"include_usage": True}
    final = stream.completion()
    # The body's id (the chunks' chatcmpl- id) wins over the header's, as for create().
    assert stream.request_id == "req42" and final["request_id"] == "req42"
    created = await caller.create(httpx.Response(200, json=completion("Hello")))
    assert set(final) == set(created)
    assert final["choices"][0].keys() == created["choices"][0].keys()
    assert final["choices"][0]["message"] == created["choices"][0]["message"]


async def test_a_stream_takes_its_request_id_from_the_body_first_then_the_header(
    caller: Caller,
) -> None:
    anonymous = {k: v for k, v in chunk("a", finish="stop").items() if k != "id"}
    stream = await caller.stream(stream_response(sse(anonymous), **{"x-request-id": "hdr-2"}))
    assert stream.request_id == "hdr-2" and stream.completion()["request_id"] == "hdr-2"
    named = {**anonymous, "request_id": "body-3"}
    stream = await caller.stream(stream_response(sse(named), **{"x-request-id": "hdr-2"}))
    assert stream.request_id == "body-3" and stream.completion()["request_id"] == "body-3"


async def test_a_stream_answered_with_one_completion_takes_its_id_from_the_body(
    caller: Caller,
) -> None:
    answered = httpx.Response(200, json=completion("Hi"), headers={"x-request-id": "hdr-4"})
    stream = await caller.stream(answered)
    assert stream.request_id == "req7" and stream.completion()["request_id"] == "req7"


async def test_a_frame_without_choices_is_yielded_with_an_empty_list(caller: Caller) -> None:
    received: list[dict] = []
    await caller.stream(
        stream_response(sse({}, chunk("Hi", finish="stop"), {"choices": None})), received=received
    )
    assert received[0]["choices"] == [] and received[-1]["choices"] == []
    # The README's loop reads every chunk's choices.
    assert "".join(ch["delta"].get("content") or "" for c in received for ch in c["choices"]) == (
        "Hi"
    )


@pytest.mark.parametrize("status", [301, 302, 307])
async def test_a_redirected_stream_says_where_it_was_sent(caller: Caller, status: int) -> None:
    moved = httpx.Response(
        status,
        headers={"location": "https://elsewhere.example/v1", "content-type": "text/html"},
        content=b"<html>Moved</html>",
    )
    with pytest.raises(APIStatusError) as info:
        await caller.stream(moved)
    assert info.value.status == status
    assert "redirected the request to https://elsewhere.example/v1" in str(info.value)
    assert not isinstance(info.value, StreamError) and caller.script.all_closed()


async def test_stream_only_model_is_aggregated_for_create(caller: Caller) -> None:
    result = await caller.create(
        stream_response(sse(chunk(reasoning_content="hmm"), chunk("42", finish="stop"), USAGE)),
        model="qwq-plus",
    )
    message = result["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "42", "reasoning_content": "hmm"}
    assert caller.script.payloads[0]["stream"] is True
    assert caller.script.all_closed()


async def test_json_answer_to_a_stream_request_is_one_chunk(caller: Caller) -> None:
    received: list[dict] = []
    stream = await caller.stream(httpx.Response(200, json=completion("whole")), received=received)
    assert len(received) == 1 and stream.completion()["choices"][0]["message"]["content"] == "whole"


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_retryable_statuses_are_retried_then_succeed(caller: Caller, status: int) -> None:
    result = await caller.create(
        error(status, **{"retry-after": "0"}), httpx.Response(200, json=completion())
    )
    assert result["choices"][0]["message"]["content"] == "Hello"
    assert len(caller.script.requests) == 2


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, BadRequestError), (401, AuthenticationError), (403, Exception), (404, Exception)],
)
async def test_client_errors_are_never_retried(
    caller: Caller, status: int, cls: type[Exception]
) -> None:
    with pytest.raises(cls) as info:
        await caller.create(error(status), httpx.Response(200, json=completion()))
    assert len(caller.script.requests) == 1
    assert info.value.status == status and info.value.request_id == f"rid-{status}"


async def test_retries_stop_after_max_retries(caller: Caller) -> None:
    with pytest.raises(InternalServerError):
        await caller.create(error(503, **{"retry-after": "0"}), client_options={"max_retries": 3})
    assert len(caller.script.requests) == 4


async def test_retry_after_is_honoured(caller: Caller) -> None:
    start = time.monotonic()
    await caller.create(
        error(429, **{"retry-after": "0.3"}), httpx.Response(200, json=completion())
    )
    assert time.monotonic() - start >= 0.3


async def test_retry_after_above_the_cap_raises_at_once(caller: Caller) -> None:
    start = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        await caller.create(
            error(429, **{"retry-after": "3600"}), httpx.Response(200, json=completion())
        )
    assert time.monotonic() - start < 1 and info.value.retry_after == 3600
    assert len(caller.script.requests) == 1


async def test_connection_errors_are_retried_and_mapped(caller: Caller) -> None:
    result = await caller.create(
        httpx.ConnectError("refused"),
        httpx.Response(200, json=completion()),
        client_options={"max_retries": 1},
    )
    assert result["choices"]
    with pytest.raises(APIConnectionError) as info:
        await caller.create(httpx.ConnectError("refused"), client_options={"max_retries": 0})
    assert "Connection failed" in str(info.value) and "refused" in str(info.value)
    with pytest.raises(APITimeoutError):
        await caller.create(httpx.ReadTimeout("slow"), client_options={"max_retries": 0})


async def test_error_under_http_200_is_raised_and_retried_by_code(caller: Caller) -> None:
    throttled = httpx.Response(
        200, json={"success": False, "code": "Throttling", "message": "slow down"}
    )
    result = await caller.create(throttled, httpx.Response(200, json=completion()))
    assert result["choices"] and len(caller.script.requests) == 2
    blocked = httpx.Response(
        200, json={"code": "DataInspectionFailed", "message": "blocked", "request_id": "m1"}
    )
    with pytest.raises(ContentFilterError) as info:
        await caller.create(blocked)
    assert info.value.request_id == "m1"


async def test_stream_is_retried_before_its_first_byte(caller: Caller) -> None:
    stream = await caller.stream(
        error(503, **{"retry-after": "0"}), stream_response(sse(chunk("ok", finish="stop")))
    )
    assert stream.completion()["choices"][0]["message"]["content"] == "ok"
    assert len(caller.script.requests) == 2


async def test_stream_is_never_retried_after_its_first_byte(caller: Caller) -> None:
    received: list[dict] = []
    parts = sse(chunk("partial "), chunk("answer"), httpx.ReadError("connection reset"), done=False)
    with pytest.raises(StreamError) as info:
        await caller.stream(
            stream_response(parts),
            stream_response(sse(chunk("x", finish="stop"))),
            received=received,
        )
    assert len(caller.script.requests) == 1
    assert len(received) == 2
    assert info.value.partial["choices"][0]["message"]["content"] == "partial answer"
    assert isinstance(info.value.cause, APIConnectionError)
    assert caller.script.all_closed()


async def test_error_frame_mid_stream_keeps_the_partial(caller: Caller) -> None:
    frames = sse(
        chunk("so far"), {"error": {"code": "InternalError", "message": "boom"}, "request_id": "e1"}
    )
    with pytest.raises(StreamError) as info:
        await caller.stream(stream_response(frames))
    assert info.value.partial["choices"][0]["message"]["content"] == "so far"
    assert info.value.code == "InternalError" and info.value.request_id == "e1"
    assert isinstance(info.value.cause, InternalServerError)
    assert caller.script.all_closed()


async def test_error_frame_before_any_chunk_raises_the_typed_error(caller: Caller) -> None:
    frames = sse({"error": {"code": "data_inspection_failed", "message": "blocked"}})
    with pytest.raises(ContentFilterError):
        await caller.stream(stream_response(frames))


async def test_stream_without_done_but_finished_is_fine(caller: Caller) -> None:
    stream = await caller.stream(stream_response(sse(chunk("a", finish="stop"), done=False)))
    assert stream.completion()["choices"][0]["finish_reason"] == "stop"


async def test_stream_cut_short_without_done_or_finish_is_an_error(caller: Caller) -> None:
    with pytest.raises(StreamError) as info:
        await caller.stream(stream_response(sse(chunk("half"), done=False)))
    assert info.value.partial["choices"][0]["message"]["content"] == "half"


async def test_idle_timeout_mid_stream_is_a_stream_error_with_timeout_cause(caller: Caller) -> None:
    with pytest.raises(StreamError) as info:
        await caller.stream(stream_response(sse(chunk("a"), httpx.ReadTimeout("idle"), done=False)))
    assert isinstance(info.value.cause, APITimeoutError)


async def test_malformed_frame_mid_stream_is_a_stream_error(caller: Caller) -> None:
    with pytest.raises(StreamError):
        await caller.stream(stream_response(sse(chunk("a"), b"data: {not json\n\n")))


async def test_bytes_split_anywhere_decode_the_same(caller: Caller) -> None:
    raw = b"".join(
        p
        for p in sse(chunk("\u4f60\u597d", role="assistant"), chunk("!", finish="stop"), USAGE)
        if isinstance(p, bytes)
    )
    pieces: list[bytes | BaseException] = [raw[i : i + 3] for i in range(0, len(raw), 3)]
    stream = await caller.stream(stream_response(pieces))
    assert stream.completion()["choices"][0]["message"]["content"] == "\u4f60\u597d!"


async def test_validation_happens_before_anything_is_sent(caller: Caller) -> None:
    with pytest.raises(RequestValidationError):
        await caller.create(httpx.Response(200, json=completion()), temperature=5)
    with pytest.raises(RequestValidationError):
        await caller.stream(
            stream_response(sse(chunk("x"))), messages=[{"role": "user", "content": ""}]
        )
    assert caller.script.requests == []


async def test_early_break_closes_the_response(caller: Caller) -> None:
    caller.script.steps = [stream_response(sse(chunk("a"), chunk("b"), chunk("c", finish="stop")))]
    client = caller.client()
    params = {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]}
    if caller.mode == "sync":
        with client.stream(**params) as stream:
            for _ in stream:
                break
    else:
        async with client.stream(**params) as stream:
            async for _ in stream:
                break
    assert caller.script.all_closed()
    assert stream.completion()["choices"][0]["message"]["content"] == "a"


async def test_every_error_path_closes_its_response(caller: Caller) -> None:
    for steps in (
        [stream_response(sse(chunk("a"), httpx.ReadError("reset"), done=False))],
        [stream_response(sse(chunk("a"), {"error": {"message": "x"}}))],
        [
            httpx.Response(
                503, headers={"retry-after": "0"}, stream=Body([b'{"error": {"message": "busy"}}'])
            )
            for _ in range(3)
        ],
    ):
        caller.script.bodies.clear()
        caller.script.requests.clear()  # each case's steps are answered from its first
        with pytest.raises((StreamError, InternalServerError)):
            await caller.stream(*steps)
        assert caller.script.bodies and caller.script.all_closed()


async def test_extra_headers_and_default_headers_are_sent(caller: Caller) -> None:
    await caller.create(
        httpx.Response(200, json=completion()),
        extra_headers={"X-Trace": "t1"},
        client_options={"default_headers": {"X-Team": "a"}},
    )
    headers = caller.script.requests[0].headers
    assert headers["x-trace"] == "t1" and headers["x-team"] == "a"
    assert headers["user-agent"].startswith("opensearch-llm-python/")


async def test_api_key_is_in_no_message_log_or_repr(
    caller: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    for step in (error(401), error(503, **{"retry-after": "0"}), httpx.ConnectError("refused")):
        with pytest.raises(Exception) as info:
            await caller.create(step, client_options={"max_retries": 1})
        texts += [str(info.value), repr(info.value), repr(getattr(info.value, "body", ""))]
    texts += [repr(caller.client()), str(caller.client()), repr(caller.client()._transport)]
    texts += [record.getMessage() for record in caplog.records]
    assert caplog.records, "retries should have been logged"
    assert not [t for t in texts if KEY in t]


async def test_chunks_before_an_error_frame_in_the_same_read_are_yielded(caller: Caller) -> None:
    one_read = b"".join(
        p
        for p in sse(
            chunk("a"), chunk("b"), {"error": {"message": "boom", "code": "InternalError"}}
        )
        if isinstance(p, bytes)
    )
    received: list[dict] = []
    with pytest.raises(StreamError) as info:
        await caller.stream(stream_response([one_read]), received=received)
    assert [c["choices"][0]["delta"]["content"] for c in received] == ["a", "b"]
    assert info.value.partial["choices"][0]["message"]["content"] == "ab"


async def test_concatenated_json_answer_to_a_stream_request_is_decoded(caller: Caller) -> None:
    data = b"\n".join(json.dumps(c).encode() for c in (chunk("a"), chunk("b", finish="stop")))
    received: list[dict] = []
    response = httpx.Response(
        200, headers={"content-type": "application/json"}, stream=Body([data])
    )
    stream = await caller.stream(response, received=received)
    assert [c["choices"][0]["delta"]["content"] for c in received] == ["a", "b"]
    assert stream.completion()["choices"][0]["finish_reason"] == "stop"


async def test_a_call_that_succeeds_first_time_never_builds_a_retrier(
    caller: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("tenacity was set up for a call that needed no retry")

    monkeypatch.setattr(tenacity, "Retrying", refuse)
    monkeypatch.setattr(tenacity, "AsyncRetrying", refuse)
    result = await caller.create(httpx.Response(200, json=completion("fast")))
    assert result["choices"][0]["message"]["content"] == "fast"
    stream = await caller.stream(stream_response(sse(chunk("ok", finish="stop"))))
    assert stream.completion()["choices"][0]["message"]["content"] == "ok"


async def test_retries_after_a_bare_first_attempt_count_and_log_it_as_attempt_one(
    caller: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="opensearch_llm")
    result = await caller.create(
        error(503, **{"retry-after": "0"}),
        error(502, **{"retry-after": "0"}),
        httpx.Response(200, json=completion("third")),
        client_options={"max_retries": 2},
    )
    assert result["choices"][0]["message"]["content"] == "third"
    assert len(caller.script.requests) == 3
    logged = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(logged) == 2
    assert "failed 503" in logged[0] and "(attempt 2)" in logged[0]
    assert "failed 502" in logged[1] and "(attempt 3)" in logged[1]


async def test_backoff_after_a_bare_first_attempt_grows_from_the_first_retry(
    caller: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def asleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(_transport, "time", SimpleNamespace(sleep=sleep, monotonic=time.monotonic))
    monkeypatch.setattr(_transport, "asyncio", SimpleNamespace(sleep=asleep))
    result = await caller.create(
        error(503), error(503), httpx.Response(200, json=completion("late"))
    )
    assert result["choices"][0]["message"]["content"] == "late"
    # Jittered 2^n from DEFAULT_BACKOFF_INITIAL: retry 1 waits 0.25-0.5 s, retry 2 0.5-1 s.
    initial = DEFAULT_BACKOFF_INITIAL
    assert len(waits) == 2
    assert initial / 2 <= waits[0] <= initial <= waits[1] <= 2 * initial
