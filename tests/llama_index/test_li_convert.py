"""Pure conversions: LlamaIndex messages -> wire dicts, wire dicts -> LlamaIndex responses."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from li_support import chunk, completion, fragment, tool_call, usage_chunk
from llama_index.core.base.llms.types import (
    AudioBlock,
    CachePoint,
    ChatMessage,
    CitableBlock,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    VideoBlock,
)

from llama_index_opensearch_llm._convert import (
    ChatStreamState,
    chat_response,
    completion_response,
    keep_first_tool_call,
    to_wire_messages,
    tool_selections,
)
from opensearch_llm import RequestValidationError, StreamAccumulator

# --------------------------------------------------------------------------- messages -> wire


def test_roles_and_text_map_to_wire_messages() -> None:
    wire = to_wire_messages(
        [
            ChatMessage(role="system", content="Be brief."),
            ChatMessage(role="user", content="Hi"),
            ChatMessage(role="assistant", content="Hello"),
            ChatMessage(role="chatbot", content="Also me"),
        ]
    )
    assert wire == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "assistant", "content": "Also me"},
    ]


def test_leading_system_messages_are_merged_because_system_must_come_first() -> None:
    wire = to_wire_messages(
        [
            ChatMessage(role="system", content="One."),
            ChatMessage(role="developer", content="Two."),
            ChatMessage(role="user", content="Hi"),
        ]
    )
    assert wire == [
        {"role": "system", "content": "One.\n\nTwo."},
        {"role": "user", "content": "Hi"},
    ]


def test_later_system_messages_are_merged_into_the_first() -> None:
    """Memories and agents add system messages later; the service takes one, first."""
    wire = to_wire_messages(
        [
            ChatMessage(role="system", content="One."),
            ChatMessage(role="user", content="Hi"),
            ChatMessage(role="assistant", content="Hello"),
            ChatMessage(role="developer", content="Two."),
            ChatMessage(role="user", content="And?"),
        ]
    )
    assert wire == [
        {"role": "system", "content": "One.\n\nTwo."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "And?"},
    ]
    late = to_wire_messages(
        [ChatMessage(role="user", content="Hi"), ChatMessage(role="system", content="Rule.")]
    )
    assert late == [{"role": "system", "content": "Rule."}, {"role": "user", "content": "Hi"}]


def test_the_callers_messages_are_not_modified() -> None:
    messages = [ChatMessage(role="system", content="A"), ChatMessage(role="system", content="B")]
    before = [m.model_dump() for m in messages]
    to_wire_messages(messages)
    assert [m.model_dump() for m in messages] == before


def test_reasoning_is_never_sent_back() -> None:
    message = ChatMessage(
        role="assistant",
        blocks=[ThinkingBlock(content="secret reasoning"), TextBlock(text="The answer")],
        additional_kwargs={"reasoning_content": "secret reasoning"},
    )
    assert to_wire_messages([message]) == [{"role": "assistant", "content": "The answer"}]


def test_tool_call_blocks_become_tool_calls_with_arguments_kept_verbatim() -> None:
    message = ChatMessage(
        role="assistant",
        blocks=[
            ThinkingBlock(content="think"),
            ToolCallBlock(
                tool_call_id="call_1", tool_name="weather", tool_kwargs='{"city":  "New York"}'
            ),
            ToolCallBlock(tool_call_id="call_2", tool_name="time", tool_kwargs={"tz": "上海"}),
        ],
    )
    assert to_wire_messages([message]) == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":  "New York"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "time", "arguments": '{"tz": "上海"}'},
                },
            ],
        }
    ]


def test_legacy_tool_calls_in_additional_kwargs_are_sent() -> None:
    message = ChatMessage(
        role="assistant",
        content="",
        additional_kwargs={"tool_calls": [tool_call("call_9", "add", "")]},
    )
    wire = to_wire_messages([message])[0]
    assert wire["content"] == ""
    assert wire["tool_calls"] == [
        {"id": "call_9", "type": "function", "function": {"name": "add", "arguments": "{}"}}
    ]


def test_tool_results_carry_their_call_id_and_name() -> None:
    message = ChatMessage(
        role=MessageRole.TOOL,
        blocks=[TextBlock(text="22 degrees")],
        additional_kwargs={"tool_call_id": "call_1", "name": "weather"},
    )
    assert to_wire_messages([message]) == [
        {"role": "tool", "content": "22 degrees", "tool_call_id": "call_1", "name": "weather"}
    ]


def test_user_images_become_content_parts() -> None:
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    )
    message = ChatMessage(
        role="user",
        blocks=[
            TextBlock(text="What is this?"),
            ImageBlock(url="https://example.com/cat.png", detail="high"),
            ImageBlock(image=png),
            CachePoint(cache_control={"type": "ephemeral"}),
        ],
    )
    content = to_wire_messages([message])[0]["content"]
    assert content[0] == {"type": "text", "text": "What is this?"}
    assert content[1] == {
        "type": "image_url",
        "image_url": {"url": "https://example.com/cat.png", "detail": "high"},
    }
    assert content[2]["image_url"]["url"].startswith("data:image/png;base64,iVBOR")
    assert len(content) == 3


def test_audio_video_and_citable_blocks() -> None:
    message = ChatMessage(
        role="user",
        blocks=[
            AudioBlock(url="https://example.com/a.mp3", format="mp3"),
            VideoBlock(url="https://example.com/v.mp4"),
            CitableBlock(title="t", source="s", content=[TextBlock(text="cited")]),
        ],
    )
    assert to_wire_messages([message])[0]["content"] == [
        {
            "type": "input_audio",
            "input_audio": {"data": "https://example.com/a.mp3", "format": "mp3"},
        },
        {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}},
        {"type": "text", "text": "cited"},
    ]


def test_unsupported_blocks_raise_a_validation_error_naming_the_block() -> None:
    message = ChatMessage(role="user", blocks=[DocumentBlock(data=b"%PDF-1.4", title="x.pdf")])
    with pytest.raises(RequestValidationError, match="DocumentBlock"):
        to_wire_messages([message])


def test_media_in_a_text_only_role_is_rejected() -> None:
    message = ChatMessage(role="system", blocks=[ImageBlock(url="https://example.com/x.png")])
    with pytest.raises(RequestValidationError, match="system message"):
        to_wire_messages([message])


# --------------------------------------------------------------------------- wire -> responses


def _usage_kwargs(usage: dict[str, Any] | None) -> dict[str, Any]:
    fields = chat_response(completion(usage=usage)).additional_kwargs
    return {k: v for k, v in fields.items() if k.endswith("_tokens")}


def test_usage_fields_include_reasoning_and_cached_tokens_when_present() -> None:
    usage = {
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "total_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 1},
    }
    assert _usage_kwargs(usage) == {
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "total_tokens": 7,
        "cached_tokens": 2,
        "reasoning_tokens": 1,
    }
    nulls = {**usage, "prompt_tokens_details": None, "completion_tokens_details": None}
    assert _usage_kwargs(nulls) == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    # A total the service left out is the sum, as on the LangChain side.
    assert _usage_kwargs({"prompt_tokens": 3, "completion_tokens": 4})["total_tokens"] == 7
    assert _usage_kwargs({}) == {}


def test_a_completion_becomes_thinking_text_and_metadata() -> None:
    body = completion(
        "Answer",
        reasoning="Because.",
        usage={
            "prompt_tokens": 3,
            "completion_tokens": 4,
            "total_tokens": 7,
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    )
    body["request_id"] = "req-1"
    response = chat_response(body)
    thinking, text = response.message.blocks
    assert isinstance(thinking, ThinkingBlock)
    assert (thinking.content, thinking.num_tokens) == ("Because.", 2)
    assert isinstance(text, TextBlock)
    assert response.message.content == "Answer"
    assert response.raw is body
    assert response.raw["usage"]["total_tokens"] == 7
    assert response.additional_kwargs == {
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "total_tokens": 7,
        "reasoning_tokens": 2,
        "finish_reason": "stop",
        "request_id": "req-1",
        "model": "qwen-plus",
    }


def test_tool_calls_of_a_completion_become_blocks_and_legacy_kwargs() -> None:
    calls = [
        tool_call("call_1", "weather", '{"city": "New York"}'),
        tool_call("call_2", "time", "{}"),
    ]
    response = chat_response(completion(None, tool_calls=calls, finish_reason="tool_calls"))
    assert response.message.content is None
    blocks = response.message.blocks
    assert [b.tool_name for b in blocks if isinstance(b, ToolCallBlock)] == ["weather", "time"]
    assert response.message.additional_kwargs["tool_calls"] == calls
    selections = tool_selections(response.message)
    assert [(s.tool_id, s.tool_name, s.tool_kwargs) for s in selections] == [
        ("call_1", "weather", {"city": "New York"}),
        ("call_2", "time", {}),
    ]


def test_a_tool_call_without_id_gets_one_so_the_result_can_refer_to_it() -> None:
    response = chat_response(
        completion(
            None, tool_calls=[{"type": "function", "function": {"name": "f", "arguments": "{}"}}]
        )
    )
    [selection] = tool_selections(response.message)
    assert selection.tool_id.startswith("call_")
    wire = to_wire_messages([response.message])[0]
    assert wire["tool_calls"][0]["id"] == selection.tool_id


def test_an_empty_answer_is_an_empty_string_not_none() -> None:
    response = chat_response(completion(""))
    assert response.message.content == ""


def test_completion_response_keeps_text_usage_and_reasoning() -> None:
    response = completion_response(chat_response(completion("Hi", reasoning="R")))
    assert response.text == "Hi"
    assert response.additional_kwargs["reasoning_content"] == "R"
    assert response.additional_kwargs["total_tokens"] == 12
    assert response.raw["usage"]["total_tokens"] == 12


def test_legacy_tool_selections_from_additional_kwargs() -> None:
    message = ChatMessage(
        role="assistant",
        content="",
        additional_kwargs={"tool_calls": [tool_call("c1", "f", '{"a": 1}')]},
    )
    [selection] = tool_selections(message)
    assert (selection.tool_id, selection.tool_name, selection.tool_kwargs) == ("c1", "f", {"a": 1})
    partial = ChatMessage(
        role="assistant",
        content="",
        additional_kwargs={"tool_calls": [tool_call("c1", "f", '{"a": 1')]},
    )
    [selection] = tool_selections(partial, streaming=True)
    assert selection.tool_kwargs == {"a": 1}


@pytest.mark.parametrize("arguments", ['{"a":1}}', '{"a": 1, "b": tru', "[1, 2]", '{"a": '])
def test_finished_tool_calls_with_broken_arguments_raise_naming_the_call(arguments: str) -> None:
    """Not repaired into something the model did not say ({} or a part of it)."""
    response = chat_response(
        completion(None, tool_calls=[tool_call("call_9", "search", arguments)])
    )
    with pytest.raises(ValueError, match="search") as caught:
        tool_selections(response.message)
    assert "call_9" in str(caught.value) and arguments in str(caught.value)


def test_arguments_still_streaming_are_parsed_as_far_as_they_go() -> None:
    response = chat_response(
        completion(None, tool_calls=[tool_call("c", "f", '{"a": 1, "b": tru')])
    )
    [selection] = tool_selections(response.message, streaming=True)
    assert selection.tool_kwargs == {"a": 1}


def test_keep_first_tool_call_drops_the_rest_in_blocks_and_kwargs() -> None:
    response = chat_response(
        completion(None, tool_calls=[tool_call("a", "f", "{}"), tool_call("b", "g", "{}")])
    )
    keep_first_tool_call(response.message)
    assert [s.tool_id for s in tool_selections(response.message)] == ["a"]
    assert [c["id"] for c in response.message.additional_kwargs["tool_calls"]] == ["a"]


# --------------------------------------------------------------------------- streaming


def run(chunks: list[dict[str, Any]]) -> list[Any]:
    """The responses of a stream, as the LLM makes them: each chunk with the core's aggregate."""
    accumulator, state, responses = StreamAccumulator(), ChatStreamState(), []
    for wire in chunks:
        accumulator.add(wire)
        responses.append(state.add(wire, lambda: accumulator.result("req-1")))
    return responses


