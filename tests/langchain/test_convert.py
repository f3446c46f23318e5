"""Pure conversions: LangChain messages -> wire dicts, wire dicts -> LangChain messages."""

from __future__ import annotations

import json
from functools import reduce
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call

from langchain_opensearch_llm._convert import (
    PROVIDER,
    StreamConverter,
    completion_to_result,
    message_to_wire,
    messages_to_wire,
    parse_tool_calls,
    profile_to_langchain,
    usage_to_metadata,
    wire_tool_choice,
)
from opensearch_llm import StreamAccumulator, get_profile

# --------------------------------------------------------------------------- inbound


def test_roles_and_names() -> None:
    wire = messages_to_wire(
        [
            SystemMessage("be brief"),
            HumanMessage("hi", name="alice"),
            AIMessage("hello", name="bot"),
            ChatMessage(role="user", content="again"),
        ]
    )
    assert wire == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi", "name": "alice"},
        {"role": "assistant", "content": "hello", "name": "bot"},
        {"role": "user", "content": "again"},
    ]


def test_developer_chat_message_is_a_system_message() -> None:
    """OpenAI's "developer" role: the service knows only "system" (it rejects the other)."""
    wire = messages_to_wire([ChatMessage(role="developer", content="be brief"), HumanMessage("hi")])
    assert wire == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    merged = messages_to_wire(
        [SystemMessage("one"), HumanMessage("hi"), ChatMessage(role="developer", content="two")]
    )
    assert merged[0] == {"role": "system", "content": "one\n\ntwo"}


def test_ai_tool_calls_and_invalid_tool_calls_round_trip() -> None:
    message = AIMessage(
        "",
        tool_calls=[tool_call(name="add", args={"a": 1, "city": "北京"}, id="call_1")],
        invalid_tool_calls=[invalid_tool_call(name="mul", args='{"a": ', id="call_2", error="x")],
    )
    wire = message_to_wire(message)
    assert wire["role"] == "assistant"
    assert wire["content"] == ""
    assert wire["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "add", "arguments": '{"a": 1, "city": "北京"}'},
        },
        {"id": "call_2", "type": "function", "function": {"name": "mul", "arguments": '{"a": '}},
    ]
    valid, invalid = parse_tool_calls(wire["tool_calls"])
    assert valid == message.tool_calls
    assert [call["args"] for call in invalid] == ['{"a": ']


def test_legacy_openai_tool_calls_in_additional_kwargs() -> None:
    raw = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    message = AIMessage("", additional_kwargs={"tool_calls": raw})
    assert message_to_wire(message)["tool_calls"] == raw


def test_tool_calls_without_arguments_are_sent_with_an_empty_object() -> None:
    """Invalid calls with no arguments and legacy calls with none: "{}", as in LlamaIndex."""
    message = AIMessage(
        "", invalid_tool_calls=[invalid_tool_call(name="f", args=None, id="c1", error="x")]
    )
    assert message_to_wire(message)["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}
    legacy = AIMessage("", additional_kwargs={"tool_calls": [{"id": "c2", "function": {}}]})
    assert message_to_wire(legacy)["tool_calls"] == [
        {"id": "c2", "type": "function", "function": {"name": "", "arguments": "{}"}}
    ]


def test_reasoning_is_never_sent_back() -> None:
    message = AIMessage(
        content=[
            {"type": "reasoning", "reasoning": "let me think"},
            {"type": "thinking", "thinking": "hmm"},
            {"type": "text", "text": "The answer", "id": "lc_1", "index": 1},
            {"type": "text", "text": " is 4."},
            {"type": "tool_call", "id": "c1", "name": "f", "args": {}},
            {"type": "non_standard", "value": {"x": 1}},
        ],
        additional_kwargs={"reasoning_content": "secret chain of thought"},
    )
    wire = message_to_wire(message)
    assert wire == {"role": "assistant", "content": "The answer is 4."}
    assert "reasoning" not in json.dumps(wire)


def test_v1_ai_message_round_trip_keeps_tool_calls_from_the_message() -> None:
    message = AIMessage(
        content=[{"type": "reasoning", "reasoning": "r"}, {"type": "text", "text": "ok"}],
        tool_calls=[tool_call(name="f", args={"x": 1}, id="c9")],
        response_metadata={"output_version": "v1"},
    )
    wire = message_to_wire(message)
    assert wire["content"] == "ok"
    assert wire["tool_calls"][0]["id"] == "c9"


def test_tool_message() -> None:
    wire = message_to_wire(ToolMessage("42", tool_call_id="c1", name="add"))
    assert wire == {"role": "tool", "tool_call_id": "c1", "content": "42", "name": "add"}
    listed = ToolMessage([{"type": "text", "text": "4"}, "2"], tool_call_id="c1")
    assert message_to_wire(listed)["content"] == "42"


def test_a_tool_results_image_moves_to_a_user_message_after_it() -> None:
    message = ToolMessage(
        [{"type": "text", "text": "the chart"}, {"type": "image", "url": "https://x/a.png"}],
        tool_call_id="c1",
    )
    assert messages_to_wire([HumanMessage("draw"), message]) == [
        {"role": "user", "content": "draw"},
        {"role": "tool", "tool_call_id": "c1", "content": "the chart"},
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}],
        },
    ]


