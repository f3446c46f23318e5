"""Fuzzing the pure parsers with arbitrary bytes, split anywhere: only our typed errors escape.

The inputs mix arbitrary bytes with the pieces the service's streams are made of (``data:``
prefixes, line ends, ``[DONE]``, JSON values with the keys the parsers look at, cut UTF-8),
so that the parsers' deeper paths are reached, not only their first ``json.loads``. Each
stream parser is also fed the same bytes whole and split: what the caller gets must not
depend on how the network cut the body.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opensearch_llm import (
    APIStatusError,
    ChatClient,
    OpenSearchLLMError,
    ResponseDecodeError,
    StreamError,
)
from opensearch_llm._bodies import decode_response, error_from_body
from opensearch_llm._chat_stream import ChatChunkDecoder
from opensearch_llm._framing import Frame, Framer
from opensearch_llm._knowledge import KnowledgeStreamDecoder

#: ``RELIABILITY_FUZZ_EXAMPLES`` runs more examples; ``RELIABILITY_FUZZ_RANDOM=1`` draws new
#: ones on every run (by default the examples are the same on every run, so CI cannot flake).
FUZZ = settings(
    max_examples=int(os.environ.get("RELIABILITY_FUZZ_EXAMPLES", "200")),
    report_multiple_bugs=False,
    derandomize=not os.environ.get("RELIABILITY_FUZZ_RANDOM"),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

KEYS = (
    "id",
    "object",
    "choices",
    "index",
    "delta",
    "message",
    "role",
    "content",
    "reasoning_content",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "type",
    "finish_reason",
    "usage",
    "logprobs",
    "error",
    "code",
    "success",
    "data",
    "errors",
    "status",
    "result",
    "answer",
    "request_id",
    "latency",
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["chatcmpl-1", "assistant", "stop", "content_filter", "FAIL", ""])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=24,
)

CHUNK = {
    "id": "chatcmpl-abc",
    "object": "chat.completion.chunk",
    "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None, "logprobs": None}],
}
TOOL = {
    "id": "chatcmpl-abc",
    "choices": [
        {
            "index": 0,
            "delta": {"tool_calls": [{"index": 0, "id": "", "function": {"arguments": "{"}}]},
        }
    ],
}
LAST = {"id": "chatcmpl-abc", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
USAGE = {"id": "chatcmpl-abc", "choices": [], "usage": {"total_tokens": 3}}
ERROR = {"error": {"code": "internal_error", "message": "boom"}, "request_id": "r"}
ENVELOPE = {"success": True, "code": "200", "data": CHUNK}
FAILED = {"success": False, "code": "429", "message": "slow down"}
KNOWLEDGE = {"request_id": "r", "result": {"data": [{"answer": "Ans", "type": "text"}]}}
KNOWLEDGE_ERROR = {"status": "FAIL", "errors": [{"code": "1001", "message": "no app"}]}
SAMPLES = (CHUNK, TOOL, LAST, USAGE, ERROR, ENVELOPE, FAILED, KNOWLEDGE, KNOWLEDGE_ERROR)

TOKENS = (
    b"data: ",
    b"data:",
    b"\n",
    b"\r\n",
    b"\r",
    b"\n\n",
    b"[DONE]",
    b"[done]",
    b"event: error\n",
    b"event:",
    b"id: 7\n",
    b": keep-alive\n",
    b"retry: 10\n",
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b"\\",
    b",",
    b":",
    b"\xef\xbb\xbf",
    "é中".encode(),
    "中".encode()[:2],
    b"\xff\xfe",
    *(json.dumps(sample).encode() for sample in SAMPLES),
)

EVENT_TOKENS = (b"event: error\n", b"event:")


def bodies(tokens: tuple[bytes, ...]) -> st.SearchStrategy[bytes]:
    """Bytes that look like the service's streams, or like nothing at all."""
    pieces = st.one_of(
        st.sampled_from(tokens),
        JSON_VALUES.map(lambda value: json.dumps(value).encode()),
        st.binary(max_size=16),
    )
    return st.lists(pieces, max_size=40).map(b"".join)


BODIES = bodies(TOKENS)
#: The same without SSE ``event:`` lines (see ``test_an_event_line_names_the_next_frame``).
BODIES_WITHOUT_EVENTS = bodies(tuple(t for t in TOKENS if t not in EVENT_TOKENS))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, (dict, list)):
        for key, child in value.items() if isinstance(value, dict) else enumerate(value):
            yield from _paths(child, (*prefix, key))


