"""The core clients replay the documented exchanges (``cassettes/``), sync and async."""

from __future__ import annotations

from typing import Any

import pytest

from opensearch_llm import (
    AsyncChatClient,
    AsyncKnowledgeClient,
    AuthenticationError,
    ChatClient,
    KnowledgeClient,
)
from scripts.record_cassettes import (
    GATEWAY_MESSAGES,
    GATEWAY_PARAMS,
    KNOWLEDGE_CONTENT,
    KNOWLEDGE_PARAMS,
    KNOWLEDGE_QUESTION,
    OPENSEARCH_MESSAGES,
    TOOL_QUESTION,
    TOOLS,
    WHO_ARE_YOU,
    tool_message,
)

from .support import (
    GATEWAY,
    KEY,
    KNOWLEDGE_APP,
    KNOWLEDGE_HOST,
    MODELSTUDIO,
    OPENSEARCH,
    model_of,
    replay,
    response_json,
    sse_events,
    streamed_text,
    streamed_usage,
    unwrap,
)

pytestmark = pytest.mark.parametrize("mode", ["sync", "async"])


def choices_of(completion: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Each choice's index, message and finish reason."""
    return [(c["index"], c["message"], c["finish_reason"]) for c in completion["choices"]]


async def create(mode: str, base_url: str, **call: Any) -> dict[str, Any]:
    """One non-streamed completion through ``ChatClient`` or ``AsyncChatClient``."""
    if mode == "sync":
        with ChatClient(KEY, base_url=base_url, max_retries=0) as client:
            return client.create(**call)
    async with AsyncChatClient(KEY, base_url=base_url, max_retries=0) as client:
        return await client.create(**call)


async def stream(mode: str, base_url: str, **call: Any) -> tuple[list[dict[str, Any]], Any]:
    """Every chunk of a stream, and its aggregated completion."""
    if mode == "sync":
        with ChatClient(KEY, base_url=base_url) as client, client.stream(**call) as chunks:
            received = list(chunks)
        return received, chunks.completion()
    async with AsyncChatClient(KEY, base_url=base_url) as client, client.stream(**call) as chunks:
        received = [chunk async for chunk in chunks]
    return received, chunks.completion()


async def test_compatible_chat(mode: str) -> None:
    name = "compatible_chat"
    expected = response_json(name)
    with replay(name):
        completion = await create(
            mode, OPENSEARCH, model=model_of(name), messages=OPENSEARCH_MESSAGES
        )
    assert choices_of(completion) == choices_of(expected)
    assert completion["usage"]["total_tokens"] == expected["usage"]["total_tokens"]
    assert completion["model"] == expected["model"] and completion["id"] == expected["id"]


async def test_stream_with_usage(mode: str) -> None:
    name = "compatible_stream_usage"
    with replay(name):
        chunks, completion = await stream(
            mode, MODELSTUDIO, model=model_of(name), messages=WHO_ARE_YOU
        )
    text = "".join(c["delta"].get("content") or "" for ch in chunks for c in ch["choices"])
    assert text == streamed_text(name) and text
    # Usage arrives on a last chunk with no choices; include_usage was asked for by default.
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == streamed_usage(name)
    assert len(chunks) == len(sse_events(name))
    message = completion["choices"][0]["message"]
    assert message == {"role": "assistant", "content": streamed_text(name)}
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"]["total_tokens"] == streamed_usage(name)["total_tokens"]


async def test_two_round_tool_call(mode: str) -> None:
    name = "compatible_tool_calls"
    model = model_of(name)
    messages: list[dict[str, Any]] = [{"role": "user", "content": TOOL_QUESTION}]
    with replay(name):
        first = await create(mode, MODELSTUDIO, model=model, messages=messages, tools=TOOLS)
        message = first["choices"][0]["message"]
        calls = message["tool_calls"]
        messages += [
            {"role": "assistant", "content": message["content"] or "", "tool_calls": calls},
            *(tool_message(call) for call in calls),
        ]
        second = await create(mode, MODELSTUDIO, model=model, messages=messages, tools=TOOLS)
    recorded_call = response_json(name, 0)["choices"][0]["message"]["tool_calls"][0]
    assert calls[0]["id"] == recorded_call["id"]
    assert calls[0]["function"] == recorded_call["function"]
    assert first["choices"][0]["finish_reason"] == "tool_calls"
    answer = response_json(name, 1)["choices"][0]["message"]["content"]
    assert second["choices"][0]["message"]["content"] == answer
    assert "tool_calls" not in second["choices"][0]["message"]


async def test_gateway_envelope_is_unwrapped(mode: str) -> None:
    name = "gateway_envelope"
    inner = unwrap(response_json(name))
    with replay(name):
        completion = await create(
            mode, GATEWAY, model=model_of(name), messages=GATEWAY_MESSAGES, **GATEWAY_PARAMS
        )
    assert "success" not in completion and "data" not in completion
    assert choices_of(completion) == choices_of(inner)
    assert completion["usage"]["total_tokens"] == inner["usage"]["total_tokens"]
    # No request_id in the body: it comes from the chatcmpl- id's suffix.
    assert completion["request_id"] == inner["id"].removeprefix("chatcmpl-")


async def test_knowledge_llm(mode: str) -> None:
    name = "knowledge_llm"
    body = response_json(name)
    options = {"host": KNOWLEDGE_HOST, "app": KNOWLEDGE_APP}
    call = {"model": model_of(name), **KNOWLEDGE_PARAMS}
    with replay(name):
        if mode == "sync":
            with KnowledgeClient(KEY, **options) as client:
                result = client.answer(KNOWLEDGE_QUESTION, KNOWLEDGE_CONTENT, **call)
        else:
            async with AsyncKnowledgeClient(KEY, **options) as aclient:
                result = await aclient.answer(KNOWLEDGE_QUESTION, KNOWLEDGE_CONTENT, **call)
    assert result.answer == body["result"]["data"][0]["answer"]
    assert result.request_id == body["request_id"] and result.latency == body["latency"]
    assert result.data == body["result"]["data"]


async def test_error_body_is_a_typed_error(mode: str) -> None:
    name = "error_invalid_api_key"
    error = response_json(name)["error"]
    with replay(name), pytest.raises(AuthenticationError) as caught:
        await create(mode, MODELSTUDIO, model=model_of(name), messages=WHO_ARE_YOU)
    assert caught.value.status == 401
    assert caught.value.code == error["code"]
    assert error["message"].strip() in str(caught.value)
    assert KEY not in str(caught.value)
