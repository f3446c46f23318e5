"""``langchain_opensearch_llm`` replays the documented exchanges, sync and async.

The requests must be the ones the core sends (the same cassettes, matched on the parsed JSON
body); only the tool conversation is matched on its gist (``support.tool_conversation``).
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.exceptions import ModelAuthenticationError
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage

from langchain_opensearch_llm import (
    ChatOpenSearchLLM,
    OpenSearchKnowledgeRetriever,
    OpenSearchKnowledgeRunnable,
    OpenSearchLLMAuthenticationError,
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
    weather_tool,
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
    streamed_text,
    streamed_usage,
    unwrap,
)

pytestmark = pytest.mark.parametrize("mode", ["sync", "async"])


def chat(base_url: str, name: str, **fields: Any) -> ChatOpenSearchLLM:
    return ChatOpenSearchLLM(
        api_key=KEY, base_url=base_url, model=model_of(name), max_retries=0, **fields
    )


async def invoke(mode: str, runnable: Any, messages: Any) -> Any:
    if mode == "sync":
        return runnable.invoke(messages)
    return await runnable.ainvoke(messages)


async def stream(mode: str, llm: ChatOpenSearchLLM, messages: Any) -> list[AIMessageChunk]:
    if mode == "sync":
        return list(llm.stream(messages))
    return [chunk async for chunk in llm.astream(messages)]


def pairs(messages: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in messages]


async def test_invoke(mode: str) -> None:
    name = "compatible_chat"
    expected = response_json(name)
    with replay(name):
        message = await invoke(mode, chat(OPENSEARCH, name), pairs(OPENSEARCH_MESSAGES))
    assert isinstance(message, AIMessage)
    assert message.content == expected["choices"][0]["message"]["content"]
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.usage_metadata is not None
    assert message.usage_metadata["input_tokens"] == expected["usage"]["prompt_tokens"]
    assert message.usage_metadata["output_tokens"] == expected["usage"]["completion_tokens"]


async def test_stream_has_usage_by_default(mode: str) -> None:
    name = "compatible_stream_usage"
    with replay(name):
        chunks = await stream(mode, chat(MODELSTUDIO, name), pairs(WHO_ARE_YOU))
    assert "".join(str(chunk.content) for chunk in chunks) == streamed_text(name)
    with_usage = [chunk for chunk in chunks if chunk.usage_metadata]
    assert len(with_usage) == 1
    usage = streamed_usage(name)
    assert with_usage[0].usage_metadata == {
        "input_tokens": usage["prompt_tokens"],
        "output_tokens": usage["completion_tokens"],
        "total_tokens": usage["total_tokens"],
    }


async def test_two_round_tool_call(mode: str) -> None:
    name = "compatible_tool_calls"
    llm = chat(MODELSTUDIO, name).bind_tools(TOOLS)
    history: list[BaseMessage] = []
    with replay(name):
        first = await invoke(mode, llm, [("user", TOOL_QUESTION)])
        call = first.tool_calls[0]
        result = ToolMessage(
            weather_tool(**call["args"]), tool_call_id=call["id"], name=call["name"]
        )
        history = [first, result]
        second = await invoke(mode, llm, [("user", TOOL_QUESTION), *history])
    recorded = response_json(name, 0)["choices"][0]["message"]["tool_calls"][0]
    assert (call["id"], call["name"]) == (recorded["id"], recorded["function"]["name"])
    assert call["args"] == {"location": "Beijing"}
    assert second.content == response_json(name, 1)["choices"][0]["message"]["content"]
    assert second.tool_calls == []


async def test_gateway_envelope(mode: str) -> None:
    name = "gateway_envelope"
    inner = unwrap(response_json(name))
    llm = chat(GATEWAY, name, **GATEWAY_PARAMS)
    with replay(name):
        message = await invoke(mode, llm, pairs(GATEWAY_MESSAGES))
    assert message.content == inner["choices"][0]["message"]["content"]
    assert message.response_metadata["request_id"] == inner["id"].removeprefix("chatcmpl-")
    assert message.usage_metadata["total_tokens"] == inner["usage"]["total_tokens"]


def knowledge_settings() -> dict[str, Any]:
    return {
        "api_key": KEY,
        "host": KNOWLEDGE_HOST,
        "app": KNOWLEDGE_APP,
        "model": model_of("knowledge_llm"),
        "max_retries": 0,
        **KNOWLEDGE_PARAMS,
    }


async def test_knowledge_retriever(mode: str) -> None:
    body = response_json("knowledge_llm")
    retriever = OpenSearchKnowledgeRetriever(content=KNOWLEDGE_CONTENT, **knowledge_settings())
    with replay("knowledge_llm"):
        documents = await invoke(mode, retriever, KNOWLEDGE_QUESTION)
    assert [d.page_content for d in documents] == [body["result"]["data"][0]["answer"]]
    assert documents[0].metadata["request_id"] == body["request_id"]
    assert documents[0].metadata["latency"] == body["latency"]


async def test_knowledge_runnable(mode: str) -> None:
    body = response_json("knowledge_llm")
    runnable = OpenSearchKnowledgeRunnable(**knowledge_settings())
    query = {"question": KNOWLEDGE_QUESTION, "documents": KNOWLEDGE_CONTENT}
    with replay("knowledge_llm"):
        answer = await invoke(mode, runnable, query)
    assert answer == body["result"]["data"][0]["answer"]


async def test_error_is_a_langchain_error(mode: str) -> None:
    name = "error_invalid_api_key"
    with replay(name), pytest.raises(OpenSearchLLMAuthenticationError) as caught:
        await invoke(mode, chat(MODELSTUDIO, name), pairs(WHO_ARE_YOU))
    assert isinstance(caught.value, ModelAuthenticationError)
    assert caught.value.status == 401
    assert caught.value.code == response_json(name)["error"]["code"]
