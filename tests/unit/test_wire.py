import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opensearch_llm import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    ContextWindowExceededError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    RequestValidationError,
    ResponseDecodeError,
)
from opensearch_llm._bodies import (
    decode_json,
    decode_response,
    encode_json,
    error_from_body,
    parse_event_data,
    request_id_of,
    unwrap_envelope,
)
from opensearch_llm._chat_wire import build_chat_request, chunk_from_frame

USER = [{"role": "user", "content": "hi"}]


def build(model: str = "qwen-plus", stream: bool = False, **params: Any) -> Any:
    return build_chat_request(model, USER, params, stream=stream)


# ---------------------------------------------------------------- requests


def test_only_what_the_caller_set_is_sent_plus_model() -> None:
    request = build(temperature=0.5, top_p=None, stop=["x"])
    assert request.payload == {
        "model": "qwen-plus",
        "messages": USER,
        "temperature": 0.5,
        "stop": ["x"],
    }
    assert not request.stream


def test_streams_ask_for_usage_unless_the_caller_says_otherwise() -> None:
    assert build(stream=True).payload["stream_options"] == {"include_usage": True}
    assert build(stream=True, stream_options={"include_usage": False}).payload[
        "stream_options"
    ] == {"include_usage": False}
    assert "stream_options" not in build(stream_options={"include_usage": True}).payload


def test_extra_body_is_merged_and_extra_headers_split_off() -> None:
    request = build(extra_body={"vl_high_resolution_images": True}, extra_headers={"X-A": "1"})
    assert request.payload["vl_high_resolution_images"] is True
    assert request.headers == {"X-A": "1"}


def test_max_completion_tokens_only_when_asked() -> None:
    assert "max_completion_tokens" not in build(max_tokens=5).payload
    assert build(max_completion_tokens=7).payload["max_completion_tokens"] == 7


def test_hybrid_open_source_model_gets_thinking_off_when_not_streamed() -> None:
    request = build("qwen3-32b")
    assert request.payload["enable_thinking"] is False
    assert not request.stream


def test_hybrid_open_source_model_streams_with_its_default() -> None:
    assert "enable_thinking" not in build("qwen3-32b", stream=True).payload


def test_thinking_asked_on_a_non_streamed_call_streams_and_aggregates() -> None:
    request = build("qwen3-32b", enable_thinking=True)
    assert request.stream and request.aggregate
    assert request.payload["stream"] is True


def test_stream_only_model_is_streamed_internally() -> None:
    request = build("qwq-plus")
    assert request.stream and request.aggregate
    assert request.payload["stream_options"] == {"include_usage": True}


def test_commercial_hybrid_model_is_left_alone() -> None:
    request = build("qwen-plus")
    assert "enable_thinking" not in request.payload and not request.stream


@pytest.mark.parametrize(
    ("model", "params"),
    [
        ("qwq-plus", {}),
        ("qwen3-32b", {"enable_thinking": True}),
        ("qwen-plus", {"enable_thinking": True}),
        ("qwen3-235b-a22b-thinking-2507", {}),
    ],
)
@pytest.mark.parametrize(
    "tool_choice", ["required", {"type": "function", "function": {"name": "f"}}]
)
def test_forced_tool_choice_with_thinking_is_rejected(
    model: str, params: Any, tool_choice: Any
) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with pytest.raises(RequestValidationError) as info:
        build(model, tools=tools, tool_choice=tool_choice, **params)
    assert info.value.field == "tool_choice"
    assert "think" in str(info.value)


def test_forced_tool_choice_without_thinking_is_fine() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert (
        build("qwen3-32b", tools=tools, tool_choice="required").payload["tool_choice"] == "required"
    )


def test_unserializable_content_is_a_validation_error() -> None:
    with pytest.raises(RequestValidationError) as info:
        encode_json(
            {"model": "m", "messages": [{"role": "user", "content": "x", "meta": object()}]}
        )
    assert info.value.field == "messages"


def test_encoding_is_compact_utf8() -> None:
    assert encode_json({"a": "é"}) == '{"a":"é"}'.encode()


# ---------------------------------------------------------------- responses and errors


def test_gateway_envelope_is_unwrapped() -> None:
    body = {"success": True, "code": "200", "message": "successful", "data": {"choices": []}}
    assert decode_response(200, json.dumps(body).encode(), {}) == {"choices": []}
    assert unwrap_envelope({"choices": []}) == {"choices": []}


