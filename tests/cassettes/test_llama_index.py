"""``llama_index_opensearch_llm`` replays the documented exchanges, sync and async.

The requests must be the ones the core sends (the same cassettes, matched on the parsed JSON
body), except the tool conversation, matched on its gist: LlamaIndex derives tool schemas from
``FunctionTool`` signatures and sends ``parallel_tool_calls: false`` by default.
"""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, ChatResponse
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.tools import FunctionTool

from llama_index_opensearch_llm import (
    OpenSearchKnowledgeRetriever,
    OpenSearchKnowledgeSynthesizer,
    OpenSearchLLM,
)
from opensearch_llm import AuthenticationError
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


def llm(base_url: str, name: str, **fields: Any) -> OpenSearchLLM:
    return OpenSearchLLM(
        api_key=KEY, base_url=base_url, model=model_of(name), max_retries=0, **fields
    )


def messages(wire: list[dict[str, str]]) -> list[ChatMessage]:
    return [ChatMessage(role=m["role"], content=m["content"]) for m in wire]


async def chat(mode: str, model: OpenSearchLLM, history: list[ChatMessage]) -> ChatResponse:
    if mode == "sync":
        return model.chat(history)
    return await model.achat(history)


async def test_chat(mode: str) -> None:
    name = "compatible_chat"
    expected = response_json(name)
    with replay(name):
        response = await chat(mode, llm(OPENSEARCH, name), messages(OPENSEARCH_MESSAGES))
    assert response.message.content == expected["choices"][0]["message"]["content"]
    assert response.additional_kwargs["finish_reason"] == "stop"
    assert response.additional_kwargs["total_tokens"] == expected["usage"]["total_tokens"]


async def test_stream_chat_has_usage_by_default(mode: str) -> None:
    name = "compatible_stream_usage"
    model = llm(MODELSTUDIO, name)
    with replay(name):
        if mode == "sync":
            responses = list(model.stream_chat(messages(WHO_ARE_YOU)))
        else:
            responses = [r async for r in await model.astream_chat(messages(WHO_ARE_YOU))]
    assert "".join(r.delta or "" for r in responses) == streamed_text(name)
    assert responses[-1].message.content == streamed_text(name)
    assert responses[-1].additional_kwargs["total_tokens"] == streamed_usage(name)["total_tokens"]


def get_current_time() -> str:
    """Useful for when you want to know the current time."""
    return "Current time: 2024-04-15 17:15:18."


def get_current_weather(location: str) -> str:
    """Useful for querying the weather in a specific city."""
    return weather_tool(location)


async def test_two_round_tool_call(mode: str) -> None:
    name = "compatible_tool_calls"
    assert [t["function"]["name"] for t in TOOLS] == ["get_current_time", "get_current_weather"]
    tools = [
        FunctionTool.from_defaults(get_current_time),
        FunctionTool.from_defaults(get_current_weather),
    ]
    model = llm(MODELSTUDIO, name)
    history = [ChatMessage(role="user", content=TOOL_QUESTION)]
    with replay(name, tool_matching=True):
        if mode == "sync":
            first = model.chat_with_tools(tools, chat_history=history)
        else:
            first = await model.achat_with_tools(tools, chat_history=history)
        (selection,) = model.get_tool_calls_from_response(first)
        output = get_current_weather(**selection.tool_kwargs)
        history += [
            first.message,
            ChatMessage(
                role="tool",
                content=output,
                additional_kwargs={"tool_call_id": selection.tool_id, "name": selection.tool_name},
            ),
        ]
        if mode == "sync":
            second = model.chat_with_tools(tools, chat_history=history)
        else:
            second = await model.achat_with_tools(tools, chat_history=history)
    recorded = response_json(name, 0)["choices"][0]["message"]["tool_calls"][0]
    assert (selection.tool_id, selection.tool_name) == (
        recorded["id"],
        recorded["function"]["name"],
    )
    assert selection.tool_kwargs == {"location": "Beijing"}
    answer = response_json(name, 1)["choices"][0]["message"]["content"]
    assert second.message.content == answer
    assert model.get_tool_calls_from_response(second, error_on_no_tool_call=False) == []


async def test_gateway_envelope(mode: str) -> None:
    name = "gateway_envelope"
    inner = unwrap(response_json(name))
    with replay(name):
        response = await chat(
            mode, llm(GATEWAY, name, **GATEWAY_PARAMS), messages(GATEWAY_MESSAGES)
        )
    assert response.message.content == inner["choices"][0]["message"]["content"]
    assert response.additional_kwargs["request_id"] == inner["id"].removeprefix("chatcmpl-")


def knowledge_options() -> dict[str, Any]:
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
    retriever = OpenSearchKnowledgeRetriever(content=KNOWLEDGE_CONTENT, **knowledge_options())
    with replay("knowledge_llm"):
        if mode == "sync":
            nodes = retriever.retrieve(KNOWLEDGE_QUESTION)
        else:
            nodes = await retriever.aretrieve(KNOWLEDGE_QUESTION)
    assert [n.node.get_content() for n in nodes] == [body["result"]["data"][0]["answer"]]
    assert nodes[0].node.metadata["request_id"] == body["request_id"]


async def test_knowledge_synthesizer(mode: str) -> None:
    body = response_json("knowledge_llm")
    synthesizer = OpenSearchKnowledgeSynthesizer(**knowledge_options())
    nodes = [NodeWithScore(node=TextNode(text=text), score=1.0) for text in KNOWLEDGE_CONTENT]
    query = QueryBundle(KNOWLEDGE_QUESTION)
    with replay("knowledge_llm"):
        if mode == "sync":
            response = synthesizer.synthesize(query, nodes)
        else:
            response = await synthesizer.asynthesize(query, nodes)
    assert str(response) == body["result"]["data"][0]["answer"]
    assert response.metadata["opensearch_knowledge"]["request_id"] == body["request_id"]


async def test_error_is_typed(mode: str) -> None:
    name = "error_invalid_api_key"
    with replay(name), pytest.raises(AuthenticationError) as caught:
        await chat(mode, llm(MODELSTUDIO, name), messages(WHO_ARE_YOU))
    assert caught.value.status == 401
    assert caught.value.code == response_json(name)["error"]["code"]
