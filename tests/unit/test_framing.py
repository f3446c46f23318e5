import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opensearch_llm import ResponseTooLargeError
from opensearch_llm._framing import Frame, Framer, is_done
from opensearch_llm._knowledge import KnowledgeStreamDecoder
from opensearch_llm._stream import ChatChunkDecoder


def decode(*parts: bytes) -> list[Frame]:
    decoder = Framer()
    events: list[Frame] = []
    for part in parts:
        events.extend(decoder.feed(part))
    events.extend(decoder.flush())
    return events


def data_of(events: list[Frame]) -> list[str]:
    return [e.data for e in events]


def test_standard_frames_with_and_without_space() -> None:
    assert data_of(decode(b'data: {"a":1}\n\ndata:{"b":2}\n\ndata: [DONE]\n\n')) == [
        '{"a":1}',
        '{"b":2}',
        "[DONE]",
    ]


def test_crlf_and_cr_line_endings() -> None:
    assert data_of(decode(b"data: 1\r\n\r\ndata: 2\r\rdata: 3\n\n")) == ["1", "2", "3"]


def test_crlf_split_between_chunks_does_not_make_a_blank_line() -> None:
    # "data: a\r" | "\ndata: b\r\n\r\n": per spec the CRLF is one line ending, so a and b form
    # one two-line event only if no blank line came between; here a blank line must not appear.
    events = decode(b"event: x\r", b"\ndata: a\r", b"\n", b"data: b\r\n\r\n")
    assert events == [Frame("a\nb", "x")]


def test_multibyte_utf8_split_anywhere() -> None:
    raw = 'data: {"content":"你好, 世界 🌏"}\n\n'.encode()
    for cut in range(1, len(raw)):
        events = decode(raw[:cut], raw[cut:])
        assert json.loads(events[0].data)["content"] == "你好, 世界 🌏"


def test_comments_keepalives_and_unknown_fields_are_ignored() -> None:
    assert data_of(decode(b": keep-alive\n\nid: 7\nretry: 100\ndata: x\n\n:ping\n\n")) == ["x"]


def test_event_name_is_kept() -> None:
    assert decode(b"event: error\ndata: {}\n\n") == [Frame("{}", "error")]


def test_frames_without_blank_lines_between_them() -> None:
    events = decode(b'data: {"a":1}\ndata: {"b":2}\ndata: [done]\n')
    assert data_of(events) == ['{"a":1}', '{"b":2}', "[done]"]


def test_genuine_multiline_data_is_joined() -> None:
    assert data_of(decode(b'data: {"a":\ndata: 1}\n\n')) == ['{"a":\n1}']


def test_bare_json_lines_count_as_data() -> None:
    assert data_of(decode(b'{"a":1}\n{"b":2}\n')) == ['{"a":1}', '{"b":2}']


def test_stream_without_final_newline_is_flushed() -> None:
    assert data_of(decode(b'data: {"a":1}')) == ['{"a":1}']


def test_nothing_is_emitted_before_the_frame_is_complete() -> None:
    decoder = Framer()
    assert decoder.feed(b'data: {"a"') == []
    assert decoder.feed(b":1}\n") == []
    assert decoder.feed(b"\n") == [Frame('{"a":1}')]


@pytest.mark.parametrize("text", ["[DONE]", "[done]", " [Done] ", "[DONE]\n"])
def test_done_in_any_case(text: str) -> None:
    assert is_done(text)


def test_done_is_not_content() -> None:
    assert not is_done('{"content":"[DONE]"}')


FRAME = st.fixed_dictionaries(
    {"content": st.text(min_size=0, max_size=20), "n": st.integers(0, 1000)}
).map(lambda d: json.dumps(d, ensure_ascii=False))


