"""Pure tests of ``opensearch_llm._knowledge``: requests, answers, the stream parser, signing."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from opensearch_llm import (
    APIStatusError,
    ContentFilterError,
    NotFoundError,
    OpenSearchLLMError,
    RequestValidationError,
    ResponseDecodeError,
    StreamError,
)
from opensearch_llm._bodies import decode_response, encode_json
from opensearch_llm._config import KNOWLEDGE_HOST_ENV_VAR
from opensearch_llm._knowledge import (
    AccessKeyCredentials,
    KnowledgeStreamDecoder,
    build_knowledge_request,
    canonical_headers,
    canonical_resource,
    content_md5,
    knowledge_url,
    new_text,
    parse_knowledge_body,
    resolve_host,
    signature_date,
    signed_headers,
    string_to_sign,
    validate_app,
)

from .support import body, failure

# --------------------------------------------------------------------------- requests


def test_summarise_body_sends_only_what_is_set() -> None:
    request = build_knowledge_request(
        question="what is OpenSearch", content=["OpenSearch", "Havenask"]
    )
    assert request.payload == {
        "question": "what is OpenSearch",
        "type": "text",
        "content": ["OpenSearch", "Havenask"],
    }
    assert not request.stream and request.model is None and request.headers == {}


def test_every_field_and_stream_option() -> None:
    request = build_knowledge_request(
        question="q",
        content=("a",),
        type="text",
        model="qwen-turbo",
        csi_level="loose",
        stream=True,
        extra_body={"session": "s1"},
        extra_headers={"X-Trace": "t"},
    )
    assert request.payload == {
        "question": "q",
        "type": "text",
        "content": ["a"],
        "model": "qwen-turbo",
        "csi_level": "loose",
        "options": {"stream": True},
        "session": "s1",
    }
    assert request.stream and request.model == "qwen-turbo" and request.headers == {"X-Trace": "t"}


def test_extra_body_options_are_kept_but_may_not_contradict_the_call() -> None:
    more = {"options": {"stream": False, "trace": True}}
    assert build_knowledge_request(question="q", extra_body=more).payload["options"] == {
        "stream": False,
        "trace": True,
    }
    streamed = build_knowledge_request(question="q", stream=True, extra_body={"options": {"x": 1}})
    assert streamed.payload["options"] == {"x": 1, "stream": True}
    for stream, options in ((True, {"stream": False}), (False, {"stream": True})):
        with pytest.raises(RequestValidationError, match="stream\\(\\) for a stream") as info:
            build_knowledge_request(question="q", stream=stream, extra_body={"options": options})
        assert info.value.field == "extra_body.options.stream"


def test_extra_body_may_not_replace_an_argument() -> None:
    with pytest.raises(RequestValidationError, match="question: pass question=") as info:
        build_knowledge_request(question="q", extra_body={"question": "other", "session": "s"})
    assert info.value.field == "extra_body" and info.value.value == ["question"]


def test_prompt_overrides_question_and_content() -> None:
    # api-docs 002: with prompt, question and content do not take effect: they are not sent.
    request = build_knowledge_request(
        question="q", content=["c"], prompt="Say hi", model="qwen-plus"
    )
    assert request.payload == {"prompt": "Say hi", "model": "qwen-plus"}
    assert build_knowledge_request(prompt="p").payload == {"prompt": "p"}


def test_type_none_is_not_sent() -> None:
    assert build_knowledge_request(question="q", type=None).payload == {"question": "q"}


@pytest.mark.parametrize(
    ("call", "field"),
    [
        ({}, "question"),
        ({"question": ""}, "question"),
        ({"question": "   "}, "question"),
        ({"question": 3}, "question"),
        ({"prompt": ""}, "prompt"),
        ({"question": "q", "content": []}, "content"),
        ({"question": "q", "content": "one passage"}, "content"),
        ({"question": "q", "content": {"a": 1}}, "content"),
        ({"question": "q", "content": ["ok", 2]}, "content[1]"),
        ({"question": "q", "content": [None]}, "content[0]"),
        ({"question": "q", "csi_level": "strict"}, "csi_level"),
        ({"question": "q", "csi_level": "NONE"}, "csi_level"),
        ({"question": "q", "model": ""}, "model"),
        ({"question": "q", "type": 1}, "type"),
    ],
)
def test_validation_names_the_field(call: dict[str, Any], field: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        build_knowledge_request(**call)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)
    assert field.split("[")[0] in str(caught.value)


@pytest.mark.parametrize("app", [None, "", "a/b", "my app", "app?x", 7])
def test_bad_app_name(app: Any) -> None:
    with pytest.raises(RequestValidationError) as caught:
        validate_app(app)
    assert caught.value.field == "app"


def test_host_from_argument_or_environment() -> None:
    assert resolve_host("http://h.example/", env={}) == "http://h.example"
    assert (
        resolve_host(None, env={KNOWLEDGE_HOST_ENV_VAR: "https://e.example"}) == "https://e.example"
    )
    with pytest.raises(RequestValidationError, match=KNOWLEDGE_HOST_ENV_VAR) as caught:
        resolve_host(None, env={})
    assert caught.value.field == "host"


@pytest.mark.parametrize(
    "host", ["opensearch.aliyuncs.com", "ftp://h", "http://", "http://a b", ""]
)
def test_bad_host(host: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        resolve_host(host, env={})
    assert caught.value.field == "host"


def test_knowledge_url() -> None:
    assert (
        knowledge_url("http://h", "app_1") == "http://h/v3/openapi/apps/app_1/actions/knowledge-llm"
    )


# --------------------------------------------------------------------------- answers


# The sample response of api-docs 002, as printed (a comment, a stray "]", trailing commas).
DOCUMENTED_SAMPLE = """{
  "request_id" : "",
  "latency" : 10.0, # Unit: seconds.
  "result" : {
    "data": [
      {
        "answer" : "answer text",
        "type" : "text"
        ]
      }
    ]
  },
  "errors" : [
    {
      "code" : "The error code that is returned if an error occurs.",
      "message" : "The error message that is returned if an error occurs."
    }
  ]
}"""


def test_documented_sample_is_not_json_and_is_a_decode_error() -> None:
    with pytest.raises(ResponseDecodeError):
        decode_response(200, DOCUMENTED_SAMPLE.encode(), {})


def test_parse_body_keeps_everything() -> None:
    raw = body("answer text", extra_field=1)
    raw["result"]["data"].append({"type": "reference", "items": [1, 2]})
    result = parse_knowledge_body(raw, {"x-request-id": "hdr"}, "qwen-max")
    assert result.answer == "answer text"
    assert result.request_id == "abc123-ABC" and result.latency == 10.0
    assert result.data == raw["result"]["data"] and result.raw is raw
    assert result.model == "qwen-max"


def test_parse_body_falls_back_to_header_request_id_and_odd_latency() -> None:
    raw = body("x", request_id="")
    raw["latency"] = "0.5"
    result = parse_knowledge_body(raw, {"x-request-id": "hdr-1"})
    assert result.request_id == "hdr-1" and result.latency == 0.5
    raw["latency"] = "slow"
    assert parse_knowledge_body(raw).latency is None


def test_parse_body_joins_several_text_entries() -> None:
    raw = body("a")
    raw["result"]["data"].append({"answer": "b", "type": "text"})
    assert parse_knowledge_body(raw).answer == "ab"


@pytest.mark.parametrize("raw", [{}, {"result": {}}, {"result": {"data": "x"}}, [], "text"])
def test_body_without_result_data_is_a_decode_error(raw: Any) -> None:
    with pytest.raises(ResponseDecodeError):
        parse_knowledge_body(raw)


def test_errors_become_typed_even_under_200() -> None:
    with pytest.raises(APIStatusError) as caught:
        decode_response(200, json.dumps(failure()).encode(), {})
    assert caught.value.code == "1001" and caught.value.message == "APP is not found"
    assert caught.value.request_id == "rid-err"
    with pytest.raises(ContentFilterError):
        decode_response(200, json.dumps(failure("data_inspection_failed", "blocked")).encode(), {})
    with pytest.raises(NotFoundError) as caught:
        decode_response(404, json.dumps(failure()).encode(), {})
    assert caught.value.status == 404 and caught.value.code == "1001"


# --------------------------------------------------------------------------- streams


def frame(answer: str, **extra: Any) -> str:
    return json.dumps(body(answer, **extra))


def decode(*chunks: bytes) -> tuple[list[str], KnowledgeStreamDecoder]:
    decoder = KnowledgeStreamDecoder(model="m")
    pieces: list[str] = []
    for chunk in chunks:
        pieces += decoder.feed(chunk)
    pieces += decoder.finish()
    return pieces, decoder


@pytest.mark.parametrize(
    "text",
    [
        "data: {a}\n\ndata: {b}\n\ndata: {c}\n\n",  # SSE
        "data:{a}\n\ndata:{b}\n\ndata:{c}\n\n",  # no space
        "data:{a}\ndata:{b}\ndata:{c}\n",  # no blank lines
        "data: {a}\r\n\r\ndata: {b}\r\n\r\ndata: {c}\r\n\r\n",  # CRLF
        "{a}\n{b}\n{c}\n",  # newline-delimited
        "{a}{b}{c}",  # back to back
        "{a} \n\n{b}data: {c}",  # a mixture
        ": keep-alive\nevent: message\nid: 1\nretry: 100\ndata: {a}\n\n{b}\n{c}",
        "\ufeffdata: {a}\n\ndata: {b}\n\ndata: {c}\n\ndata: [DONE]\n\n",
        "data: {a}\n\ndata: {b}\n\ndata: {c}\n\ndata:[done]\n\ndata: {a}\n\n",  # after [DONE]: ignored
    ],
)
def test_stream_forms(text: str) -> None:
    raw = (
        text.replace("{a}", frame("Open"))
        .replace("{b}", frame("Search"))
        .replace("{c}", frame(" rocks"))
    )
    pieces, decoder = decode(raw.encode())
    assert pieces == ["Open", "Search", " rocks"]
    result = decoder.result()
    assert result.answer == "OpenSearch rocks" and result.request_id == "abc123-ABC"
    assert result.latency == 10.0 and result.model == "m"
    assert result.data == [{"answer": "OpenSearch rocks", "type": "text"}]


def test_cumulative_frames_yield_only_the_new_text() -> None:
    frames = "".join(f"data: {frame(a)}\n\n" for a in ["Open", "OpenSearch", "OpenSearch rocks"])
    pieces, decoder = decode(frames.encode())
    assert pieces == ["Open", "Search", " rocks"]
    assert decoder.result().answer == "OpenSearch rocks"


def test_a_final_whole_answer_after_pieces_adds_nothing() -> None:
    frames = "".join(f"data: {frame(a)}\n\n" for a in ["Open", "Search", "OpenSearch"])
    assert decode(frames.encode())[0] == ["Open", "Search"]


def test_new_text_rule() -> None:
    assert new_text("", "abc") == "abc"
    assert new_text("ab", "abc") == "c"
    assert new_text("ab", "ab") == ""
    assert new_text("ab", " c") == " c"


def test_frames_without_answers_and_metadata_frames() -> None:
    text = (
        f"data: {frame('a')}\n\n"
        'data: {"request_id": "late", "latency": 2.5}\n\n'
        'data: {"result": {"data": [{"type": "reference", "docs": [1]}]}}\n\n'
    )
    pieces, decoder = decode(text.encode())
    assert pieces == ["a"]
    result = decoder.result()
    assert result.latency == 2.5 and result.request_id == "abc123-ABC"
    assert result.data == [{"answer": "a", "type": "text"}, {"type": "reference", "docs": [1]}]


def test_error_frame_after_text_is_raised_and_partial_kept() -> None:
    decoder = KnowledgeStreamDecoder()
    assert list(decoder.feed(f"data: {frame('par')}\n\n".encode())) == ["par"]
    with pytest.raises(APIStatusError) as caught:
        list(decoder.feed(f"data: {json.dumps(failure('InternalError', 'boom'))}\n\n".encode()))
    broken = decoder.broken(caught.value)
    assert isinstance(broken, StreamError)
    assert broken.partial.answer == "par" and broken.code == "InternalError"


def test_error_before_any_text_is_raised_as_it_is() -> None:
    decoder = KnowledgeStreamDecoder()
    with pytest.raises(APIStatusError) as caught:
        list(decoder.feed(f"data: {json.dumps(failure())}\n\n".encode()))
    assert decoder.broken(caught.value) is caught.value


def test_event_error_frame_is_an_error_whatever_its_shape() -> None:
    decoder = KnowledgeStreamDecoder()
    with pytest.raises(APIStatusError):
        list(decoder.feed(b'event: error\ndata: {"detail": "overloaded"}\n\n'))


@pytest.mark.parametrize(
    "text",
    [
        "data: not json\n\n",
        "hello\n",
        'data: {"a": 1]\n\n',
        "data: [1, 2]\n\n",
        "data: 42\n\n",
    ],
)
def test_malformed_frames_are_decode_errors(text: str) -> None:
    with pytest.raises(ResponseDecodeError):
        decode(text.encode())


def test_truncated_stream_is_a_stream_error_with_partial() -> None:
    with pytest.raises(StreamError) as caught:
        decode(f"data: {frame('abc')}\n\ndata: {frame('def')}"[:-5].encode())
    assert caught.value.partial.answer == "abc"


def test_empty_stream_is_a_decode_error() -> None:
    with pytest.raises(ResponseDecodeError):
        decode(b"")
    with pytest.raises(ResponseDecodeError):
        decode(b": only a comment\n\n")
    assert decode(b"data: [DONE]\n\n")[0] == []


def test_feed_body_for_a_json_reply() -> None:
    decoder = KnowledgeStreamDecoder()
    assert decoder.feed_body(body("whole")) == ["whole"]
    assert decoder.done and decoder.result().answer == "whole"
    with pytest.raises(ResponseDecodeError):
        KnowledgeStreamDecoder().feed_body({"unexpected": True})


def test_escapes_and_brackets_inside_strings() -> None:
    tricky = 'say "}{" \\ and \\"]['
    pieces, _ = decode((frame(tricky) + frame("ü€😀")).encode())
    assert pieces == [tricky, "ü€😀"]


def test_whole_body_in_one_chunk_is_linear() -> None:
    frames = "".join(f"data: {frame(f' w{i % 10}')}\n\n" for i in range(20_000))
    pieces, decoder = decode(frames.encode())
    assert len(pieces) == 20_000 and len(decoder.result().answer) == 60_000


# --------------------------------------------------------------------------- hypothesis

_pieces = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=8)


def _encoded(pieces: list[str], form: str, cumulative: bool, done: str | None) -> bytes:
    answers = ["".join(pieces[: i + 1]) for i in range(len(pieces))] if cumulative else pieces
    frames = [json.dumps(body(a), ensure_ascii=form != "sse-utf8") for a in answers]
    joined = {
        "sse": lambda: "".join(f"data: {f}\n\n" for f in frames),
        "sse-utf8": lambda: "".join(f"data:{f}\r\n\r\n" for f in frames),
        "ndjson": lambda: "".join(f"{f}\n" for f in frames),
        "concat": lambda: "".join(frames),
    }[form]()
    if done:
        joined += f"data: {done}\n\n"
    return joined.encode()


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=_pieces,
    form=st.sampled_from(["sse", "sse-utf8", "ndjson", "concat"]),
    cumulative=st.booleans(),
    done=st.sampled_from([None, "[DONE]", "[done]", "[Done]"]),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
)
def test_any_split_of_a_valid_stream_gives_the_same_text(
    pieces: list[str], form: str, cumulative: bool, done: str | None, cuts: list[int]
) -> None:
    # A piece that repeats everything before it reads as cumulative (the documented rule).
    assume(
        cumulative or all(not p.startswith("".join(pieces[:i])) for i, p in enumerate(pieces) if i)
    )
    data = _encoded(pieces, form, cumulative, done)
    received, decoder = decode(*_split(data, cuts))
    assert "".join(received) == "".join(pieces) == decoder.result().answer


@settings(max_examples=400)
@given(
    data=st.binary(max_size=300), cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6)
)
def test_arbitrary_bytes_raise_only_typed_errors(data: bytes, cuts: list[int]) -> None:
    with contextlib.suppress(OpenSearchLLMError):
        decode(*_split(data, cuts))


@settings(max_examples=200)
@given(
    text=st.text(alphabet='data:{}[]"\\\n DONE,1a', max_size=120),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
)
def test_frame_like_noise_raises_only_typed_errors(text: str, cuts: list[int]) -> None:
    with contextlib.suppress(OpenSearchLLMError):
        decode(*_split(text.encode(), cuts))


# --------------------------------------------------------------------------- signature

SECRET = "testSECRETvalue-9f8e7d"
DATE = "2019-02-25T10:09:57Z"
NONCE = "1551089397451704"
PATH = "/v3/openapi/apps/my_app/actions/knowledge-llm"


def _expected_signature(method: str, body_bytes: bytes, extra_headers: str, resource: str) -> str:
    # Spelled out from the OpenSearch API V3 signature document, independently of the module.
    md5 = hashlib.md5(body_bytes).hexdigest()
    to_sign = f"{method}\n{md5}\napplication/json\n{DATE}\n{extra_headers}{resource}"
    digest = hmac.new(SECRET.encode(), to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def test_signature_known_vector() -> None:
    payload = encode_json(
        {"question": "what is OpenSearch", "type": "text", "content": ["OpenSearch", "Havenask"]}
    )
    assert (
        payload
        == b'{"question":"what is OpenSearch","type":"text","content":["OpenSearch","Havenask"]}'
    )
    headers = signed_headers(
        AccessKeyCredentials("LTAIexample", SECRET),
        method="POST",
        url=f"http://h.example{PATH}",
        body=payload,
        date=DATE,
        nonce=NONCE,
    )
    expected = _expected_signature("POST", payload, f"x-opensearch-nonce:{NONCE}\n", PATH)
    assert headers == {
        "X-Opensearch-Nonce": NONCE,
        "Content-MD5": hashlib.md5(payload).hexdigest(),
        "Content-Type": "application/json",
        "Date": DATE,
        "Authorization": f"OPENSEARCH LTAIexample:{expected}",
    }
    # Pinned too, computed with the openssl command line:
    #   printf 'POST\n1b0487adf69b7e0336e2968510d9145d\napplication/json\n2019-02-25T10:09:57Z\n
    #   x-opensearch-nonce:1551089397451704\n/v3/openapi/apps/my_app/actions/knowledge-llm' |
    #   openssl dgst -sha1 -hmac testSECRETvalue-9f8e7d -binary | base64
    assert headers["Content-MD5"] == "1b0487adf69b7e0336e2968510d9145d"
    assert expected == "Kn83oRr37xM6ybSQQVnaRuhRXMI="


def test_signature_signs_every_x_opensearch_header_sorted_and_lower_cased() -> None:
    payload = b'{"prompt":"\xe4\xbd\xa0\xe5\xa5\xbd"}'
    headers = signed_headers(
        AccessKeyCredentials("id", SecretStr(SECRET)),
        method="POST",
        url=f"http://h.example{PATH}?b=2&a=x y",
        body=payload,
        date=DATE,
        nonce=NONCE,
        headers={
            "X-OpenSearch-Zeta": "z",
            "x-opensearch-alpha": " a ",
            "X-Other": "o",
            "X-Opensearch-Empty": "",
        },
    )
    expected = _expected_signature(
        "POST",
        payload,
        f"x-opensearch-alpha:a\nx-opensearch-nonce:{NONCE}\nx-opensearch-zeta:z\n",
        f"{PATH}?a=x%20y&b=2",
    )
    assert headers["Authorization"] == f"OPENSEARCH id:{expected}"
    assert "X-Other" not in headers


def test_signature_parts() -> None:
    assert content_md5(b"") == ""
    assert content_md5(b"abc") == "900150983cd24fb0d6963f7d28e17f72"
    assert canonical_headers({"X-Opensearch-B": "2", "X-Opensearch-A": "1", "Date": "d"}) == (
        "x-opensearch-a:1\nx-opensearch-b:2\n"
    )
    assert canonical_resource("http://h/a b/c?z=1&y=&x=a*b") == "/a%20b/c?x=a%2Ab&y&z=1"
    assert canonical_resource("http://h") == "/"
    assert string_to_sign("post", "m", "t", "d", "h:1\n", "/r") == "POST\nm\nt\nd\nh:1\n/r"
    moment = datetime(2019, 2, 25, 18, 9, 57, tzinfo=timezone(timedelta(hours=8)))
    assert signature_date(moment) == DATE


def test_a_callers_nonce_wins() -> None:
    headers = signed_headers(
        AccessKeyCredentials("id", SECRET),
        method="POST",
        url=f"http://h{PATH}",
        body=b"{}",
        date=DATE,
        nonce="ignored",
        headers={"x-opensearch-nonce": "mine"},
    )
    assert headers["x-opensearch-nonce"] == "mine" and "X-Opensearch-Nonce" not in headers


def test_credentials_hide_the_secret() -> None:
    credentials = AccessKeyCredentials("LTAIexample", SECRET)
    assert SECRET not in repr(credentials) and SECRET not in str(credentials)
    assert credentials.access_key_secret.get_secret_value() == SECRET
    for bad_id, bad_secret, field in [
        ("", SECRET, "access_key_id"),
        ("id", "", "access_key_secret"),
    ]:
        with pytest.raises(RequestValidationError) as caught:
            AccessKeyCredentials(bad_id, bad_secret)
        assert caught.value.field == field
    with pytest.raises(RequestValidationError) as caught:
        AccessKeyCredentials("id", SecretStr(""))
    assert SECRET not in str(caught.value)
