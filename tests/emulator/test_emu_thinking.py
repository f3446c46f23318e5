"""Thinking models, as ``get_profile`` describes them: reasoning first, and the service's rejections."""

from __future__ import annotations

from typing import Any

import pytest
from emu_support import Caller, ask

from opensearch_llm._profiles import get_profile

HYBRID_DEFAULT_ON = "qwen3-32b"
HYBRID_DEFAULT_OFF = "qwen-plus"
THINKING_ONLY = "qwq-plus"
TOOLS = [{"type": "function", "function": {"name": "get_time", "parameters": {}}}]


def on(model: str, text: str = "why is the sky blue", **params: Any) -> dict[str, Any]:
    return {**ask(text, **params), "model": model}


def test_the_models_have_the_profiles_these_tests_assume() -> None:
    assert get_profile(HYBRID_DEFAULT_ON).thinking == "hybrid"
    assert get_profile(HYBRID_DEFAULT_ON).thinking_default is True
    assert get_profile(HYBRID_DEFAULT_OFF).thinking == "hybrid"
    assert get_profile(HYBRID_DEFAULT_OFF).thinking_default is False
    assert get_profile(THINKING_ONLY).stream_only is True


async def test_reasoning_streams_before_content(call: Caller) -> None:
    body = on(THINKING_ONLY, "sky", stream=True, stream_options={"include_usage": True})
    chunks = (await call(body)).chunks()
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    kinds = [next(iter(d)) for d in deltas[1:-1]]
    assert kinds == ["reasoning_content"] * 5 + ["content"] * 3
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "Let me think about: sky"
    assert "".join(d.get("content") or "" for d in deltas) == "You said: sky"
    usage = chunks[-1]["usage"]
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 5}
    assert usage["completion_tokens"] == 5 + 3


@pytest.mark.parametrize(
    ("model", "params"),
    [
        (THINKING_ONLY, {}),
        (THINKING_ONLY, {"enable_thinking": False}),
        (HYBRID_DEFAULT_ON, {}),
        (HYBRID_DEFAULT_ON, {"enable_thinking": True}),
        (HYBRID_DEFAULT_OFF, {"enable_thinking": True}),
        ("qwen3-32b-latest", {}),
    ],
)
async def test_non_streamed_thinking_is_rejected(
    in_process: Caller, model: str, params: dict[str, Any]
) -> None:
    result = await in_process(on(model, **params))
    assert result.status == 400
    error = result.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_parameter_error"
    assert error["param"] in ("stream", "enable_thinking")


@pytest.mark.parametrize(
    ("model", "params"),
    [
        (HYBRID_DEFAULT_ON, {"enable_thinking": False}),
        (HYBRID_DEFAULT_OFF, {}),
        ("qwen-max", {"enable_thinking": True}),
    ],
)
async def test_non_streamed_without_thinking_is_accepted(
    in_process: Caller, model: str, params: dict[str, Any]
) -> None:
    result = await in_process(on(model, **params))
    assert result.status == 200
    message = result.json()["choices"][0]["message"]
    assert "reasoning_content" not in message
    assert "completion_tokens_details" not in result.json()["usage"]


async def test_hybrid_model_thinks_when_asked(in_process: Caller) -> None:
    chunks = (await in_process(on(HYBRID_DEFAULT_OFF, stream=True, enable_thinking=True))).chunks()
    assert any("reasoning_content" in c["choices"][0]["delta"] for c in chunks)


async def test_hybrid_default_on_does_not_think_when_disabled(in_process: Caller) -> None:
    chunks = (await in_process(on(HYBRID_DEFAULT_ON, stream=True, enable_thinking=False))).chunks()
    assert not any("reasoning_content" in c["choices"][0]["delta"] for c in chunks)


async def test_thinking_budget_cuts_the_reasoning(in_process: Caller) -> None:
    body = on(THINKING_ONLY, "a b c d", stream=True, thinking_budget=2)
    chunks = (await in_process(body)).chunks()
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content", "") for c in chunks)
    assert reasoning == "Let me"


@pytest.mark.parametrize(
    "tool_choice", ["required", {"type": "function", "function": {"name": "get_time"}}]
)
async def test_forced_tool_choice_with_thinking_is_rejected(
    in_process: Caller, tool_choice: Any
) -> None:
    body = on(HYBRID_DEFAULT_ON, stream=True, tools=TOOLS, tool_choice=tool_choice)
    result = await in_process(body)
    assert result.status == 400
    assert result.json()["error"]["param"] == "tool_choice"


async def test_forced_tool_choice_without_thinking_is_accepted(in_process: Caller) -> None:
    body = on(
        HYBRID_DEFAULT_ON, stream=True, tools=TOOLS, tool_choice="required", enable_thinking=False
    )
    assert (await in_process(body)).status == 200


async def test_thinking_model_calls_tools_after_reasoning(in_process: Caller) -> None:
    chunks = (
        await in_process(on(THINKING_ONLY, "get_time now", stream=True, tools=TOOLS))
    ).chunks()
    deltas = [c["choices"][0]["delta"] for c in chunks]
    first_call = next(i for i, d in enumerate(deltas) if "tool_calls" in d)
    last_reasoning = max(i for i, d in enumerate(deltas) if "reasoning_content" in d)
    assert last_reasoning < first_call
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