def test_every_chunk_yields_a_response_and_the_first_content_is_kept() -> None:
    responses = run(
        [
            chunk({"role": "assistant", "content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({"content": ""}, finish="stop"),
            usage_chunk(),
        ]
    )
    assert [r.delta for r in responses] == ["Hel", "lo", "", ""]
    assert [r.message.content for r in responses] == ["Hel", "Hello", "Hello", "Hello"]
    last = responses[-1]
    assert last.raw["usage"]["total_tokens"] == 12
    assert last.additional_kwargs == {
        "prompt_tokens": 5,
        "completion_tokens": 7,
        "total_tokens": 12,
        "finish_reason": "stop",
        "request_id": "req-1",
        "model": "qwen-plus",
    }


def test_reasoning_streams_as_thinking_delta_and_a_thinking_block() -> None:
    responses = run(
        [
            chunk({"role": "assistant", "reasoning_content": "Let me"}),
            chunk({"reasoning_content": " think."}),
            chunk({"content": "Done."}, finish="stop"),
            usage_chunk(completion_tokens_details={"reasoning_tokens": 3}),
        ]
    )
    assert [r.additional_kwargs.get("thinking_delta") for r in responses] == [
        "Let me",
        " think.",
        None,
        None,
    ]
    assert [r.delta for r in responses] == ["", "", "Done.", ""]
    first = responses[0].message
    assert first.content == ""
    final = responses[-1].message
    thinking = final.blocks[0]
    assert isinstance(thinking, ThinkingBlock)
    assert (thinking.content, thinking.num_tokens) == ("Let me think.", 3)
    assert final.content == "Done."
    assert responses[-1].additional_kwargs["reasoning_tokens"] == 3


def test_parallel_tool_calls_in_one_chunk_are_both_kept() -> None:
    responses = run(
        [
            chunk(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        fragment(0, "call_a", "weather", '{"city": '),
                        fragment(1, "call_b", "time", '{"tz": "UTC"}'),
                    ],
                }
            ),
            chunk({"tool_calls": [fragment(0, None, None, '"New York"}')]}, finish="tool_calls"),
        ]
    )
    selections = tool_selections(responses[-1].message)
    assert [(s.tool_id, s.tool_name, s.tool_kwargs) for s in selections] == [
        ("call_a", "weather", {"city": "New York"}),
        ("call_b", "time", {"tz": "UTC"}),
    ]
    partial = tool_selections(responses[0].message, streaming=True)
    assert [(s.tool_name, s.tool_kwargs) for s in partial] == [
        ("weather", {"city": None}),
        ("time", {"tz": "UTC"}),
    ]


