"""A client we did not write: the official ``openai`` SDK against ``serve()`` on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from emu_support import KEY

from opensearch_llm.emulator import EmulatorServer, Fault

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ASK = [{"role": "user", "content": "Recommend one science fiction book"}]


@pytest.fixture
def client(server: EmulatorServer, emulator: object) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=KEY, base_url=server.compatible_base_url, max_retries=0) as sdk:
        yield sdk


def test_non_streamed(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="qwen-plus", messages=ASK)
    assert completion.choices[0].message.content == "You said: Recommend one science fiction book"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 12
    assert completion.id.startswith("chatcmpl-")


def test_streamed_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="qwen-plus", messages=ASK, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: Recommend one science fiction book"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 7


def test_tool_calls(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "get_weather in Hangzhou"}]
    completion = client.chat.completions.create(
        model="qwen-plus", messages=messages, tools=[WEATHER]
    )
    (call,) = completion.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Hangzhou"}
    followup = [
        *messages,
        completion.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    answer = client.chat.completions.create(model="qwen-plus", messages=followup, tools=[WEATHER])
    assert answer.choices[0].message.content == "Tool results: get_weather returned sunny"


def test_streamed_tool_calls_accumulate(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "get_weather(city='Hangzhou') please"}]
    stream = client.chat.completions.create(
        model="qwen-plus", messages=messages, tools=[WEATHER], stream=True
    )
    arguments = ""
    names = []
    for chunk in stream:
        for fragment in chunk.choices[0].delta.tool_calls or ():
            names.append(fragment.function.name if fragment.function else None)
            arguments += (fragment.function.arguments or "") if fragment.function else ""
    assert names[0] == "get_weather" and json.loads(arguments) == {"city": "Hangzhou"}


def test_authentication_error(server: EmulatorServer) -> None:
    with (
        openai.OpenAI(
            api_key="sk-wrong", base_url=server.compatible_base_url, max_retries=0
        ) as sdk,
        pytest.raises(openai.AuthenticationError) as raised,
    ):
        sdk.chat.completions.create(model="qwen-plus", messages=ASK)
    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_api_key"


def test_bad_request_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="qwen-plus", messages=ASK, temperature=3)
    assert raised.value.code == "invalid_parameter_error"
    assert raised.value.param == "temperature"


def test_error_frame_in_a_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="qwen-plus",
        messages=ASK,
        stream=True,
        extra_headers={"X-Emulator-Fault": "error-frame"},
    )
    with pytest.raises(openai.APIError):
        list(stream)


def test_retries_through_scripted_faults(server: EmulatorServer, emulator: object) -> None:
    fast = Fault("429", retry_after=0.01)  # the SDK honours Retry-After
    server.emulator.script_faults([fast, fast])
    with openai.OpenAI(api_key=KEY, base_url=server.compatible_base_url, max_retries=2) as sdk:
        completion = sdk.chat.completions.with_raw_response.create(model="qwen-plus", messages=ASK)
    assert completion.parse().choices[0].message.content.startswith("You said:")
    assert server.emulator.request_count == 3


async def test_async_client(server: EmulatorServer, emulator: object) -> None:
    async with openai.AsyncOpenAI(
        api_key=KEY, base_url=server.compatible_base_url, max_retries=0
    ) as sdk:
        completion = await sdk.chat.completions.create(model="qwen-plus", messages=ASK)
    assert completion.choices[0].message.content == "You said: Recommend one science fiction book"