@pytest.mark.parametrize(
    ("block", "url"),
    [
        ({"type": "image_url", "image_url": {"url": "https://x/a.png"}}, "https://x/a.png"),
        ({"type": "image_url", "image_url": "https://x/b.png"}, "https://x/b.png"),
        ({"type": "image", "url": "https://x/c.png"}, "https://x/c.png"),
        (
            {"type": "image", "base64": "QUJD", "mime_type": "image/png"},
            "data:image/png;base64,QUJD",
        ),
        (
            {"type": "image", "source_type": "base64", "data": "QUJD", "mime_type": "image/gif"},
            "data:image/gif;base64,QUJD",
        ),
        ({"type": "image", "source_type": "url", "url": "https://x/d.png"}, "https://x/d.png"),
    ],
)
def test_image_blocks_become_image_url_parts(block: dict[str, Any], url: str) -> None:
    wire = message_to_wire(HumanMessage([{"type": "text", "text": "describe"}, block]))
    assert wire["content"] == [
        {"type": "text", "text": "describe"},
        {"type": "image_url", "image_url": {"url": url}},
    ]


def test_image_detail_is_kept() -> None:
    part = {"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "low"}}
    assert message_to_wire(HumanMessage([part]))["content"] == [part]


def test_cache_control_marker_is_kept() -> None:
    blocks: list[str | dict[str, Any]] = [
        {"type": "text", "text": "long document", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "question", "id": "lc_1"},
    ]
    assert message_to_wire(HumanMessage(blocks))["content"] == [
        {"type": "text", "text": "long document", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "question"},
    ]


def test_single_text_block_is_sent_as_a_string() -> None:
    assert message_to_wire(HumanMessage([{"type": "text", "text": "hi"}]))["content"] == "hi"


@pytest.mark.parametrize(
    "block",
    [
        {"type": "file", "base64": "JVBERi0=", "mime_type": "application/pdf"},
        {"type": "image", "file_id": "file-1"},
        {"type": "audio", "file_id": "file-2"},
    ],
)
def test_unsupported_blocks_are_refused_with_a_clear_message(block: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="block"):
        message_to_wire(HumanMessage([block]))


def test_function_message_is_refused() -> None:
    with pytest.raises(TypeError, match="ToolMessage"):
        message_to_wire(FunctionMessage(content="x", name="f"))


def test_later_system_messages_are_merged_into_the_first() -> None:
    wire = messages_to_wire(
        [SystemMessage("rule one"), HumanMessage("hi"), SystemMessage("rule two")]
    )
    assert wire == [
        {"role": "system", "content": "rule one\n\nrule two"},
        {"role": "user", "content": "hi"},
    ]
    moved = messages_to_wire([HumanMessage("hi"), SystemMessage("late rule")])
    assert moved[0] == {"role": "system", "content": "late rule"}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("any", "required"),
        ("required", "required"),
        (True, "required"),
        ("add", {"type": "function", "function": {"name": "add"}}),
        (
            {"type": "function", "function": {"name": "add"}},
            {"type": "function", "function": {"name": "add"}},
        ),
        ({"name": "add"}, {"type": "function", "function": {"name": "add"}}),
    ],
)
def test_tool_choice_spellings(choice: Any, expected: Any) -> None:
    assert wire_tool_choice(choice, ["add", "mul"]) == expected


@pytest.mark.parametrize("choice", ["nope", {"type": "weird"}, 3])
def test_bad_tool_choice(choice: Any) -> None:
    with pytest.raises(ValueError, match="tool_choice"):
        wire_tool_choice(choice, ["add"])


# --------------------------------------------------------------------------- outbound

USAGE = {
    "prompt_tokens": 30,
    "completion_tokens": 12,
    "total_tokens": 42,
    "prompt_tokens_details": {"cached_tokens": 8},
    "completion_tokens_details": {"reasoning_tokens": 5},
}