@settings(max_examples=300, deadline=None)
@given(
    frames=st.lists(FRAME, min_size=1, max_size=8),
    ending=st.sampled_from(["\n", "\r\n", "\r"]),
    space=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_any_split_of_a_valid_stream_decodes_to_the_same_events(
    frames: list[str], ending: str, space: bool, cuts: list[int]
) -> None:
    prefix = "data: " if space else "data:"
    raw = "".join(f"{prefix}{frame}{ending}{ending}" for frame in frames).encode()
    raw += f"{prefix}[DONE]{ending}{ending}".encode()
    points = sorted({c % (len(raw) + 1) for c in cuts})
    parts = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    assert data_of(decode(*parts)) == [*frames, "[DONE]"]


# --------------------------------------------------------------------------- one set of rules


def test_a_byte_order_mark_at_the_start_is_dropped() -> None:
    assert data_of(decode(b'\xef\xbb\xbfdata: {"a":1}\n\n')) == ['{"a":1}']


def test_a_json_value_spread_over_lines_without_data_prefixes_is_one_frame() -> None:
    raw = b'{\n  "a": [1,\n    2],\n  "b": "x}"\n}\ndata: {"c":3}\n\n'
    assert [json.loads(d) for d in data_of(decode(raw))] == [{"a": [1, 2], "b": "x}"}, {"c": 3}]


def test_a_data_frame_continued_on_bare_lines_is_one_frame() -> None:
    assert [json.loads(d) for d in data_of(decode(b'data: {"a":\n  1}\n\n'))] == [{"a": 1}]


def test_lines_that_are_no_field_are_ignored_outside_a_json_value() -> None:
    assert data_of(decode(b'<html>\nhello\ndata: {"a":1}\n\nbye\n')) == ['{"a":1}']


def test_a_body_ending_inside_a_json_value_is_cut_short() -> None:
    framer = Framer()
    assert framer.feed(b'data: {"a":1}\n\ndata: {"b": [1,\n') == [Frame('{"a":1}')]
    assert framer.flush() == [] and framer.cut_short


# --------------------------------------------------------------------------- limits


def test_a_line_over_max_event_bytes_is_refused_while_it_arrives() -> None:
    framer = Framer(max_event_bytes=1000)
    framer.feed(b"data: " + b"x" * 900)
    with pytest.raises(ResponseTooLargeError) as info:
        framer.feed(b"x" * 200)
    assert (info.value.limit, info.value.setting) == (1000, "max_event_bytes")
    assert "max_event_bytes=1000" in str(info.value)


def test_a_frame_of_many_lines_over_max_event_bytes_is_refused() -> None:
    framer = Framer(max_event_bytes=1000)
    with pytest.raises(ResponseTooLargeError, match="a stream frame"):
        framer.feed(b'data: {"a": "\ndata: ' + b"x" * 100 + b"\n" + (b"data: y\n" * 600))


@pytest.mark.parametrize("which", ["chat", "knowledge"])
def test_both_decoders_take_the_limit(which: str) -> None:
    decoder: Any = (
        ChatChunkDecoder(max_event_bytes=100)
        if which == "chat"
        else KnowledgeStreamDecoder(max_event_bytes=100)
    )
    with pytest.raises(ResponseTooLargeError):
        list(decoder.feed(b"data: " + b"x" * 200))


# --------------------------------------------------------------------------- linear time


def _seconds(parts: list[bytes]) -> float:
    best = float("inf")
    for _ in range(3):
        framer = Framer(max_event_bytes=64 * 1024 * 1024)
        start = time.process_time()
        for part in parts:
            framer.feed(part)
        framer.flush()
        best = min(best, time.process_time() - start)
    return best


def _one_long_line(size: int) -> list[bytes]:
    line = b'data: {"content": "' + b"x" * size + b'"}\n\n'
    return [line[i : i + 4096] for i in range(0, len(line), 4096)]


def _many_data_lines(count: int) -> list[bytes]:
    event = b'data: {"content": [\n' + b'data: "word",\n' * count + b"data: 1]}\n\n"
    return [event[i : i + 4096] for i in range(0, len(event), 4096)]


@pytest.mark.parametrize("make", [_one_long_line, _many_data_lines], ids=["line", "lines"])
def test_parsing_is_linear_in_the_bytes(make: Any) -> None:
    # Four times the input costs about four times the time (quadratic would be sixteen).
    size = 2_000_000 if make is _one_long_line else 20_000
    small, large = _seconds(make(size)), _seconds(make(4 * size))
    assert large < 8 * max(small, 1e-4)


def test_each_line_of_a_multi_line_frame_is_scanned_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from opensearch_llm import _framing

    scanned: list[str] = []
    real = _framing._JsonScan.scan
    monkeypatch.setattr(
        _framing._JsonScan, "scan", lambda self, line: (scanned.append(line), real(self, line))
    )
    frames = decode(*_many_data_lines(5000))
    assert len(frames) == 1 and len(json.loads(frames[0].data)["content"]) == 5001
    assert 5000 <= len(scanned) <= 5002  # every line at most once (the last one need not be)


def test_one_line_frames_are_never_scanned(monkeypatch: pytest.MonkeyPatch) -> None:
    from opensearch_llm import _framing

    monkeypatch.setattr(_framing._JsonScan, "scan", lambda self, line: pytest.fail(line))
    assert len(decode(b'data: {"a":1}\n\n' * 100)) == 100


# --------------------------------------------------------------------------- both decoders


CHUNK = {
    "id": "chatcmpl-1",
    "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}],
}
KNOWLEDGE = {"request_id": "r", "result": {"data": [{"answer": "hi", "type": "text"}]}}


@pytest.mark.parametrize(
    "shape",
    [
        "data: {}\n\n",
        "data:{}\n\n",
        "data: {}\r\n\r\n",
        "data: {}\n",
        "{}\n",
        "{}",
        "data: {}{}\n\n",
        "event: message\nid: 1\n: ping\ndata: {}\n\n",
    ],
)
def test_chat_and_knowledge_read_the_same_shapes(shape: str) -> None:
    chat = ChatChunkDecoder()
    chunks = [c for part in _split(shape.replace("{}", json.dumps(CHUNK))) for c in chat.feed(part)]
    chunks += list(chat.finish()) if not chat.done else []
    knowledge = KnowledgeStreamDecoder()
    raw = shape.replace("{}", json.dumps(KNOWLEDGE))
    pieces = [p for part in _split(raw) for p in knowledge.feed(part)]
    pieces += list(knowledge.finish())
    count = shape.count("{}")
    assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["hi"] * count
    # Every knowledge frame repeats the answer so far: read as cumulative, it adds nothing.
    assert pieces == ["hi"] and knowledge.raw == KNOWLEDGE


def _split(text: str) -> list[bytes]:
    raw = text.encode()
    return [raw[i : i + 7] for i in range(0, len(raw), 7)]