def replaced(sample: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of ``sample`` with the value at ``path`` replaced by ``value``."""
    copied: Any = copy.deepcopy(sample)
    target = copied
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copied


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A sample frame with one value somewhere inside replaced by an arbitrary JSON value."""
    sample = draw(st.sampled_from(SAMPLES))
    return replaced(sample, draw(st.sampled_from(list(_paths(sample))[1:])), draw(JSON_VALUES))


#: Frames as the service sends them, and the same with one value of the wrong shape.
FRAMES = st.lists(
    st.one_of(st.sampled_from(SAMPLES), mutated()).map(
        lambda s: b"data: " + json.dumps(s).encode() + b"\n\n"
    ),
    max_size=8,
).map(b"".join)


@st.composite
def split(draw: st.DrawFn, bodies: st.SearchStrategy[bytes] = BODIES) -> tuple[bytes, list[bytes]]:
    """A body and the same body cut at arbitrary points."""
    body = draw(bodies)
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=8)))
    edges = [0, *cuts, len(body)]
    return body, [body[start:end] for start, end in itertools.pairwise(edges)]


ANY_BODY = split(st.one_of(BODIES, FRAMES))


# --------------------------------------------------------------------------- SSE


def sse_events(pieces: list[bytes]) -> list[Frame]:
    """Every event of a body fed in ``pieces``, then flushed."""
    decoder = Framer()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    return events + decoder.flush()


@FUZZ
@given(ANY_BODY)
def test_sse_decoder(body_and_pieces: tuple[bytes, list[bytes]]) -> None:
    body, pieces = body_and_pieces
    try:
        whole = sse_events([body])
        cut = sse_events(pieces)
    except OpenSearchLLMError:
        return
    assert cut == whole
    assert all(isinstance(event.data, str) for event in whole)


# --------------------------------------------------------------------------- chat streams


def chat_stream(decoder: ChatChunkDecoder, pieces: list[bytes]) -> Iterator[dict[str, Any]]:
    """What ``ChatStream`` yields for a body that arrives in ``pieces``."""
    for piece in pieces:
        yield from decoder.feed(piece)
        if decoder.done:
            return
    yield from decoder.finish()


def run_chat(pieces: list[bytes]) -> tuple[list[Any], type[Exception] | None, Any]:
    """The chunks yielded, the error raised (only ours may escape) and the completion."""
    decoder = ChatChunkDecoder()
    chunks: list[Any] = []
    try:
        for chunk in chat_stream(decoder, pieces):
            chunks.append(chunk)
    except OpenSearchLLMError as error:
        return chunks, type(decoder.broken(error)), decoder.result()
    return chunks, None, decoder.result()


def _typed(value: Any, kind: type, *, optional: bool = True) -> bool:
    """``value`` is a ``kind`` (a bool is not an int), or None where that is allowed."""
    if value is None:
        return optional
    return isinstance(value, kind) and not isinstance(value, bool)


def _fragment_ok(fragment: Any) -> bool:
    """A tool-call fragment as the decoder completes it: index, id, type and function."""
    if not isinstance(fragment, dict) or not isinstance(fragment.get("function"), dict):
        return False
    function = fragment["function"]
    return (
        _typed(fragment.get("index"), int, optional=False)
        and _typed(fragment.get("id"), str)
        and _typed(fragment.get("type"), str, optional=False)
        and _typed(function.get("name"), str)
        and _typed(function.get("arguments"), str, optional=False)
    )


def _choice_problems(choice: Any) -> list[str]:
    if not isinstance(choice, dict):
        return ["choice"]
    delta, logprobs = choice.get("delta"), choice.get("logprobs")
    fields = {"delta": _typed(delta, dict), "index": _typed(choice.get("index"), int)}
    fields["finish_reason"] = _typed(choice.get("finish_reason"), str)
    fields["logprobs"] = _typed(logprobs, dict) and _typed((logprobs or {}).get("content"), list)
    delta = delta if isinstance(delta, dict) else {}
    for text in ("content", "reasoning_content", "role"):
        fields[text] = _typed(delta.get(text), str)
    calls = delta.get("tool_calls")
    fields["tool_calls"] = _typed(calls, list) and all(map(_fragment_ok, calls or ()))
    return [name for name, ok in fields.items() if not ok]


