"""ChatOpenSearchLLM against the emulator: calls, messages, tools, reasoning, usage; sync and async."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import tool_call
from langchain_core.tools import tool

from langchain_opensearch_llm import ChatOpenSearchLLM
from opensearch_llm.emulator import Emulator
from tests.langchain._helpers import MODES, batch, invoke, merge, stream
from tests.langchain.conftest import EMULATOR_BASE_URL, GATEWAY_BASE_URL
from tests.unit.pools import count_pools

LLMFactory = Callable[..., ChatOpenSearchLLM]


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


@tool
def get_time(city: str) -> str:
    """The local time in a city."""
    return "12:00"


def _body(emulator: Emulator, position: int = -1) -> dict[str, Any]:
    body = emulator.requests[position].json
    assert isinstance(body, dict)
    return body


# --------------------------------------------------------------------------- calls


@MODES
async def test_invoke(make_llm: LLMFactory, emulator: Emulator, mode: str) -> None:
    reply = await invoke(make_llm(), "Hello there", mode)
    assert isinstance(reply, AIMessage)
    assert reply.content == "You said: Hello there"
    metadata = reply.response_metadata
    assert metadata["model_name"] == "qwen-plus"
    assert metadata["model_provider"] == "opensearch_llm"
    assert metadata["finish_reason"] == "stop"
    assert metadata["id"].startswith("chatcmpl-")
    assert metadata["id"] == "chatcmpl-" + metadata["request_id"]
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["total_tokens"] == 6
    assert _body(emulator) == {
        "model": "qwen-plus",
        "messages": [{"role": "user", "content": "Hello there"}],
    }


@MODES
async def test_stream(make_llm: LLMFactory, emulator: Emulator, mode: str) -> None:
    chunks = await stream(make_llm(), "Hello there", mode)
    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    assert [chunk.content for chunk in chunks[:-1]] == ["You", " said:", " Hello", " there"]
    full = merge(chunks)
    assert full.content == "You said: Hello there"
    assert full.chunk_position == "last"
    assert full.response_metadata["finish_reason"] == "stop"
    assert full.response_metadata["model_name"] == "qwen-plus"
    assert full.response_metadata["request_id"]
    body = _body(emulator)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


@MODES
async def test_streamed_usage_is_on_exactly_one_chunk(make_llm: LLMFactory, mode: str) -> None:
    """ChatOpenAI's fault with this service: no usage unless stream_usage=True is set."""
    chunks = await stream(make_llm(), "count my tokens", mode)
    with_usage = [chunk for chunk in chunks if chunk.usage_metadata]
    assert len(with_usage) == 1
    assert merge(chunks).usage_metadata == {
        "input_tokens": 3,
        "output_tokens": 5,
        "total_tokens": 8,
        "input_token_details": {"cache_read": 0},
    }