def test_usage_with_details() -> None:
    assert usage_to_metadata(USAGE) == {
        "input_tokens": 30,
        "output_tokens": 12,
        "total_tokens": 42,
        "input_token_details": {"cache_read": 8},
        "output_token_details": {"reasoning": 5},
    }


def test_usage_with_null_details() -> None:
    usage = {
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "prompt_tokens_details": None,
        "completion_tokens_details": {"reasoning_tokens": None},
    }
    assert usage_to_metadata(usage) == {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}
    assert usage_to_metadata(None) is None


@pytest.mark.parametrize(
    ("arguments", "valid"),
    [("{}", True), ("", True), ('{"a": 1}', True), ("[1]", False), ('{"a": ', False)],
)
def test_parse_tool_calls(arguments: str, valid: bool) -> None:
    raw = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}]
    calls, invalid = parse_tool_calls(raw)
    assert (len(calls), len(invalid)) == ((1, 0) if valid else (0, 1))
    if not valid:
        assert invalid[0]["args"] == arguments
        assert invalid[0]["error"]


def test_tool_calls_without_an_id_get_one_so_their_result_can_name_it() -> None:
    raw = [
        {"type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": "", "type": "function", "function": {"name": "g", "arguments": "{x"}},
    ]
    [call], [invalid] = parse_tool_calls(raw)
    assert call["id"] is not None and call["id"].startswith("call_")
    assert invalid["id"] is not None and invalid["id"].startswith("call_")
    assert call["id"] != invalid["id"]


def _completion(**overrides: Any) -> dict[str, Any]:
    completion: dict[str, Any] = {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "model": "qwen-plus",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "logprobs": None,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "reasoning_content": "The user wants weather.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "weather", "arguments": "{not json"},
                        },
                    ],
                },
            },
            {
                "index": 1,
                "finish_reason": "stop",
                "logprobs": None,
                "message": {"role": "assistant", "content": "Sunny.", "reasoning_content": "r2"},
            },
        ],
        "usage": USAGE,
        "request_id": "req-1",
    }
    completion.update(overrides)
    return completion


def test_completion_to_result() -> None:
    result = completion_to_result(_completion())
    first, second = (generation.message for generation in result.generations)
    assert isinstance(first, AIMessage)
    assert isinstance(second, AIMessage)
    assert first.content == ""
    assert first.additional_kwargs == {"reasoning_content": "The user wants weather."}
    assert first.tool_calls == [
        {"name": "weather", "args": {"city": "Paris"}, "id": "call_1", "type": "tool_call"}
    ]
    assert first.invalid_tool_calls[0]["id"] == "call_2"
    assert first.content_blocks[0] == {"type": "reasoning", "reasoning": "The user wants weather."}
    assert [b["type"] for b in first.content_blocks] == ["reasoning", "tool_call"]
    assert first.response_metadata == {
        "model_provider": PROVIDER,
        "model_name": "qwen-plus",
        "id": "chatcmpl-abc",
        "request_id": "req-1",
        "finish_reason": "tool_calls",
    }
    assert first.usage_metadata is not None
    assert first.usage_metadata["output_token_details"] == {"reasoning": 5}
    assert second.usage_metadata is None  # usage is the response's: counted once
    assert second.content == "Sunny."
    assert second.additional_kwargs["reasoning_content"] == "r2"
    assert [b["type"] for b in second.content_blocks] == ["reasoning", "text"]
    assert result.llm_output is not None
    assert result.llm_output["token_usage"] == USAGE


def test_model_name_falls_back_to_the_requested_model() -> None:
    result = completion_to_result(_completion(model=None), model="qwen-max")
    assert result.generations[0].message.response_metadata["model_name"] == "qwen-max"


# --------------------------------------------------------------------------- streams


def _chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {
        "id": "chatcmpl-s",
        "model": "qwen-plus",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }


