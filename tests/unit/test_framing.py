import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opensearch_llm import APIStatusError, OpenSearchLLMError, ResponseTooLargeError
from opensearch_llm._bodies import parse_event_data
from opensearch_llm._chat_stream import ChatChunkDecoder
from opensearch_llm._framing import Frame, Framer, is_done
from opensearch_llm._knowledge import KnowledgeStreamDecoder


def decode(*parts: bytes, limit: int | None = None) -> list[Frame]:
    decoder = Framer() if limit is None else Framer(limit)
    events: list[Frame] = []
    for part in parts:
        events.extend(decoder.feed(part))
    events.extend(decoder.flush())
    return events


def data_of(events: list[Frame]) -> list[str]:
    return [e.data for e in events]


def pieces(raw: bytes, size: int) -> list[bytes]:
    return [raw[i : i + size] for i in range(0, len(raw), size)]


# --------------------------------------------------------------------------- one set of rules


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'data: {"a":1}\n\ndata:{"b":2}\n\n', ['{"a":1}', '{"b":2}']),
        (b"data: 1\r\n\r\ndata: 2\r\rdata: 3\n\n", ["1", "2", "3"]),
        (b'\xef\xbb\xbfdata: {"a":1}\n\n', ['{"a":1}']),
        (b'data: {"a":1}\ndata: {"b":2}\ndata: [done]\n', ['{"a":1}', '{"b":2}', "[done]"]),
        (b'data: {"a":\ndata: 1}\n\n', ['{"a":\n1}']),
        (b"data: hello\ndata: world\n\n", ["hello\nworld"]),
        (b'{"a":1}\n{"b":2}\n', ['{"a":1}', '{"b":2}']),
        (b'{"a":1}{"b":2}\n', ['{"a":1}{"b":2}']),
        (b'data: {"a":1}data: {"b":2}\n\n', ['{"a":1}data: {"b":2}']),
        (b'data: {"a":1}', ['{"a":1}']),
        (b'{"a":1}', ['{"a":1}']),
        (b"[DONE]\n", ["[DONE]"]),
        (b'{"a":1}\n[Done]\n', ['{"a":1}', "[Done]"]),
        (b": keep-alive\n\nid: 7\nretry: 100\ndata: x\n\n:ping\n\n", ["x"]),
        (b'<html>\nhello\ndata: {"a":1}\n\nbye\n', ['{"a":1}']),
        (b'data: {"a":\n  1}\n\n', ['{"a":\n  1}']),
    ],
    ids=[
        "space-or-not",
        "crlf-cr-lf",
        "bom",
        "no-blank-lines",
        "multi-line-data",
        "multi-line-text",
        "bare-json-lines",
        "back-to-back-json",
        "back-to-back-data",
        "no-final-newline",
        "bare-no-final-newline",
        "bare-done",
        "done-any-case",
        "comments-id-retry",
        "unknown-lines-ignored",
        "data-continued-on-bare-line",
    ],
)
def test_tolerated_shapes(raw: bytes, expected: list[str]) -> None:
    assert data_of(decode(raw)) == expected
    assert data_of(decode(*pieces(raw, 1))) == expected


def test_a_crlf_split_between_reads_does_not_make_a_blank_line() -> None:
    events = decode(b"event: x\r", b"\ndata: a\r", b"\n", b"data: b\r\n\r\n")
    assert events == [Frame("a\nb", "x")]


def test_a_byte_order_mark_split_between_reads_is_dropped() -> None:
    assert data_of(decode(b"\xef", b"\xbb", b'\xbfdata: {"a":1}\n\n')) == ['{"a":1}']


def test_multibyte_utf8_split_anywhere() -> None:
    raw = 'data: {"content":"你好, 世界 🌏"}\n\n'.encode()
    for cut in range(1, len(raw)):
        events = decode(raw[:cut], raw[cut:])
        assert json.loads(events[0].data)["content"] == "你好, 世界 🌏"


def test_event_name_is_kept() -> None:
    assert decode(b"event: error\ndata: {}\n\n") == [Frame("{}", "error")]


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


def test_a_json_value_spread_over_lines_without_data_prefixes_is_one_frame() -> None:
    raw = b'{\n  "a": [1,\n    2],\n  "b": "x}"\n}\ndata: {"c":3}\n\n'
    assert [json.loads(d) for d in data_of(decode(raw))] == [{"a": [1, 2], "b": "x}"}, {"c": 3}]


