"""Agents, structured prediction and a query engine through OpenSearchLLM (emulator or scripts).

LlamaIndex agents are async workflows: they exercise ``achat``/``astream_chat`` and the tool
methods; the structured-prediction helpers run sync and async.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from li_support import Calls, ScriptedService, chunk, fragment, text_chunks, usage_chunk
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.agent.workflow import (
    AgentStream,
    FunctionAgent,
    ReActAgent,
    ToolCallResult,
)
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from llama_index_opensearch_llm import OpenSearchLLM
from opensearch_llm.emulator import Emulator

# The workflow engine inspects agents with inspect.getmembers, which touches pydantic's deprecated
# attributes: framework noise, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EMU_KEY = "sk-emulator-key"


def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def clock(timezone: str) -> str:
    """The time in a timezone."""
    return f"noon in {timezone}"


TOOLS = [FunctionTool.from_defaults(weather), FunctionTool.from_defaults(clock)]


class Album(BaseModel):
    """A music album."""

    name: str
    year: int


@pytest.fixture
def emu() -> Emulator:
    return Emulator(api_key=EMU_KEY)


def emu_llm(emu: Emulator, **fields: Any) -> OpenSearchLLM:
    return OpenSearchLLM(
        api_key=EMU_KEY,
        base_url="http://emulator.local/compatible-mode/v1",
        http_client=httpx.Client(transport=emu.transport()),
        async_http_client=httpx.AsyncClient(transport=emu.async_transport()),
        **fields,
    )


async def run_agent(agent: Any, message: str) -> tuple[Any, list[Any]]:
    handler = agent.run(user_msg=message)
    events = [event async for event in handler.stream_events()]
    return await handler, events


# --------------------------------------------------------------------------- FunctionAgent


@pytest.mark.parametrize("streaming", [True, False])
def test_function_agent_runs_two_tools_called_in_parallel(emu: Emulator, streaming: bool) -> None:
    agent = FunctionAgent(
        tools=TOOLS,
        llm=emu_llm(emu),
        streaming=streaming,
        system_prompt="You are a helpful assistant.",
    )
    result, events = asyncio.run(run_agent(agent, "use weather and clock please"))
    tool_results = [e for e in events if isinstance(e, ToolCallResult)]
    assert [(e.tool_name, e.tool_kwargs) for e in tool_results] == [
        ("weather", {"city": "sample city"}),
        ("clock", {"timezone": "sample timezone"}),
    ]
    assert str(result) == (
        "Tool results: weather returned sunny in sample city; clock returned noon in sample "
        "timezone"
    )
    first, second = (r.json for r in emu.requests)
    assert first["parallel_tool_calls"] is True
    assert first["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}
    assistant, *results = second["messages"][2:]
    ids = [call["id"] for call in assistant["tool_calls"]]
    assert [r["tool_call_id"] for r in results] == ids
    assert [r["content"] for r in results] == ["sunny in sample city", "noon in sample timezone"]
    if streaming:
        deltas = "".join(e.delta for e in events if isinstance(e, AgentStream))
        assert deltas.endswith("noon in sample timezone")


def test_function_agent_with_parallel_calls_in_one_chunk(service: ScriptedService) -> None:
    service.script(
        [
            chunk(
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        fragment(0, "call_w", "weather", '{"city": "New York"}'),
                        fragment(1, "call_c", "clock", '{"timezone": "America/New_York"}'),
                    ],
                }
            ),
            chunk({}, finish="tool_calls"),
            usage_chunk(),
        ],
        text_chunks("Sunny", " at noon."),
    )
    agent = FunctionAgent(tools=TOOLS, llm=service.llm())
    result, events = asyncio.run(run_agent(agent, "weather and time in New York"))
    assert [(e.tool_name, e.tool_kwargs) for e in events if isinstance(e, ToolCallResult)] == [
        ("weather", {"city": "New York"}),
        ("clock", {"timezone": "America/New_York"}),
    ]
    assert str(result) == "Sunny at noon."
    tool_messages = [m for m in service.last["messages"] if m["role"] == "tool"]
    assert [(m["tool_call_id"], m["content"]) for m in tool_messages] == [
        ("call_w", "sunny in New York"),
        ("call_c", "noon in America/New_York"),
    ]


# --------------------------------------------------------------------------- ReActAgent


def test_react_agent_loop(service: ScriptedService) -> None:
    action = 'Thought: I need the weather.\nAction: weather\nAction Input: {"city": "Paris"}'
    service.script(text_chunks(action), text_chunks("Thought: I can answer.\nAnswer: Sunny."))
    agent = ReActAgent(tools=TOOLS, llm=service.llm())
    result, events = asyncio.run(run_agent(agent, "Weather in Paris?"))
    assert [(e.tool_name, e.tool_kwargs) for e in events if isinstance(e, ToolCallResult)] == [
        ("weather", {"city": "Paris"})
    ]
    assert str(result) == "Sunny."
    assert "sunny in Paris" in str(service.last["messages"])


def test_react_agent_without_streaming(service: ScriptedService) -> None:
    from li_support import completion

    service.script(completion("Thought: I know this.\nAnswer: 42"))
    agent = ReActAgent(tools=TOOLS, llm=service.llm(), streaming=False)
    result, _ = asyncio.run(run_agent(agent, "Meaning of life?"))
    assert str(result) == "42"


# --------------------------------------------------------------------------- structured output


PROMPT = PromptTemplate("Make up an Album about {topic}")


@pytest.mark.parametrize("model", ["qwen-plus", "qwen3-32b"])
def test_structured_predict(calls: Calls, emu: Emulator, model: str) -> None:
    album = calls.call(emu_llm(emu, model=model), "structured_predict", Album, PROMPT, topic="cats")
    assert album == Album(name="sample name", year=1)
    assert emu.requests[-1].json["tool_choice"] == "required"


def test_stream_structured_predict(calls: Calls, emu: Emulator) -> None:
    partials = calls.stream(emu_llm(emu), "stream_structured_predict", Album, PROMPT, topic="cats")
    assert partials[-1].model_dump() == {"name": "sample name", "year": 1}


def test_stream_structured_predict_fills_the_object_from_the_prompt(
    calls: Calls, emu: Emulator
) -> None:
    """No ``tool_choice`` is sent: the emulator calls the tool the prompt asks for by topic."""
    prompt = PromptTemplate("Describe the album called {title}, released in {year}")
    partials = calls.stream(
        emu_llm(emu), "stream_structured_predict", Album, prompt, title="Blue Train", year=1958
    )
    assert "tool_choice" not in emu.requests[-1].json
    assert partials[-1] == Album(name="Blue Train", year=1958)


def test_as_structured_llm(calls: Calls, emu: Emulator) -> None:
    from llama_index.core.llms import ChatMessage

    structured = emu_llm(emu).as_structured_llm(Album)
    response = calls.chat(structured, [ChatMessage(role="user", content="An Album please")])
    assert response.raw == Album(name="sample name", year=1)


# --------------------------------------------------------------------------- query engine


@pytest.fixture
def local_settings(emu: Emulator) -> Iterator[OpenSearchLLM]:
    """Settings.llm and embed_model set for one test, then restored."""
    previous = (Settings._llm, Settings._embed_model)
    llm = emu_llm(emu)
    Settings.llm = llm
    Settings.embed_model = MockEmbedding(embed_dim=8)
    yield llm
    Settings._llm, Settings._embed_model = previous


@pytest.mark.parametrize("streaming", [False, True])
def test_vector_store_query_engine_answers_through_opensearch_llm(
    local_settings: OpenSearchLLM, emu: Emulator, streaming: bool
) -> None:
    docs = [
        Document(text="The OpenSearch LLM service hosts Qwen models."),
        Document(text="Singapore is a Model Studio region."),
    ]
    engine = VectorStoreIndex.from_documents(docs).as_query_engine(streaming=streaming)
    response = engine.query("Which models are hosted?")
    text = response.get_response().response if streaming else response.response  # type: ignore[union-attr]
    assert text is not None and text.startswith("You said: ")
    assert "Which models are hosted?" in text
    sent = emu.requests[-1].json
    assert sent["model"] == "qwen-plus"
    assert "Qwen models" in str(sent["messages"])
    assert emu.request_count == 1