def test_streamed_argument_fragments_are_concatenated_verbatim() -> None:
    pieces = ['{"query": "', "New ", " York ", ' city",', ' "n": 2}']
    responses = run(
        [chunk({"tool_calls": [fragment(0, "call_a", "search", "")]})]
        + [chunk({"tool_calls": [fragment(0, "", None, p)]}) for p in pieces]
    )
    [block] = [b for b in responses[-1].message.blocks if isinstance(b, ToolCallBlock)]
    assert block.tool_kwargs == "".join(pieces)
    [selection] = tool_selections(responses[-1].message)
    assert selection.tool_kwargs == {"query": "New  York  city", "n": 2}


def test_fragments_with_empty_function_or_null_fields_are_tolerated() -> None:
    responses = run(
        [
            chunk({"tool_calls": [fragment(0, "call_a", "f", None)]}),
            chunk({"tool_calls": [{"index": 0, "id": "", "function": {}}]}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": None,
                            "function": {"name": None, "arguments": '{"x": 1}'},
                        }
                    ]
                }
            ),
        ]
    )
    [selection] = tool_selections(responses[-1].message)
    assert (selection.tool_id, selection.tool_name, selection.tool_kwargs) == (
        "call_a",
        "f",
        {"x": 1},
    )


def test_earlier_streamed_responses_are_not_changed_by_later_chunks() -> None:
    responses = run(
        [
            chunk({"tool_calls": [fragment(0, "call_a", "f", '{"x"')]}),
            chunk({"tool_calls": [fragment(0, "", None, ": 1}")]}),
        ]
    )
    assert responses[0].message.additional_kwargs["tool_calls"][0]["function"]["arguments"] == (
        '{"x"'
    )


