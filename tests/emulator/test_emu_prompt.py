"""The emulator reads its prompt: which tools it asks for, the values it gives, the JSON it wants."""

from __future__ import annotations

import json
from typing import Any

import pytest
from emu_support import Caller, ask
from pydantic import BaseModel, Field

from opensearch_llm.emulator import Emulator
from opensearch_llm.emulator._prompt import asked_tools, fill, json_object

WEATHER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city"],
}
NAMES = ["get_weather", "get_time", "magic_function"]


@pytest.mark.parametrize(
    ("prompt", "asked"),
    [
        ("Use get_weather for Hangzhou.", ["get_weather"]),
        ("get_time then get_weather", ["get_time", "get_weather"]),
        ("What is the weather in Paris?", ["get_weather"]),  # the topic word of the name
        ("Any WEATHER reports? And the times?", ["get_weather", "get_time"]),  # any case, plural
        ("get_time, and how is the weather?", ["get_time"]),  # a named tool wins over topics
        ("Can you get it, or look it up?", []),  # generic words say nothing
        ("call get_weather_now or xget_time", []),  # names and topics are whole words
        ("the magic number", ["magic_function"]),
    ],
)
def test_asked_tools(prompt: str, asked: list[str]) -> None:
    assert asked_tools(prompt, NAMES) == asked


@pytest.mark.parametrize(
    ("prompt", "arguments"),
    [
        ("Use get_weather for Hangzhou.", {"city": "Hangzhou"}),
        ("weather in New York, today", {"city": "New York"}),
        ("get_weather('Rio de Janeiro', days=3)", {"city": "Rio de Janeiro", "days": 3}),
        ("get_weather(Paris)", {"city": "Paris"}),
        ("weather city=Hangzhou unit: fahrenheit days=5", {"city": "Hangzhou", "days": 5}),
        ("weather for 'Xi\u2019an' in 4 days, in Fahrenheit", {"city": "Xi\u2019an", "days": 4}),
        ("weather \u201c\u676d\u5dde\u201d", {"city": "\u676d\u5dde"}),
        ("weather in 12 days", {"days": 1}),  # 12 is out of bounds: the sample stays
        ("What's Paris's weather?", {}),  # no cue word, no quotes: samples
    ],
)
def test_arguments_come_from_the_prompt(prompt: str, arguments: dict[str, Any]) -> None:
    filled = fill(WEATHER, prompt, "get_weather")
    expected = {"city": "sample city", "unit": "celsius", "days": 1, **arguments}
    if "fahrenheit" in prompt.lower():
        expected["unit"] = "fahrenheit"
    assert filled == expected


def test_a_literal_call_fills_positional_parameters_in_order() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "number"}}}
    assert fill(schema, "multiply(3, 2.5)", "multiply") == {"a": 3, "b": 2.5}
    assert fill(schema, "What is 3 times 12?", "multiply") == {"a": 3, "b": 12}
    assert fill(schema, "add(1, 2)", "multiply") == {"a": 1, "b": 2}  # numbers, not a call


def test_values_are_coerced_to_the_property_type_or_left_out() -> None:
    schema = {
        "type": "object",
        "properties": {
            "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
            "count": {"type": "integer", "multipleOf": 2},
            "flag": {"type": "boolean"},
        },
    }
    assert fill(schema, "zip=12345 count=4 flag=false", "t") == {
        "zip": "12345",
        "count": 4,
        "flag": False,
    }
    assert fill(schema, "zip=1234 count=3", "t") == {"zip": "sample zip", "count": 2, "flag": True}


class Person(BaseModel):
    name: str = Field(description="Their name")
    age: int | None = Field(default=None, ge=0)
    email: str | None = None


def test_a_pydantic_schema_is_filled_and_still_validates() -> None:
    filled = fill(Person.model_json_schema(), "A person named 'Ada Lovelace', aged 36", "Person")
    assert Person.model_validate(filled) == Person(
        name="Ada Lovelace", age=36, email="sample email"
    )


def test_json_mode_answers_the_keys_the_prompt_names() -> None:
    text = "Tell me a joke. Return a JSON with 'setup' and 'punchline' keys."
    value = json_object([{"role": "user", "content": text}], text)
    assert value == {"setup": "sample setup", "punchline": "sample punchline"}


def test_json_mode_answers_a_schema_written_in_the_messages() -> None:
    schema = json.dumps(Person.model_json_schema())
    messages = [
        {"role": "system", "content": f"Answer in JSON matching this schema: {schema}"},
        {"role": "user", "content": "Extract: the writer named Ada, 36 years old"},
    ]
    value = json_object(messages, messages[-1]["content"])
    assert Person.model_validate(value) == Person(name="Ada", age=36, email="sample email")


def test_json_mode_without_keys_or_schema_keeps_the_reply_object() -> None:
    text = "answer in json, quoting 'this'"
    assert json_object([{"role": "user", "content": text}], text) is None


async def test_json_object_over_http(call: Caller) -> None:
    fmt = {"type": "json_object"}
    body = ask("Return JSON with the keys 'title' and 'author' for Dune", response_format=fmt)
    message = (await call(body)).json()["choices"][0]["message"]
    assert json.loads(message["content"]) == {"title": "Dune", "author": "sample author"}


async def test_json_schema_is_filled_from_the_prompt(call: Caller) -> None:
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}, "year": {"type": "integer", "minimum": 1900}},
        "required": ["title", "year"],
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "book", "schema": schema}}
    body = ask("The book called Dune, from 1965", response_format=fmt, stream=True)
    chunks = (await call(body)).chunks()
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert json.loads(text) == {"title": "Dune", "year": 1965}


@pytest.mark.parametrize(
    "city", [{"type": "string", "pattern": "\\p{L}+"}, {"type": "string", "minLength": "x"}]
)
def test_a_schema_the_emulator_cannot_judge_gets_the_sample(city: dict[str, Any]) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": city}, "required": ["city"]},
        },
    }
    answer = Emulator().handle(
        "POST",
        "/compatible-mode/v1/chat/completions",
        [(b"authorization", b"Bearer sk-test"), (b"content-type", b"application/json")],
        json.dumps(
            {
                "model": "qwen-plus",
                "messages": [{"role": "user", "content": "What is the weather in Hangzhou?"}],
                "tools": [tool],
            }
        ).encode(),
    )
    assert answer.status == 200