def _merge(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    return reduce(lambda left, right: left + right, chunks)


def _stream(wire_chunks: list[dict[str, Any]]) -> AIMessageChunk:
    """The merged message of a stream, as the model's ``_stream`` makes it.

    Each chunk first goes through the core's accumulator (which normalises tool-call
    fragments in place, as the core's stream does before yielding), then the converter; the
    closing chunk is made from the core's aggregate.
    """
    accumulator = StreamAccumulator()
    converter = StreamConverter()
    messages = []
    for chunk in wire_chunks:
        accumulator.add(chunk)
        generation = converter.convert(chunk)
        if generation is not None:
            messages.append(generation.message)
    messages.append(converter.closing(accumulator.result(), request_id="req-s").message)
    assert all(isinstance(message, AIMessageChunk) for message in messages)
    return _merge(messages)  # type: ignore[arg-type]


def _usage_chunk(usage: dict[str, Any] = USAGE) -> dict[str, Any]:
    return {"id": "chatcmpl-s", "model": "qwen-plus", "choices": [], "usage": usage}


def test_stream_keeps_reasoning_text_and_usage_once() -> None:
    wire = [
        _chunk({"role": "assistant", "content": "", "reasoning_content": "Think"}),
        _chunk({"reasoning_content": "ing."}),
        _chunk({"content": "Hello"}),
        _chunk({"content": " world"}, finish="stop"),
        _usage_chunk(),
    ]
    full = _stream(wire)
    assert full.content == "Hello world"
    assert full.additional_kwargs["reasoning_content"] == "Thinking."
    assert [b["type"] for b in full.content_blocks] == ["reasoning", "text"]
    assert full.usage_metadata == usage_to_metadata(USAGE)
    assert full.response_metadata["model_name"] == "qwen-plus"
    assert full.response_metadata["request_id"] == "req-s"
    assert full.response_metadata["model_provider"] == PROVIDER
    assert full.response_metadata["finish_reason"] == "stop"
    assert full.chunk_position == "last"


def test_stream_without_usage() -> None:
    full = _stream([_chunk({"content": "hi"}, finish="stop")])
    assert full.usage_metadata is None


def _call(index: Any, call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    fragment: dict[str, Any] = {"id": call_id, "type": "function"}
    fragment["function"] = {"name": name, "arguments": arguments}
    if index is not None:
        fragment["index"] = index
    return fragment


SPLIT_TOOL_CALL_STREAMS = {
    # The service: the first fragment has id and name, later ones "id": "" (api-docs 003).
    "empty-string-id": [
        [_call(0, "call_a", "weather", "")],
        [_call(0, "", None, '{"city":')],
        [_call(0, "", None, ' "Paris"}')],
    ],
    # Already normalised (id None, name None): the core leaves it as it is.
    "normalised": [
        [_call(0, "call_a", "weather", "")],
        [_call(0, None, None, '{"city": ')],
        [_call(0, None, None, '"Paris"}')],
    ],
    # Name repeated on every fragment (would be concatenated by a naive merge).
    "repeated-name-and-id": [
        [_call(0, "call_a", "weather", '{"city"')],
        [_call(0, "call_a", "weather", ': "Paris"}')],
    ],
    # No index at all.
    "no-index": [
        [_call(None, "call_a", "weather", "")],
        [_call(None, "", None, '{"city": "Paris"}')],
    ],
}


@pytest.mark.parametrize("fragments", SPLIT_TOOL_CALL_STREAMS.values(), ids=SPLIT_TOOL_CALL_STREAMS)
def test_split_tool_call_fragments_merge_into_one_call(fragments: list[Any]) -> None:
    wire = [_chunk({"tool_calls": calls}) for calls in fragments]
    full = _stream([*wire, _chunk({}, finish="tool_calls")])
    assert full.tool_calls == [
        {"name": "weather", "args": {"city": "Paris"}, "id": "call_a", "type": "tool_call"}
    ]
    assert full.invalid_tool_calls == []


PARALLEL_TOOL_CALL_STREAMS = {
    "two-calls-in-one-chunk": [
        [_call(0, "call_a", "weather", '{"city": "Paris"}'), _call(1, "call_b", "time", "{}")],
    ],
    "interleaved-by-index": [
        [_call(0, "call_a", "weather", "")],
        [_call(1, "call_b", "time", "")],
        [_call(0, "", None, '{"city": "Paris"}')],
        [_call(1, "", None, "{}")],
    ],
    "same-index-new-id": [
        [_call(0, "call_a", "weather", '{"city": "Paris"}')],
        [_call(0, "call_b", "time", "")],
        [_call(0, "", None, "{}")],
    ],
    "no-index-new-id": [
        [_call(None, "call_a", "weather", '{"city": ')],
        [_call(None, "", None, '"Paris"}')],
        [_call(None, "call_b", "time", "{}")],
    ],
}


@pytest.mark.parametrize(
    "fragments", PARALLEL_TOOL_CALL_STREAMS.values(), ids=PARALLEL_TOOL_CALL_STREAMS
)
def test_parallel_tool_calls_stay_apart(fragments: list[Any]) -> None:
    wire = [_chunk({"tool_calls": calls}) for calls in fragments]
    full = _stream([*wire, _chunk({}, finish="tool_calls")])
    assert [(c["id"], c["name"], c["args"]) for c in full.tool_calls] == [
        ("call_a", "weather", {"city": "Paris"}),
        ("call_b", "time", {}),
    ]


def test_tool_call_chunks_next_to_reasoning() -> None:
    wire = [
        _chunk({"reasoning_content": "Need the weather."}),
        _chunk({"tool_calls": [_call(0, "call_a", "weather", '{"city": "Paris"}')]}),
    ]
    full = _stream(wire)
    assert full.additional_kwargs["reasoning_content"] == "Need the weather."
    assert [b["type"] for b in full.content_blocks] == ["reasoning", "tool_call"]


def _tool_call_chunks(fragments: list[dict[str, Any]]) -> list[Any]:
    accumulator, converter, chunks = StreamAccumulator(), StreamConverter(), []
    for fragment in fragments:
        wire = _chunk({"tool_calls": [fragment]})
        accumulator.add(wire)
        generation = converter.convert(wire)
        assert generation is not None
        assert isinstance(generation.message, AIMessageChunk)
        chunks += generation.message.tool_call_chunks
    return chunks


def test_empty_function_object_and_null_arguments() -> None:
    first, second = _tool_call_chunks(
        [
            {"index": 0, "id": "c", "function": {"name": "f", "arguments": None}},
            {"index": 0, "id": "", "function": {}},
        ]
    )
    assert first == {"name": "f", "args": "", "id": "c", "index": 0, "type": "tool_call_chunk"}
    assert second == {"name": None, "args": "", "id": None, "index": 0, "type": "tool_call_chunk"}


def test_a_repeated_name_is_sent_once_per_call() -> None:
    chunks = _tool_call_chunks(
        [
            {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}},
            {"index": 0, "id": "a", "function": {"name": "f", "arguments": "}"}},
            {"index": 1, "id": "b", "function": {"name": "f", "arguments": "{}"}},
        ]
    )
    assert [(c["index"], c["name"], c["id"]) for c in chunks] == [
        (0, "f", "a"),
        (0, None, "a"),
        (1, "f", "b"),
    ]


def test_streamed_calls_without_an_id_get_one_on_the_closing_chunk() -> None:
    wire = [
        _chunk({"tool_calls": [_call(0, None, "weather", '{"city": ')]}),
        _chunk({"tool_calls": [_call(0, "", None, '"Paris"}')]}),
        _chunk({"tool_calls": [_call(1, "call_b", "time", "{}")]}, finish="tool_calls"),
    ]
    full = _stream(wire)
    [weather, time] = full.tool_calls
    assert (weather["name"], weather["args"]) == ("weather", {"city": "Paris"})
    assert weather["id"] is not None and weather["id"].startswith("call_")
    assert (time["id"], time["name"]) == ("call_b", "time")
    assert full.invalid_tool_calls == []


def test_only_choice_zero_is_streamed() -> None:
    converter = StreamConverter()
    assert converter.convert(_chunk({"content": "other"}, index=1)) is None
    assert converter.convert({"choices": [], "usage": USAGE}) is None
    assert converter.convert(_chunk({"role": "assistant", "content": ""})) is None
    two = [_chunk({"content": "zero"}), _chunk({"content": "one"}, index=1)]
    assert _stream(
        [*two, _chunk({}, finish="stop"), _chunk({}, finish="stop", index=1)]
    ).content == ("zero")


# --------------------------------------------------------------------------- profiles


def test_profile_to_langchain() -> None:
    plus = profile_to_langchain(get_profile("qwen-plus"))
    assert plus["max_input_tokens"] == get_profile("qwen-plus").context_window
    assert plus["max_output_tokens"] == get_profile("qwen-plus").max_output
    assert plus["tool_calling"] is True
    assert plus["structured_output"] is True
    assert plus["reasoning_output"] is True
    assert plus["image_inputs"] is False
    assert profile_to_langchain(get_profile("qwen-vl-max"))["image_inputs"] is True
    assert profile_to_langchain(get_profile("qwen2.5-7b-instruct"))["reasoning_output"] is False
    assert profile_to_langchain(get_profile("qwen-math-plus"))["tool_calling"] is False


def test_logprobs_in_response_metadata() -> None:
    logprobs = {"content": [{"token": "Hi", "logprob": -0.1, "top_logprobs": []}]}
    completion = _completion()
    completion["choices"][1]["logprobs"] = logprobs
    result = completion_to_result(completion)
    assert result.generations[1].message.response_metadata["logprobs"] == logprobs
    assert "logprobs" not in result.generations[0].message.response_metadata
    accumulator = StreamAccumulator()
    accumulator.add({"choices": [{"index": 0, "delta": {"content": "Hi"}, "logprobs": logprobs}]})
    closing = StreamConverter().closing(accumulator.result())
    assert closing.message.response_metadata["logprobs"] == logprobs