@pytest.mark.parametrize(
    ("status", "body", "cls", "code", "request_id"),
    [
        (
            401,
            {
                "error": {
                    "message": "Incorrect API key provided.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                },
                "request_id": "r1",
            },
            AuthenticationError,
            "invalid_api_key",
            "r1",
        ),
        (
            400,
            {"code": "DataInspectionFailed", "message": "inappropriate", "request_id": "r2"},
            ContentFilterError,
            "DataInspectionFailed",
            "r2",
        ),
        (
            400,
            {"error": {"code": "data_inspection_failed", "message": "x"}},
            ContentFilterError,
            "data_inspection_failed",
            None,
        ),
        (
            200,
            {"success": False, "code": "429", "message": "throttled", "data": None},
            RateLimitError,
            "429",
            None,
        ),
        (
            200,
            {"success": False, "code": "InternalError", "message": "boom"},
            InternalServerError,
            "InternalError",
            None,
        ),
        (
            200,
            {"error": {"message": "quota", "code": "insufficient_quota"}},
            RateLimitError,
            "insufficient_quota",
            None,
        ),
        (
            429,
            {"error": {"message": "quota", "code": "insufficient_quota"}},
            RateLimitError,
            "insufficient_quota",
            None,
        ),
        (
            404,
            {"error": {"message": "no such model", "code": "model_not_found"}},
            NotFoundError,
            "model_not_found",
            None,
        ),
        (
            400,
            {
                "error": {
                    "message": "Range of input length should be [1, 30720]",
                    "code": "invalid_parameter_error",
                }
            },
            ContextWindowExceededError,
            "invalid_parameter_error",
            None,
        ),
        (  # the same over-long input under 200, as DashScope's native API sends it
            200,
            {
                "code": "InvalidParameter",
                "message": "Range of input length should be [1, 30720]",
                "request_id": "r3",
            },
            ContextWindowExceededError,
            "InvalidParameter",
            "r3",
        ),
        (  # the request id inside the error object
            400,
            {"error": {"message": "bad", "code": "invalid_parameter_error", "request_id": "9a"}},
            BadRequestError,
            "invalid_parameter_error",
            "9a",
        ),
        (
            200,
            {
                "request_id": "k1",
                "latency": 0.1,
                "errors": [{"code": "1001", "message": "APP is not found"}],
            },
            APIStatusError,
            "1001",
            "k1",
        ),
        (
            503,
            {"error": {"message": "overloaded", "type": "server_error"}},
            InternalServerError,
            "server_error",
            None,
        ),
    ],
)
def test_one_parser_for_every_error_shape(
    status: int, body: Any, cls: type[Exception], code: str, request_id: str | None
) -> None:
    with pytest.raises(cls) as info:
        decode_response(status, json.dumps(body).encode(), {})
    error = info.value
    assert isinstance(error, APIStatusError)
    assert (error.status, error.code, error.request_id) == (status, code, request_id)
    assert error.message and error.message in str(error)


def test_html_error_page_becomes_a_status_error_with_its_text() -> None:
    with pytest.raises(InternalServerError) as info:
        decode_response(502, b"<html><title>502 Bad Gateway</title><body>nginx</body></html>", {})
    assert "502 Bad Gateway" in info.value.message and info.value.status == 502


def test_malformed_json_under_200_is_a_decode_error() -> None:
    with pytest.raises(ResponseDecodeError):
        decode_response(200, b'{"choices": [', {})


def test_retry_after_is_read_from_headers() -> None:
    error = error_from_body(429, {"error": {"message": "slow"}}, {"retry-after": "3"})
    assert error is not None and error.retry_after == 3.0


def test_success_bodies_are_not_errors() -> None:
    assert error_from_body(200, {"choices": []}) is None
    assert error_from_body(200, {"request_id": "x", "result": {"data": []}, "errors": []}) is None
    assert (
        error_from_body(200, {"success": True, "code": "200", "message": "ok", "data": {}}) is None
    )


def test_error_under_400_without_a_body_still_raises() -> None:
    with pytest.raises(BadRequestError):
        decode_response(400, b"", {})


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        ({"request_id": "body-id", "id": "chatcmpl-x"}, {"x-request-id": "h"}, "body-id"),
        ({"id": "chatcmpl-from-id"}, {"x-request-id": "h"}, "from-id"),
        ({"id": "other"}, {"x-request-id": "header-id"}, "header-id"),
        ({"success": True, "data": {"id": "chatcmpl-inner"}}, {}, "inner"),
        ({"error": {"message": "m", "request_id": "in-error"}}, {"x-request-id": "h"}, "in-error"),
        (None, {}, None),
    ],
)
def test_request_id_precedence(body: Any, headers: dict[str, str], expected: str | None) -> None:
    assert request_id_of(body, headers) == expected