def chunk_problems(chunk: Any) -> list[str]:
    """The fields of a chunk without their documented ``chat.completion.chunk`` types.

    Written apart from the decoder's own check, which it judges.
    """
    if not isinstance(chunk, dict) or not isinstance(chunk.get("choices"), list):
        return ["choices"]
    own = {"id": str, "object": str, "model": str, "created": int, "usage": dict}
    problems = [key for key, kind in own.items() if not _typed(chunk.get(key), kind)]
    return problems + [p for choice in chunk["choices"] for p in _choice_problems(choice)]


def malformed(chunks: list[Any]) -> dict[int, list[str]]:
    """The yielded chunks of another shape, by position, with their wrong fields."""
    return {i: problems for i, chunk in enumerate(chunks) if (problems := chunk_problems(chunk))}


@FUZZ
@given(ANY_BODY)
def test_chat_chunk_decoder(body_and_pieces: tuple[bytes, list[bytes]]) -> None:
    body, pieces = body_and_pieces
    cut = run_chat(pieces)
    assert cut == run_chat([body])
    assert malformed(cut[0]) == {}


#: A value of each JSON kind (None too: where a field may be null, it must be handled).
EVERY_KIND = (None, True, 5, 1.5, "x", [1], {"a": 1})


def test_a_sample_with_any_value_of_another_kind_is_refused_or_well_formed() -> None:
    """Each value of each sample frame, replaced in turn by each kind: no bad chunk comes out."""
    for sample in SAMPLES:
        for path in list(_paths(sample))[1:]:
            for value in EVERY_KIND:
                frame = replaced(sample, path, value)
                chunks = run_chat([b"data: " + json.dumps(frame).encode() + b"\n\n"])[0]
                assert malformed(chunks) == {}, frame


# --------------------------------------------------------------------------- knowledge-llm streams


def run_knowledge(pieces: list[bytes]) -> tuple[str, type[Exception] | None]:
    """The answer received and the error raised, as ``KnowledgeStream`` reads ``pieces``."""
    decoder = KnowledgeStreamDecoder()
    try:
        for piece in pieces:
            list(decoder.feed(piece))
            if decoder.done:
                return decoder.answer, None
        list(decoder.finish())
    except OpenSearchLLMError as error:
        return decoder.answer, type(decoder.broken(error))
    return decoder.answer, None


def knowledge_frames(*extra: bytes) -> st.SearchStrategy[bytes]:
    """knowledge-llm frames: answers, errors, empty results, with or without SSE framing."""
    frames: tuple[dict[str, Any], ...] = (
        KNOWLEDGE,
        KNOWLEDGE_ERROR,
        ERROR,
        {"result": {"data": []}},
    )
    framing = (b"data: ", b"data:", b"\n", b"\n\n", b"[DONE]", *extra)
    return st.lists(
        st.sampled_from(frames).map(lambda s: json.dumps(s).encode()) | st.sampled_from(framing),
        max_size=12,
    ).map(b"".join)


@FUZZ
@given(split(st.one_of(BODIES, FRAMES, knowledge_frames(*EVENT_TOKENS))))
def test_knowledge_stream_decoder(body_and_pieces: tuple[bytes, list[bytes]]) -> None:
    body, pieces = body_and_pieces
    run_knowledge(pieces)  # only our typed errors may escape
    run_knowledge([body])


@FUZZ
@given(split(st.one_of(BODIES_WITHOUT_EVENTS, FRAMES, knowledge_frames())))
def test_knowledge_stream_decoder_does_not_depend_on_the_reads(
    body_and_pieces: tuple[bytes, list[bytes]],
) -> None:
    body, pieces = body_and_pieces
    assert run_knowledge(pieces) == run_knowledge([body])


# --------------------------------------------------------------------------- error bodies

RETRY_AFTER = st.one_of(
    st.text(max_size=20),
    st.floats().map(str),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "nan"]),
)
HEADERS = st.dictionaries(
    st.sampled_from(["retry-after", "retry-after-ms", "x-request-id", "content-type"]),
    RETRY_AFTER,
    max_size=4,
)


@FUZZ
@given(st.integers(100, 599), st.one_of(BODIES, FRAMES), HEADERS)
def test_decode_response(status: int, content: bytes, headers: dict[str, str]) -> None:
    try:
        decode_response(status, content, headers)
    except OpenSearchLLMError as error:
        if isinstance(error, APIStatusError):
            assert error.status == status
        return
    assert status < 400, "an error status was decoded as a success"


@FUZZ
@given(st.integers(100, 599), JSON_VALUES, HEADERS, st.binary(max_size=64))
def test_error_from_body(status: int, body: Any, headers: dict[str, str], content: bytes) -> None:
    error = error_from_body(status, body, headers, content)
    assert error is None or isinstance(error, APIStatusError)
    if status >= 400:
        assert error is not None
    if error is not None:
        assert error.retry_after is None or error.retry_after >= 0


