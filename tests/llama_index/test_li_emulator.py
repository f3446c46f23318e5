"""OpenSearchLLM against the built-in emulator (in-process transports, no sockets)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from li_support import Calls, user
from llama_index.core.base.llms.types import ThinkingBlock, ToolCallBlock
from llama_index.core.tools import FunctionTool

from llama_index_opensearch_llm import OpenSearchLLM
from opensearch_llm import (
    APIConnectionError,
    AuthenticationError,
    InternalServerError,
    RequestValidationError,
    StreamError,
)
from opensearch_llm.emulator import Emulator

EMU_KEY = "sk-emulator-key"
COMPATIBLE = "http://emulator.local/compatible-mode/v1"
GATEWAY = "http://emulator.local/api/v1"

MakeLLM = Callable[..., OpenSearchLLM]


@pytest.fixture
def emu() -> Emulator:
    return Emulator(api_key=EMU_KEY)


@pytest.fixture
def make_llm(emu: Emulator) -> MakeLLM:
    def make(**fields: Any) -> OpenSearchLLM:
        options: dict[str, Any] = {"api_key": EMU_KEY, "base_url": COMPATIBLE, "max_retries": 0}
        options.update(fields)
        return OpenSearchLLM(
            http_client=httpx.Client(transport=emu.transport()),
            async_http_client=httpx.AsyncClient(transport=emu.async_transport()),
            **options,
        )

    return make


def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def clock(timezone: str) -> str:
    """The time in a timezone."""
    return f"noon in {timezone}"


TOOLS = [FunctionTool.from_defaults(weather), FunctionTool.from_defaults(clock)]


@pytest.mark.parametrize("base_url", [COMPATIBLE, GATEWAY])
def test_chat_complete_and_streams_in_both_dialects(
    calls: Calls, make_llm: MakeLLM, emu: Emulator, base_url: str
) -> None:
    llm = make_llm(base_url=base_url)
    response = calls.chat(llm, user("Hi there"))
    assert response.message.content == "You said: Hi there"
    assert response.additional_kwargs["total_tokens"] == 2 + 4
    assert response.additional_kwargs["request_id"]
    assert calls.complete(llm, "Hello").text == "You said: Hello"
    streamed = calls.stream_chat(llm, user("Hi there"))
    assert "".join(r.delta or "" for r in streamed) == "You said: Hi there"
    assert streamed[-1].raw["usage"]["total_tokens"] == 6
    assert streamed[-1].additional_kwargs["finish_reason"] == "stop"
    completions = calls.stream_complete(llm, "a b c")
    assert [r.delta for r in completions if r.delta] == ["You", " said:", " a", " b", " c"]
    assert completions[-1].text == "You said: a b c"
    assert all(
        r.path.startswith(base_url.removeprefix("http://emulator.local")) for r in emu.requests
    )


def test_only_set_parameters_reach_the_service(
    calls: Calls, make_llm: MakeLLM, emu: Emulator
) -> None:
    calls.chat(make_llm(), user("Hi"))
    assert emu.requests[-1].json == {
        "model": "qwen-plus",
        "messages": [{"role": "user", "content": "Hi"}],
    }
    calls.stream_chat(make_llm(max_tokens=2, temperature=0.5), user("one two three"))
    sent = emu.requests[-1].json
    assert (sent["max_tokens"], sent["temperature"]) == (2, 0.5)
    assert "seed" not in sent and "top_p" not in sent


def test_max_tokens_cuts_the_answer(calls: Calls, make_llm: MakeLLM) -> None:
    response = calls.chat(make_llm(max_tokens=2), user("one two three"))
    assert response.message.content == "You said:"
    assert response.additional_kwargs["finish_reason"] == "length"


def test_thinking_models_stream_reasoning_as_thinking_blocks(
    calls: Calls, make_llm: MakeLLM
) -> None:
    llm = make_llm(model="qwen3-32b")
    streamed = calls.stream_chat(llm, user("why"))
    thinking = "".join(r.additional_kwargs.get("thinking_delta") or "" for r in streamed)
    assert thinking == "Let me think about: why"
    final = streamed[-1]
    block = final.message.blocks[0]
    assert isinstance(block, ThinkingBlock)
    assert (block.content, block.num_tokens) == ("Let me think about: why", 5)
    assert final.message.content == "You said: why"
    assert final.additional_kwargs["reasoning_tokens"] == 5
    # Non-streamed: the core switches thinking off for hybrid models (a 400 otherwise).
    assert calls.chat(llm, user("why")).message.blocks[0].block_type == "text"


def test_a_thinking_only_model_answers_a_non_streamed_call(calls: Calls, make_llm: MakeLLM) -> None:
    response = calls.chat(make_llm(model="qwq-plus"), user("why"))
    assert isinstance(response.message.blocks[0], ThinkingBlock)
    assert response.message.content == "You said: why"


def test_history_with_reasoning_and_tool_calls_round_trips(
    calls: Calls, make_llm: MakeLLM, emu: Emulator
) -> None:
    llm = make_llm(model="qwen3-32b")
    first = calls.stream_chat(llm, user("weather please"))[-1].message
    calls.chat(llm, [*user("weather please"), first, *user("again")])
    sent = emu.requests[-1].json["messages"]
    assert sent[1] == {"role": "assistant", "content": "You said: weather please"}


@pytest.mark.parametrize("stream", [False, True])
def test_chat_with_tools_returns_parallel_calls(
    calls: Calls, make_llm: MakeLLM, emu: Emulator, stream: bool
) -> None:
    llm = make_llm()
    name = "stream_chat_with_tools" if stream else "chat_with_tools"
    kwargs = {"user_msg": "use weather and clock", "allow_parallel_tool_calls": True}
    if stream:
        response = calls.stream(llm, name, TOOLS, **kwargs)[-1]
    else:
        response = calls.call(llm, name, TOOLS, **kwargs)
    selections = llm.get_tool_calls_from_response(response)
    assert [(s.tool_name, s.tool_kwargs) for s in selections] == [
        ("weather", {"city": "sample city"}),
        ("clock", {"timezone": "sample timezone"}),
    ]
    assert all(s.tool_id for s in selections)
    assert emu.requests[-1].json["parallel_tool_calls"] is True


def test_without_parallel_calls_only_one_is_kept(
    calls: Calls, make_llm: MakeLLM, emu: Emulator
) -> None:
    response = calls.call(make_llm(), "chat_with_tools", TOOLS, user_msg="weather and clock")
    assert [s.tool_name for s in make_llm().get_tool_calls_from_response(response)] == ["weather"]
    assert emu.requests[-1].json["parallel_tool_calls"] is False


def test_tool_required_forces_a_call(calls: Calls, make_llm: MakeLLM, emu: Emulator) -> None:
    response = calls.call(
        make_llm(), "chat_with_tools", TOOLS, user_msg="hello", tool_required=True
    )
    assert [s.tool_name for s in make_llm().get_tool_calls_from_response(response)] == ["weather"]
    assert emu.requests[-1].json["tool_choice"] == "required"


def test_tool_required_on_a_hybrid_thinking_model_turns_thinking_off(
    calls: Calls, make_llm: MakeLLM, emu: Emulator
) -> None:
    llm = make_llm(model="qwen3-32b")
    responses = calls.stream(
        llm, "stream_chat_with_tools", TOOLS, user_msg="hi", tool_required=True
    )
    assert llm.get_tool_calls_from_response(responses[-1])[0].tool_name == "weather"
    assert emu.requests[-1].json["enable_thinking"] is False


def test_tool_required_on_a_thinking_only_model_falls_back_to_auto(
    calls: Calls, make_llm: MakeLLM, emu: Emulator
) -> None:
    llm = make_llm(model="qwq-plus")
    response = calls.call(llm, "chat_with_tools", TOOLS, user_msg="use clock", tool_required=True)
    assert llm.get_tool_calls_from_response(response)[0].tool_name == "clock"
    assert emu.requests[-1].json["tool_choice"] == "auto"


@pytest.mark.parametrize(
    "thinking_on",
    [
        {"additional_kwargs": {"extra_body": {"enable_thinking": True}}},
        {"additional_kwargs": {"enable_thinking": True}},
        {"enable_thinking": True},
    ],
    ids=["extra_body", "additional_kwargs", "field"],
)
def test_tool_required_follows_thinking_switched_on_anywhere(
    calls: Calls, make_llm: MakeLLM, emu: Emulator, thinking_on: dict[str, Any]
) -> None:
    """qwen-plus thinks only when asked: wherever it is asked, no forced call is sent."""
    llm = make_llm(model="qwen-plus", **thinking_on)
    response = calls.call(llm, "chat_with_tools", TOOLS, user_msg="use clock", tool_required=True)
    assert llm.get_tool_calls_from_response(response)[0].tool_name == "clock"
    assert emu.requests[-1].json["tool_choice"] == "auto"
    assert emu.requests[-1].json["enable_thinking"] is True


def test_an_explicit_forced_choice_while_thinking_is_refused_by_the_core(
    calls: Calls, make_llm: MakeLLM
) -> None:
    with pytest.raises(RequestValidationError, match="tool_choice"):
        calls.stream(
            make_llm(model="qwq-plus"),
            "stream_chat_with_tools",
            TOOLS,
            user_msg="hi",
            tool_choice="clock",
        )


def test_a_named_tool_choice_is_sent_as_a_function(
    calls: Calls, make_llm: MakeLLM, emu: Emulator
) -> None:
    calls.call(make_llm(), "chat_with_tools", TOOLS, user_msg="hi", tool_choice="clock")
    assert emu.requests[-1].json["tool_choice"] == {
        "type": "function",
        "function": {"name": "clock"},
    }


def test_streamed_tool_calls_parse_at_every_step(make_llm: MakeLLM) -> None:
    llm = make_llm()
    seen = [
        llm.get_tool_calls_from_response(r, error_on_no_tool_call=False)
        for r in llm.stream_chat_with_tools(TOOLS, user_msg="weather")
    ]
    assert seen[0] == []
    assert {len(s) for s in seen[1:-1]} == {1}
    assert seen[-1][0].tool_kwargs == {"city": "sample city"}
    block = [b for b in llm.stream_chat_with_tools(TOOLS, user_msg="weather")][-1].message.blocks
    assert isinstance(block[-1], ToolCallBlock)


def test_predict_and_call_runs_the_tools(calls: Calls, make_llm: MakeLLM) -> None:
    result = calls.call(
        make_llm(),
        "predict_and_call",
        TOOLS,
        user_msg="weather and clock",
        allow_parallel_tool_calls=True,
    )
    assert result.response == "sunny in sample city\n\nnoon in sample timezone"
    assert [s.tool_name for s in result.sources] == ["weather", "clock"]


def test_no_tool_call_raises_or_returns_empty(calls: Calls, make_llm: MakeLLM) -> None:
    llm = make_llm()
    response = calls.call(llm, "chat_with_tools", TOOLS, user_msg="just talk")
    assert response.message.content == "You said: just talk"
    with pytest.raises(ValueError, match="Expected at least one tool call"):
        llm.get_tool_calls_from_response(response)
    assert llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []


def test_the_callers_history_is_never_modified(calls: Calls, make_llm: MakeLLM) -> None:
    history = user("earlier")
    calls.call(make_llm(), "chat_with_tools", TOOLS, user_msg="weather", chat_history=history)
    assert [m.content for m in history] == ["earlier"]


# --------------------------------------------------------------------------- errors


def test_a_wrong_key_is_an_authentication_error(calls: Calls, make_llm: MakeLLM) -> None:
    with pytest.raises(AuthenticationError, match="invalid_api_key"):
        calls.chat(make_llm(api_key="sk-wrong"), user("Hi"))


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("error-200", InternalServerError),
        ("503", InternalServerError),
        ("reset", APIConnectionError),
    ],
)
def test_errors_are_raised_never_returned_as_empty_answers(
    calls: Calls, make_llm: MakeLLM, fault: str, error: type[Exception]
) -> None:
    llm = make_llm(default_headers={"X-Emulator-Fault": fault})
    with pytest.raises(error):
        calls.chat(llm, user("Hi"))
    received: list[Any] = []
    with pytest.raises(error):
        calls.stream_chat(llm, user("Hi"), into=received)
    assert received == []


@pytest.mark.parametrize("fault", ["reset-mid-stream", "error-frame", "malformed-json"])
def test_a_stream_that_breaks_raises_after_yielding_what_arrived(
    calls: Calls, make_llm: MakeLLM, fault: str
) -> None:
    llm = make_llm(default_headers={"X-Emulator-Fault": fault, "X-Emulator-Fault-After": "3"})
    received: list[Any] = []
    with pytest.raises(StreamError) as info:
        calls.stream_chat(llm, user("one two three four"), into=received)
    assert [r.delta for r in received] == ["", "You", " said:"]
    assert received[-1].message.content == "You said:"
    assert info.value.partial["choices"][0]["message"]["content"] == "You said:"


def test_retries_are_the_cores(calls: Calls, make_llm: MakeLLM, emu: Emulator) -> None:
    emu.script_faults(["503", None])
    assert calls.chat(make_llm(max_retries=1), user("Hi")).message.content == "You said: Hi"
    assert emu.request_count == 2