# ---------------------------------------------------------------- stream frames


@pytest.mark.parametrize("frame", [{}, {"choices": None}, {"id": "chatcmpl-k", "usage": None}])
def test_a_frame_without_choices_is_a_chunk_with_no_choices(frame: dict[str, Any]) -> None:
    assert chunk_from_frame(frame)["choices"] == []


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_an_error_that_names_the_status_and_the_location(status: int) -> None:
    headers = {"location": "https://dashscope-intl.aliyuncs.com/v1", "x-request-id": "r"}
    with pytest.raises(APIStatusError) as info:
        decode_response(status, b"<html>moved</html>", headers)
    error = info.value
    assert (error.status, error.request_id) == (status, "r")
    assert "redirected the request to https://dashscope-intl.aliyuncs.com/v1" in str(error)
    assert "base_url" in str(error)


def test_event_data_single_and_concatenated_values() -> None:
    assert parse_event_data('{"a":1}') == ([{"a": 1}], False)
    assert parse_event_data("[DONE]") == ([], True)
    assert parse_event_data('{"a":1}{"b":2}\n[done]') == ([{"a": 1}, {"b": 2}], True)
    assert parse_event_data('{"a":1}\ndata: {"b":2}') == ([{"a": 1}, {"b": 2}], False)


def test_event_data_that_is_not_json_is_a_decode_error() -> None:
    with pytest.raises(ResponseDecodeError):
        parse_event_data("not json")


def test_frames_unwrap_the_gateway_and_raise_error_frames() -> None:
    chunk = {"choices": [{"delta": {"content": "x"}}]}
    assert chunk_from_frame(chunk) is chunk
    assert chunk_from_frame({"success": True, "code": "200", "data": chunk}) is chunk
    with pytest.raises(RateLimitError):
        chunk_from_frame({"error": {"code": "Throttling.RateQuota", "message": "slow down"}})
    with pytest.raises(APIStatusError):
        chunk_from_frame({"success": False, "code": "E1", "message": "bad"})
    with pytest.raises(ResponseDecodeError):
        chunk_from_frame([1, 2])


@pytest.mark.parametrize(
    ("code", "cls"), [("1001", APIStatusError), ("1", APIStatusError), ("99999", APIStatusError)]
)
def test_service_numeric_codes_under_200_are_not_http_statuses(code: str, cls: type) -> None:
    error = error_from_body(200, {"errors": [{"code": code, "message": "APP is not found"}]})
    assert type(error) is cls


@pytest.mark.parametrize(
    "text",
    [
        '{"delta": {"content": " word"}, "n": 12345678901234567890123, "x": -0.0, "f": 1e-7}',
        '{"content": "\\ud83d"}',  # a lone surrogate escape: half an emoji cut by the server
        "[" * 300 + "]" * 300,  # deeper than pydantic-core's parser goes
        '"\\u00e9t\\u00e9"',
        '{"a": NaN, "a": Infinity}',
    ],
)
def test_decode_json_reads_what_the_standard_library_reads(text: str) -> None:
    assert repr(decode_json(text)) == repr(json.loads(text))
    assert repr(decode_json(text.encode())) == repr(json.loads(text.encode()))


def test_decode_json_accepts_a_utf8_bom_and_rejects_what_is_not_json() -> None:
    assert decode_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}
    for text in ("", "[DONE]", '{"a": 1}{"b": 2}', "{'a': 1}"):
        with pytest.raises(ValueError):
            decode_json(text)


def test_a_stream_frame_with_a_lone_surrogate_is_a_chunk_not_an_error() -> None:
    values, done = parse_event_data('{"choices": [{"index": 0, "delta": {"content": "\\ud83d"}}]}')
    assert not done
    assert chunk_from_frame(values[0])["choices"][0]["delta"]["content"] == "\ud83d"


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(_JSON_VALUES, st.booleans())
def test_decode_json_equals_the_standard_library_on_any_json(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert repr(decode_json(text)) == repr(json.loads(text))
    assert repr(decode_json(text.encode())) == repr(json.loads(text.encode()))
