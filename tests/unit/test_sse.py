import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opensearch_llm._sse import SSEDecoder, SSEEvent, is_done


def decode(*parts: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for part in parts:
        events.extend(decoder.feed(part))
    events.extend(decoder.flush())
    return events


def data_of(events: list[SSEEvent]) -> list[str]:
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
    assert events == [SSEEvent("a\nb", "x")]


def test_multibyte_utf8_split_anywhere() -> None:
    raw = 'data: {"content":"你好, 世界 🌏"}\n\n'.encode()
    for cut in range(1, len(raw)):
        events = decode(raw[:cut], raw[cut:])
        assert json.loads(events[0].data)["content"] == "你好, 世界 🌏"


def test_comments_keepalives_and_unknown_fields_are_ignored() -> None:
    assert data_of(decode(b": keep-alive\n\nid: 7\nretry: 100\ndata: x\n\n:ping\n\n")) == ["x"]


def test_event_name_is_kept() -> None:
    assert decode(b"event: error\ndata: {}\n\n") == [SSEEvent("{}", "error")]


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
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a"') == []
    assert decoder.feed(b":1}\n") == []
    assert decoder.feed(b"\n") == [SSEEvent('{"a":1}')]


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