def test_with_several_choices_only_choice_zero_is_streamed() -> None:
    """n > 1: chunks of choice 1 add nothing to the message (they were appended before)."""

    def of(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        wire = chunk(delta, finish=finish)
        wire["choices"][0]["index"] = index
        return wire

    responses = run(
        [
            of(0, {"role": "assistant", "content": "Zero"}),
            of(1, {"role": "assistant", "content": "One"}),
            of(1, {"content": " more"}, finish="stop"),
            of(0, {"content": "."}, finish="stop"),
            usage_chunk(),
        ]
    )
    assert [r.delta for r in responses] == ["Zero", "", "", ".", ""]
    assert [r.message.content for r in responses] == ["Zero", "Zero", "Zero", "Zero.", "Zero."]
    assert responses[1].additional_kwargs["finish_reason"] is None


def test_a_streamed_call_without_an_id_keeps_one_id_for_the_whole_stream() -> None:
    responses = run(
        [
            chunk({"tool_calls": [fragment(0, None, "f", '{"x"')]}),
            chunk({"tool_calls": [fragment(0, "", None, ": 1}")]}, finish="tool_calls"),
        ]
    )
    ids = [tool_selections(r.message, streaming=True)[0].tool_id for r in responses]
    assert ids[0].startswith("call_") and ids[0] == ids[1]