def test_a_body_ending_inside_a_json_value_is_cut_short() -> None:
    framer = Framer()
    assert framer.feed(b'data: {"a":1}\n\ndata: {"b": [1,\n') == [Frame('{"a":1}')]
    assert framer.flush() == [] and framer.cut_short


# --------------------------------------------------------------------------- any split


VALUE = st.fixed_dictionaries(
    {
        "content": st.text(max_size=12),
        "n": st.integers(0, 1000),
        "list": st.lists(st.integers(0, 9), max_size=3),
    }
)


def _frame_lines(shape: str, value: Any) -> tuple[list[str], list[Any]]:
    """The lines of one frame in ``shape``, and the JSON values it carries."""
    compact = json.dumps(value, ensure_ascii=False)
    pretty = json.dumps(value, ensure_ascii=False, indent=2).split("\n")
    return {
        "data": ([f"data: {compact}"], [value]),
        "data-no-space": ([f"data:{compact}"], [value]),
        "bare": ([compact], [value]),
        "bare-pretty": (pretty, [value]),
        "data-lines": ([f"data: {line}" for line in pretty], [value]),
        "back-to-back": ([f"data: {compact}{compact}"], [value, value]),
    }[shape]


SHAPES = ("data", "data-no-space", "bare", "bare-pretty", "data-lines", "back-to-back")


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[tuple[Any, str]], bool]:
    """A stream mixing every tolerated shape; the (value, event) pairs and [DONE] it carries."""
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    bom = "\ufeff" if draw(st.booleans()) else ""
    lines: list[str] = []
    expected: list[tuple[Any, str]] = []
    for value in draw(st.lists(VALUE, min_size=1, max_size=6)):
        event = draw(st.sampled_from(["", "delta"]))
        # An event: line belongs to the frame after a blank line (SSE); without one it would
        # name the frame still pending.
        if lines and (event or draw(st.booleans())):
            lines.append("")
        lines += draw(st.lists(st.sampled_from([": ping", "id: 3", "retry: 10"]), max_size=2))
        lines += [f"event: {event}"] if event else []
        frame, values = _frame_lines(draw(st.sampled_from(SHAPES)), value)
        lines += frame
        expected += [(v, event or "message") for v in values]
    done = draw(st.booleans())
    lines += [draw(st.sampled_from(["data: [DONE]", "[done]"]))] if done else []
    text = "".join(line + end for line in lines)
    if draw(st.booleans()):
        text = text.removesuffix(end)  # a body may end without its last line end
    return (bom + text).encode(), expected, done


def _values(frames: list[Frame]) -> tuple[list[tuple[Any, str]], bool]:
    values: list[tuple[Any, str]] = []
    done = False
    for frame in frames:
        parsed, frame_done = parse_event_data(frame.data)
        values += [(value, frame.event) for value in parsed]
        done = done or frame_done
    return values, done