# --------------------------------------------------------------------------- known bugs

DEEP = b"[" * 5000


def _sse_deep() -> None:
    decoder = Framer()
    decoder.feed(b"data: " + DEEP + b"\ndata: 1\n\n")
    decoder.flush()


def _chat_deep() -> None:
    assert run_chat([b"data: " + DEEP + b"\n\n"])[:2] == ([], ResponseDecodeError)


def _knowledge_deep() -> None:
    run_knowledge([b"data: " + DEEP + b"]" * 5000 + b"\n\n"])


def _decode_deep() -> None:
    with contextlib.suppress(OpenSearchLLMError):
        decode_response(200, DEEP, {})


@pytest.mark.parametrize(
    "parse", [_sse_deep, _chat_deep, _knowledge_deep, _decode_deep], ids=lambda f: f.__name__
)
def test_deeply_nested_json_is_a_typed_error(parse: Any) -> None:
    parse()


MALFORMED_CHUNKS = (
    {"id": True, "choices": []},
    {"model": 5, "choices": []},
    {"created": "today", "choices": []},
    {"usage": [1], "choices": []},
    {"choices": [{"finish_reason": 5}]},
    {"choices": [{"delta": {"role": ["assistant"]}}]},
    {"choices": 1},
    {"choices": [1]},
    {"choices": [{"index": [1]}]},
    {"choices": [{"delta": "Hi"}]},
    {"choices": [{"delta": {"content": 5}}]},
    {"choices": [{"delta": {"tool_calls": [1]}}]},
    {"choices": [{"delta": {"tool_calls": [{"function": "get_weather"}]}}]},
    {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": 3}}]}}]},
    {"choices": [{"logprobs": 3}]},
)


@pytest.mark.parametrize("frame", MALFORMED_CHUNKS, ids=json.dumps)
def test_a_chunk_of_another_shape_is_a_typed_error(frame: dict[str, Any]) -> None:
    chunks, error, result = run_chat([b"data: " + json.dumps(frame).encode() + b"\n\n"])
    assert (chunks, error, result["choices"]) == ([], ResponseDecodeError, [])


MALFORMED_COMPLETIONS = (
    {"choices": 1},
    {"choices": [1]},
    {"choices": [{"message": "Hi"}]},
    {"choices": [{"message": {"content": 5}}]},
    {"choices": [{"message": {"content": "Hi", "tool_calls": 3}}]},
)


def _answering(body: dict[str, Any]) -> ChatClient:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    return ChatClient(
        "sk-test",
        base_url="http://emulator.local/v1",
        http_client=httpx.Client(transport=transport),
    )


@pytest.mark.parametrize("body", MALFORMED_COMPLETIONS, ids=json.dumps)
@pytest.mark.parametrize("streamed", [False, True], ids=["create", "stream"])
def test_a_completion_of_another_shape_is_a_typed_error(body: Any, streamed: bool) -> None:
    with _answering(body) as client, pytest.raises(OpenSearchLLMError):
        if streamed:
            client.stream(model="qwen-plus", messages=[{"role": "user", "content": "Hi"}]).collect()
        else:
            client.create(model="qwen-plus", messages=[{"role": "user", "content": "Hi"}])


def _knowledge_pieces(pieces: list[bytes]) -> list[str]:
    decoder = KnowledgeStreamDecoder()
    received: list[str] = []
    try:
        for piece in pieces:
            for text in decoder.feed(piece):
                received.append(text)
    except OpenSearchLLMError:
        pass
    return received


def test_knowledge_pieces_before_an_error_frame_do_not_depend_on_the_reads() -> None:
    frames = [
        b"data: " + json.dumps(KNOWLEDGE).encode() + b"\n\n",
        b"data: " + json.dumps(KNOWLEDGE_ERROR).encode() + b"\n\n",
    ]
    assert _knowledge_pieces([b"".join(frames)]) == _knowledge_pieces(frames) == ["Ans"]


def test_an_event_line_names_the_next_frame() -> None:
    frames = [
        b"data: " + json.dumps(KNOWLEDGE).encode() + b"\n\n",
        b"event: error\ndata: " + json.dumps(KNOWLEDGE_ERROR).encode() + b"\n\n",
    ]
    whole, cut = run_knowledge([b"".join(frames)]), run_knowledge(frames)
    assert cut == ("Ans", StreamError)
    assert whole == cut