@MODES
async def test_stream_usage_can_be_switched_off(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    chunks = await stream(make_llm(stream_usage=False), "hi", mode)
    assert not any(chunk.usage_metadata for chunk in chunks)
    assert _body(emulator)["stream_options"] == {"include_usage": False}
    chunks = await stream(make_llm(), "hi", mode, stream_usage=False)
    assert not any(chunk.usage_metadata for chunk in chunks)


@MODES
async def test_streaming_true_streams_invoke(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    reply = await invoke(make_llm(streaming=True), "Hello", mode)
    assert reply.content == "You said: Hello"
    assert reply.usage_metadata is not None
    assert _body(emulator)["stream"] is True


@MODES
async def test_disable_streaming(make_llm: LLMFactory, emulator: Emulator, mode: str) -> None:
    chunks = await stream(make_llm(disable_streaming=True), "Hello", mode)
    assert len(chunks) == 1
    assert chunks[0].content == "You said: Hello"
    assert "stream" not in _body(emulator)
    with_tools = make_llm(disable_streaming="tool_calling").bind_tools([get_weather])
    await stream(with_tools, "Hello", mode)
    assert "stream" not in _body(emulator)
    await stream(make_llm(disable_streaming="tool_calling"), "Hello", mode)
    assert _body(emulator)["stream"] is True


@MODES
async def test_batch(make_llm: LLMFactory, mode: str) -> None:
    replies = await batch(make_llm(), ["one", "two", "three"], mode)
    assert [reply.content for reply in replies] == [
        "You said: one",
        "You said: two",
        "You said: three",
    ]


async def test_astream_events(make_llm: LLMFactory) -> None:
    tokens = [
        event["data"]["chunk"].content
        async for event in make_llm().astream_events("Hello there", version="v2")
        if event["event"] == "on_chat_model_stream"
    ]
    assert "".join(tokens) == "You said: Hello there"


@MODES
async def test_n_choices_become_generations(make_llm: LLMFactory, mode: str) -> None:
    llm = make_llm(n=2)
    messages = [[HumanMessage("pick")]]
    result = llm.generate(messages) if mode == "sync" else await llm.agenerate(messages)
    texts = [generation.text for generation in result.generations[0]]
    assert texts == ["You said: pick", "You said: pick (choice 2)"]
    first, second = (generation.message for generation in result.generations[0])
    assert isinstance(first, AIMessage)
    assert isinstance(second, AIMessage)
    assert first.usage_metadata is not None
    assert second.usage_metadata is None  # the response's usage is counted once
    # With n > 1 a stream would merge the choices, so stream() answers with one whole message.
    chunks = await stream(llm, "pick", mode)
    assert [chunk.content for chunk in chunks] == ["You said: pick"]


@MODES
async def test_n_choices_with_reasoning(make_llm: LLMFactory, mode: str) -> None:
    llm = make_llm(model="qwq-plus", n=2)
    messages = [[HumanMessage("why")]]
    result = llm.generate(messages) if mode == "sync" else await llm.agenerate(messages)
    for generation in result.generations[0]:
        message = generation.message
        assert message.additional_kwargs["reasoning_content"] == "Let me think about: why"
        assert message.content_blocks[0] == {
            "type": "reasoning",
            "reasoning": "Let me think about: why",
        }


# --------------------------------------------------------------------------- parameters


@MODES
async def test_only_set_parameters_are_sent(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    llm = make_llm(
        temperature=0.3,
        top_p=0.9,
        max_tokens=50,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        seed=7,
        stop_sequences=["END"],
        enable_search=True,
        top_k=20,
        repetition_penalty=1.1,
        thinking_budget=100,
        enable_thinking=False,
        user="u-1",
        model_kwargs={"response_format": {"type": "text"}, "vendor_flag": True},
        extra_body={"trace": "t1"},
    )
    await invoke(llm, "hi", mode)
    assert _body(emulator) == {
        "model": "qwen-plus",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 50,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "seed": 7,
        "stop": ["END"],
        "enable_search": True,
        "top_k": 20,
        "repetition_penalty": 1.1,
        "thinking_budget": 100,
        "enable_thinking": False,
        "user": "u-1",
        "response_format": {"type": "text"},
        "vendor_flag": True,
        "trace": "t1",
    }


@MODES
async def test_per_call_overrides(make_llm: LLMFactory, emulator: Emulator, mode: str) -> None:
    llm = make_llm(temperature=0.3, extra_body={"trace": "t1"})
    reply = await invoke(
        llm,
        "hi",
        mode,
        model="qwen-max",
        temperature=1.2,
        stop=["x"],
        max_completion_tokens=30,
        extra_body={"trace": "t2"},
        custom_field=1,
    )
    assert reply.response_metadata["model_name"] == "qwen-max"
    body = _body(emulator)
    assert body["model"] == "qwen-max"
    assert body["temperature"] == 1.2
    assert body["stop"] == ["x"]
    assert body["max_completion_tokens"] == 30
    assert (body["trace"], body["custom_field"]) == ("t2", 1)
    assert llm.temperature == 0.3  # the model itself is unchanged


@MODES
async def test_model_and_its_alias_model_name_per_call(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    """Both names are taken out of the call (``model`` wins): neither reaches the body."""
    await invoke(make_llm(), "hi", mode, model="qwen-max", model_name="qwen-turbo")
    assert _body(emulator)["model"] == "qwen-max"
    assert "model_name" not in _body(emulator)
    await invoke(make_llm(), "hi", mode, model_name="qwen-turbo")
    assert _body(emulator)["model"] == "qwen-turbo"
    assert "model_name" not in _body(emulator)


@MODES
async def test_extra_body_merges_over_model_kwargs_and_fields(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    llm = make_llm(model_kwargs={"a": 1, "b": 1}, extra_body={"b": 2, "c": 2}, top_k=5)
    await invoke(llm, "hi", mode, extra_body={"c": 3}, top_k=None, d=4)
    body = _body(emulator)
    assert (body["a"], body["b"], body["c"], body["d"]) == (1, 2, 3, 4)
    assert "top_k" not in body  # a per-call None unsets the field


@MODES
async def test_stop_at_call_time_overrides_the_field(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    reply = await invoke(make_llm(stop=["never"]), "one two three", mode, stop=["two"])
    assert _body(emulator)["stop"] == ["two"]
    assert reply.content == "You said: one "


@MODES
async def test_extra_headers_per_call(make_llm: LLMFactory, emulator: Emulator, mode: str) -> None:
    await invoke(
        make_llm(default_headers={"X-App": "demo"}), "hi", mode, extra_headers={"X-Trace": "1"}
    )
    headers = emulator.requests[-1].headers
    assert headers["x-app"] == "demo"
    assert headers["x-trace"] == "1"


@MODES
async def test_connection_settings_cannot_change_per_call(make_llm: LLMFactory, mode: str) -> None:
    with pytest.raises(ValueError, match="cannot change per call"):
        await invoke(make_llm(), "hi", mode, base_url="http://elsewhere/v1")


@MODES
async def test_gateway_base_url(make_llm: LLMFactory, emulator: Emulator, mode: str) -> None:
    llm = make_llm(base_url=GATEWAY_BASE_URL)
    reply = await invoke(llm, "via gateway", mode)
    assert reply.content == "You said: via gateway"
    assert emulator.requests[-1].path == "/api/v1/chat/completions"
    chunks = await stream(llm, "via gateway", mode)
    assert merge(chunks).content == "You said: via gateway"


# --------------------------------------------------------------------------- messages


@MODES
async def test_conversation_roles_and_names(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    history = [
        SystemMessage("Be brief."),
        HumanMessage("Hi, I am Ann", name="ann"),
        AIMessage("Hello Ann", name="bot"),
        SystemMessage("Answer in English."),
        HumanMessage("What did I say?"),
    ]
    reply = await invoke(make_llm(), history, mode)
    assert reply.content == "You said: What did I say?"
    assert _body(emulator)["messages"] == [
        {"role": "system", "content": "Be brief.\n\nAnswer in English."},
        {"role": "user", "content": "Hi, I am Ann", "name": "ann"},
        {"role": "assistant", "content": "Hello Ann", "name": "bot"},
        {"role": "user", "content": "What did I say?"},
    ]


@MODES
async def test_reasoning_is_not_sent_back(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    first = await invoke(make_llm(model="qwq-plus"), "Is 7 prime?", mode)
    assert first.additional_kwargs["reasoning_content"]
    v1 = await invoke(make_llm(model="qwq-plus", output_version="v1"), "Is 7 prime?", mode)
    assert v1.content[0]["type"] == "reasoning"
    await invoke(make_llm(), [HumanMessage("Is 7 prime?"), first, v1, HumanMessage("Sure?")], mode)
    sent = json.dumps(_body(emulator)["messages"])
    assert "reasoning" not in sent
    assert "Let me think" not in sent
    assert _body(emulator)["messages"][1] == {"role": "assistant", "content": first.content}


@MODES
async def test_images_for_vision_models(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    llm = make_llm(model="qwen-vl-max")
    assert llm.profile is not None
    assert llm.profile["image_inputs"] is True
    message = HumanMessage(
        [
            {"type": "text", "text": "What is in these pictures?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            {"type": "image", "url": "https://example.com/dog.png"},
            {"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"},
        ]
    )
    reply = await invoke(llm, [message], mode)
    assert reply.content.startswith("You said: What is in these pictures?")
    assert _body(emulator)["messages"][0]["content"][1:] == [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/dog.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]


# --------------------------------------------------------------------------- tools


@MODES
@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("any", "required"),
        ("required", "required"),
        (True, "required"),
        ("get_time", {"type": "function", "function": {"name": "get_time"}}),
        (
            {"type": "function", "function": {"name": "get_time"}},
            {"type": "function", "function": {"name": "get_time"}},
        ),
    ],
)
async def test_tool_choice(
    make_llm: LLMFactory, emulator: Emulator, mode: str, choice: Any, wire: Any
) -> None:
    llm = make_llm().bind_tools([get_weather, get_time], tool_choice=choice)
    reply = await invoke(llm, "Tell me something", mode)
    assert _body(emulator)["tool_choice"] == wire
    called = [call["name"] for call in reply.tool_calls]
    expected = {"auto": [], "none": [], "required": ["get_weather"]}
    assert called == (expected[wire] if isinstance(wire, str) else ["get_time"])


@MODES
async def test_tool_definitions_strict_and_parallel_flag(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    llm = make_llm().bind_tools([get_weather], strict=True, parallel_tool_calls=False)
    await invoke(llm, "hi", mode)
    body = _body(emulator)
    assert body["parallel_tool_calls"] is False
    function = body["tools"][0]["function"]
    assert function["name"] == "get_weather"
    assert function["strict"] is True
    assert function["parameters"]["properties"] == {"city": {"type": "string"}}


@MODES
async def test_parallel_tool_calls_invoked_and_streamed(make_llm: LLMFactory, mode: str) -> None:
    llm = make_llm().bind_tools([get_weather, get_time])
    question = "Use get_weather and get_time for Paris"
    reply = await invoke(llm, question, mode)
    expected = [("get_weather", {"city": "Paris"}), ("get_time", {"city": "Paris"})]
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == expected
    assert all(call["id"] for call in reply.tool_calls)
    assert reply.response_metadata["finish_reason"] == "tool_calls"
    chunks = await stream(llm, question, mode)
    fragments = [c for chunk in chunks for c in chunk.tool_call_chunks]
    assert len(fragments) == 8  # 2 calls x (head + 3 argument pieces)
    full = merge(chunks)
    assert [(c["name"], c["args"]) for c in full.tool_calls] == expected
    assert full.invalid_tool_calls == []
    assert len({call["id"] for call in full.tool_calls}) == 2


@MODES
async def test_tool_call_round_trip(make_llm: LLMFactory, emulator: Emulator, mode: str) -> None:
    llm = make_llm().bind_tools([get_weather])
    question = HumanMessage("Call get_weather for Paris")
    call = await invoke(llm, [question], mode)
    result = get_weather.invoke(call.tool_calls[0])
    assert isinstance(result, ToolMessage)
    answer = await invoke(llm, [question, call, result], mode)
    assert answer.content == "Tool results: get_weather returned Sunny in Paris"
    sent = _body(emulator)["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.tool_calls[0]["id"]
    assert sent[1]["content"] == ""
    assert sent[2] == {
        "role": "tool",
        "tool_call_id": call.tool_calls[0]["id"],
        "content": "Sunny in Paris",
        "name": "get_weather",
    }


@MODES
async def test_unicode_tool_arguments_are_sent_unescaped(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    history = [
        HumanMessage("Create the customer 你好啊集团"),
        AIMessage("", tool_calls=[tool_call(name="get_weather", args={"city": "北京"}, id="c1")]),
        ToolMessage("晴", tool_call_id="c1"),
    ]
    reply = await invoke(make_llm().bind_tools([get_weather]), history, mode)
    assert reply.content == "Tool results: get_weather returned 晴"
    raw = emulator.requests[-1].body
    assert "北京".encode() in raw
    assert b"\\u5317" not in raw


@MODES
async def test_reasoning_next_to_tool_calls(make_llm: LLMFactory, mode: str) -> None:
    llm = make_llm(model="qwq-plus").bind_tools([get_weather])
    question = "Use get_weather for Paris"
    reply = await invoke(llm, question, mode)
    assert reply.additional_kwargs["reasoning_content"] == f"Let me think about: {question}"
    assert [b["type"] for b in reply.content_blocks] == ["reasoning", "tool_call"]
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_token_details"]["reasoning"] > 0
    full = merge(await stream(llm, question, mode))
    assert full.additional_kwargs["reasoning_content"] == f"Let me think about: {question}"
    assert [b["type"] for b in full.content_blocks] == ["reasoning", "tool_call"]
    assert full.tool_calls[0]["name"] == "get_weather"


@MODES
async def test_reasoning_streamed(make_llm: LLMFactory, mode: str) -> None:
    """ChatOpenAI's fault with this service: reasoning_content is dropped."""
    chunks = await stream(make_llm(model="qwen-plus", enable_thinking=True), "Why?", mode)
    reasoning = [c for c in chunks if c.additional_kwargs.get("reasoning_content")]
    assert reasoning
    assert chunks.index(reasoning[-1]) < next(i for i, c in enumerate(chunks) if c.content)
    full = merge(chunks)
    assert full.additional_kwargs["reasoning_content"] == "Let me think about: Why?"
    assert full.content_blocks[0] == {"type": "reasoning", "reasoning": "Let me think about: Why?"}
    assert full.usage_metadata is not None
    assert full.usage_metadata["output_token_details"] == {"reasoning": 5}


@MODES
async def test_reasoning_in_v1_content_blocks_streamed(make_llm: LLMFactory, mode: str) -> None:
    chunks = await stream(make_llm(model="qwq-plus", output_version="v1"), "Why?", mode)
    full = merge(chunks)
    assert isinstance(full.content, list)
    types = [block["type"] for block in full.content if isinstance(block, dict)]
    assert types == ["reasoning", "text"]


# --------------------------------------------------------------------------- client reuse


@MODES
async def test_one_pool_per_model_reused_then_closed(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, mode: str
) -> None:
    pools = count_pools(monkeypatch, emulator.transport(), emulator.async_transport())
    llm = ChatOpenSearchLLM(api_key="k", base_url=EMULATOR_BASE_URL)
    for _ in range(2):
        await invoke(llm, "one", mode)
        await stream(llm, "two", mode)
    opened = (1, 0) if mode == "sync" else (0, 1)
    assert pools.opened == opened
    if mode == "sync":
        llm.close()
        llm.close()
    else:
        await llm.aclose()
        await llm.aclose()
    assert pools.closed == opened
    await invoke(llm, "three", mode)  # a closed model opens a new pool when used again
    assert pools.opened == tuple(2 * n for n in opened)


@MODES
async def test_thinking_model_cannot_be_forced_to_call_a_tool(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    llm = make_llm(model="qwq-plus").bind_tools([get_weather], tool_choice="any")
    with pytest.raises(ValueError, match="tool_choice") as caught:
        await invoke(llm, "weather?", mode)
    assert "thinking" in str(caught.value)
    assert emulator.request_count == 0


@MODES
async def test_logprobs_are_asked_for(make_llm: LLMFactory, emulator: Emulator, mode: str) -> None:
    await invoke(make_llm(logprobs=True, top_logprobs=2), "hi", mode)
    assert (_body(emulator)["logprobs"], _body(emulator)["top_logprobs"]) == (True, 2)