@settings(max_examples=400, deadline=None)
@given(stream=streams(), cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_any_split_of_a_stream_gives_the_same_frames(
    stream: tuple[bytes, list[tuple[Any, str]], bool], cuts: list[int]
) -> None:
    raw, expected, done = stream
    points = sorted({c % (len(raw) + 1) for c in cuts})
    parts = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    whole = decode(raw)
    assert decode(*parts) == whole
    assert _values(whole) == (expected, done)


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


def test_the_limit_counts_bytes_not_characters() -> None:
    line = "data: " + "你" * 400 + "\n"  # 400 characters, 1,200 bytes
    with pytest.raises(ResponseTooLargeError):
        decode(line.encode(), limit=1000)
    assert len(decode(line.encode(), limit=1300)) == 1


def _decoder(which: str, limit: int) -> Any:
    if which == "chat":
        return ChatChunkDecoder(max_event_bytes=limit)
    return KnowledgeStreamDecoder(max_event_bytes=limit)


ONE_LONG_LINE = b"data: " + b"x" * 2000
MANY_LINES = b'data: {"answer": [\n' + b'data: "word",\n' * 300 + b"data: 1]}\n\n"


@pytest.mark.parametrize("which", ["chat", "knowledge"])
@pytest.mark.parametrize("raw", [ONE_LONG_LINE, MANY_LINES], ids=["line", "event"])
def test_both_decoders_take_the_limit(which: str, raw: bytes) -> None:
    decoder = _decoder(which, 1000)
    with pytest.raises(ResponseTooLargeError) as info:
        for part in pieces(raw, 256):
            list(decoder.feed(part))
    assert (info.value.setting, info.value.limit) == ("max_event_bytes", 1000)
    assert "max_event_bytes" in str(info.value)


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
    return pieces(b'data: {"content": "' + b"x" * size + b'"}\n\n', 4096)


def _many_data_lines(count: int) -> list[bytes]:
    event = b'data: {"content": [\n' + b'data: "word",\n' * count + b"data: 1]}\n\n"
    return pieces(event, 4096)


@pytest.mark.parametrize("make", [_one_long_line, _many_data_lines], ids=["line", "lines"])
def test_parsing_is_linear_in_the_bytes(make: Any) -> None:
    # Four times the input costs about four times the time (quadratic would be sixteen): an
    # 8 MB line in 4 KiB reads against a 2 MB one; 80,000 data lines against 20,000.
    size = 2_000_000 if make is _one_long_line else 20_000
    small, large = _seconds(make(size)), _seconds(make(4 * size))
    assert large < 8 * max(small, 1e-3)


def _lines_scanned(monkeypatch: pytest.MonkeyPatch, count: int) -> int:
    from opensearch_llm import _framing

    scanned: list[str] = []
    real = _framing._JsonScan.scan
    monkeypatch.setattr(
        _framing._JsonScan, "scan", lambda self, line: (scanned.append(line), real(self, line))
    )
    frames = decode(*_many_data_lines(count))
    assert len(frames) == 1 and len(json.loads(frames[0].data)["content"]) == count + 1
    return len(scanned)


@pytest.mark.parametrize("count", [5000, 20_000])
def test_each_line_of_a_multi_line_frame_is_scanned_once(
    monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    assert count <= _lines_scanned(monkeypatch, count) <= count + 2


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


def _fill(shape: str, value: dict[str, Any]) -> str:
    pretty = json.dumps(value, indent=2)
    return (
        shape.replace("{}", json.dumps(value))
        .replace("{pretty}", pretty)
        .replace("{data-lines}", "\n".join(f"data: {line}" for line in pretty.split("\n")))
    )


def _chat(raw: str) -> list[str]:
    chat = ChatChunkDecoder()
    chunks = [c for part in pieces(raw.encode(), 7) for c in chat.feed(part)]
    chunks += list(chat.finish()) if not chat.done else []
    return [c["choices"][0]["delta"]["content"] for c in chunks]


def _knowledge(raw: str) -> tuple[list[str], Any]:
    knowledge = KnowledgeStreamDecoder()
    answer = [p for part in pieces(raw.encode(), 7) for p in knowledge.feed(part)]
    return answer + list(knowledge.finish()), knowledge.raw


@pytest.mark.parametrize(
    "shape",
    [
        "data: {}\n\n",
        "data:{}\n\n",
        "data: {}\r\n\r\n",
        "data: {}\r\r",
        "\ufeffdata: {}\n\n",
        "data: {}\n",
        "data: {}",
        "{}\n",
        "{}",
        "data: {}{}\n\n",
        "data: {}data: {}\n\n",
        "data: {}\ndata: {}\ndata: [DONE]\n",
        "{}\n{}\n[done]\n",
        "{pretty}\n{pretty}\n",
        "{data-lines}\n\n{}\n\n",
        "event: message\nid: 1\n: ping\ndata: {}\n\n",
        "<html>\nnot a frame\ndata: {}\n\nbye\n",
    ],
)
def test_chat_and_knowledge_read_the_same_shapes(shape: str) -> None:
    count = sum(shape.count(mark) for mark in ("{}", "{pretty}", "{data-lines}"))
    assert _chat(_fill(shape, CHUNK)) == ["hi"] * count
    # Every knowledge frame repeats the answer so far: read as cumulative, it adds nothing.
    assert _knowledge(_fill(shape, KNOWLEDGE)) == (["hi"], KNOWLEDGE)


@pytest.mark.parametrize("which", ["chat", "knowledge"])
def test_an_error_event_is_an_error_in_both_decoders(which: str) -> None:
    decoder = _decoder(which, 1000)
    with pytest.raises(APIStatusError, match="boom"):
        list(decoder.feed(b'event: error\ndata: {"code": "x", "message": "boom"}\n\n'))


@pytest.mark.parametrize("which", ["chat", "knowledge"])
def test_a_stream_without_any_frame_is_an_error_in_both_decoders(which: str) -> None:
    decoder = _decoder(which, 1000)
    assert list(decoder.feed(b"<html>\nnot a frame\n: comment\n\n")) == []
    with pytest.raises(OpenSearchLLMError):
        list(decoder.finish())
