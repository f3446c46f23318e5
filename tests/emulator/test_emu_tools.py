"""Tool calls: when they happen, their arguments (from the prompt, else schema samples), streaming."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any, Literal

import pytest
from emu_support import Caller, ask
from pydantic import BaseModel, Field

from opensearch_llm.emulator._schema import sample_arguments, sample_value

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city"],
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {}}}
TOOLS = [WEATHER, TIME]
WEATHER_ARGS = {"city": "sample city", "unit": "celsius", "days": 1}


def calls_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    return body["choices"][0]["message"].get("tool_calls") or []


def merge_tool_calls(chunks: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Merge streamed tool-call fragments by index, as a client must."""
    merged: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for fragment in choice["delta"].get("tool_calls") or ():
                into = merged.setdefault(fragment["index"], {"id": "", "name": "", "arguments": ""})
                into["id"] = into["id"] or fragment.get("id") or ""
                function = fragment.get("function") or {}
                into["name"] += function.get("name") or ""
                into["arguments"] += function.get("arguments") or ""
    return merged


async def test_mentioned_tool_is_called(call: Caller) -> None:
    result = await call(ask("What is the weather? Use get_weather please", tools=TOOLS))
    body = result.json()
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["choices"][0]["message"]["content"] == ""
    (only,) = calls_of(body)
    assert only["type"] == "function" and only["id"].startswith("call_")
    assert only["function"]["name"] == "get_weather"
    assert json.loads(only["function"]["arguments"]) == WEATHER_ARGS


async def test_a_prompt_that_asks_for_no_tool_answers_in_text(in_process: Caller) -> None:
    body = (await in_process(ask("Tell me a joke", tools=TOOLS))).json()
    assert calls_of(body) == [] and body["choices"][0]["finish_reason"] == "stop"


async def test_a_prompt_about_a_tools_topic_calls_it_with_values_from_the_prompt(
    call: Caller,
) -> None:
    body = (await call(ask("What is the weather in San Francisco, CA?", tools=TOOLS))).json()
    (only,) = calls_of(body)
    assert only["function"]["name"] == "get_weather"
    arguments = json.loads(only["function"]["arguments"])
    assert arguments == {"city": "San Francisco", "unit": "celsius", "days": 1}


async def test_mention_must_be_a_whole_word(in_process: Caller) -> None:
    body = (await in_process(ask("call get_weather_now or xget_time", tools=TOOLS))).json()
    assert calls_of(body) == []


async def test_two_mentions_make_parallel_calls_in_order(in_process: Caller) -> None:
    body = (await in_process(ask("get_time then get_weather", tools=TOOLS))).json()
    calls = calls_of(body)
    assert [c["function"]["name"] for c in calls] == ["get_time", "get_weather"]
    assert json.loads(calls[0]["function"]["arguments"]) == {}
    assert len({c["id"] for c in calls}) == 2


async def test_parallel_tool_calls_false_keeps_the_first(in_process: Caller) -> None:
    body = ask("get_time then get_weather", tools=TOOLS, parallel_tool_calls=False)
    calls = calls_of((await in_process(body)).json())
    assert [c["function"]["name"] for c in calls] == ["get_time"]


async def test_required_calls_the_first_tool_when_none_is_mentioned(in_process: Caller) -> None:
    body = (await in_process(ask("hello", tools=TOOLS, tool_choice="required"))).json()
    assert [c["function"]["name"] for c in calls_of(body)] == ["get_weather"]


async def test_named_tool_choice_calls_that_tool(in_process: Caller) -> None:
    choice = {"type": "function", "function": {"name": "get_time"}}
    body = (await in_process(ask("get_weather please", tools=TOOLS, tool_choice=choice))).json()
    assert [c["function"]["name"] for c in calls_of(body)] == ["get_time"]


async def test_tool_choice_none_never_calls(in_process: Caller) -> None:
    body = (await in_process(ask("get_weather please", tools=TOOLS, tool_choice="none"))).json()
    assert calls_of(body) == [] and body["choices"][0]["finish_reason"] == "stop"


def conversation_with_results() -> list[dict[str, Any]]:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Hangzhou"}'},
    }
    return [
        {"role": "user", "content": "get_weather for Hangzhou"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 25C"},
    ]


async def test_after_a_tool_result_the_answer_is_text(call: Caller) -> None:
    body = {"model": "qwen-plus", "messages": conversation_with_results(), "tools": TOOLS}
    result = (await call(body)).json()
    message = result["choices"][0]["message"]
    assert message == {
        "role": "assistant",
        "content": "Tool results: get_weather returned sunny, 25C",
    }
    assert result["choices"][0]["finish_reason"] == "stop"


async def test_tool_result_named_by_the_message(in_process: Caller) -> None:
    messages = [
        *conversation_with_results()[:2],
        {"role": "tool", "tool_call_id": "call_x", "name": "lookup", "content": "42"},
    ]
    body = (await in_process({"model": "qwen-plus", "messages": messages})).json()
    assert body["choices"][0]["message"]["content"] == "Tool results: lookup returned 42"


async def test_streamed_tool_calls_are_fragmented_like_the_service(call: Caller) -> None:
    body = ask("get_weather and get_time", tools=TOOLS, stream=True)
    chunks = (await call(body)).chunks()
    fragments = [f for c in chunks for f in c["choices"][0]["delta"].get("tool_calls") or ()]
    for index, name in ((0, "get_weather"), (1, "get_time")):
        mine = [f for f in fragments if f["index"] == index]
        assert mine[0]["id"].startswith("call_")
        assert mine[0]["function"] == {"name": name, "arguments": ""}
        assert len(mine) >= 3
        for later in mine[1:]:
            assert later["id"] == "" and set(later["function"]) == {"arguments"}
    merged = merge_tool_calls(chunks)
    assert json.loads(merged[0]["arguments"]) == WEATHER_ARGS
    assert json.loads(merged[1]["arguments"]) == {}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_streamed_tool_calls_match_the_non_streamed_ones(in_process: Caller) -> None:
    plain = calls_of((await in_process(ask("get_weather", tools=TOOLS))).json())
    in_process.emulator.reset()
    merged = merge_tool_calls(
        (await in_process(ask("get_weather", tools=TOOLS, stream=True))).chunks()
    )
    assert merged[0] == {
        "id": plain[0]["id"],
        "name": plain[0]["function"]["name"],
        "arguments": plain[0]["function"]["arguments"],
    }


async def test_tool_call_usage_counts_the_call(in_process: Caller) -> None:
    body = (await in_process(ask("get_time", tools=TOOLS))).json()
    assert body["usage"]["completion_tokens"] == 2  # "get_time {}"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 2


class Color(str, Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    street: str
    zip_code: str = Field(min_length=5, max_length=5)


class Order(BaseModel):
    name: str
    quantity: int = Field(ge=3, le=10)
    price: float = Field(gt=0, lt=1)
    ratio: float = Field(ge=-5)
    express: bool
    color: Color
    size: Literal["S", "M", "L"]
    tags: list[str] = Field(min_length=2)
    address: Address
    previous: list[Address]
    note: str | None = None
    count: int | None = Field(default=None, multiple_of=4, ge=5)
    lookup: dict[str, int]


def test_arguments_validate_against_a_pydantic_schema() -> None:
    arguments = sample_arguments(Order.model_json_schema())
    Order.model_validate(arguments)
    assert arguments["quantity"] == 3 and arguments["count"] == 8
    assert len(arguments["tags"]) == 2 and len(set(arguments["tags"])) == 2


SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"when": {"type": "string", "format": "date-time"}}},
    {"type": "object", "properties": {"x": {"type": "number", "exclusiveMinimum": 10}}},
    {"type": "object", "properties": {"x": {"type": "integer", "exclusiveMaximum": 0}}},
    {"type": "object", "properties": {"x": {"type": ["null", "integer"], "maximum": -3}}},
    {"type": "object", "properties": {"x": {"const": "fixed"}}, "required": ["x", "y"]},
    {
        "type": "object",
        "properties": {"x": {"type": "array", "items": {"type": "boolean"}, "maxItems": 0}},
    },
    {
        "type": "object",
        "properties": {"x": {"oneOf": [{"type": "string", "maxLength": 2}, {"type": "integer"}]}},
    },
    {
        "type": "object",
        "properties": {
            "x": {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}}]}
        },
    },
    {
        "type": "object",
        "properties": {"node": {"$ref": "#/definitions/node"}},
        "definitions": {
            "node": {
                "type": "object",
                "properties": {
                    "children": {"type": "array", "items": {"$ref": "#/definitions/node"}}
                },
            }
        },
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_arguments_validate_against_json_schemas(schema: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(sample_arguments(schema), schema)


def test_empty_or_odd_parameters_give_an_empty_object() -> None:
    assert sample_arguments({}) == {}
    assert sample_arguments(None) == {}
    assert sample_arguments({"type": "string"}) == {}
    assert sample_value({"type": "string"}) == "sample value"
