"""Malformed requests are rejected before anything is sent, with the field named.

One table of bad calls; each row runs through the core, sync and async (``create`` and
``stream``; ``answer`` and ``stream``), and, where the adapters take the same input, through
LangChain and LlamaIndex. Each must raise ``RequestValidationError`` whose ``field`` is the
row's, and the emulator's request log must stay empty.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pydantic
import pytest
from langchain_core.messages import HumanMessage
from llama_index.core.base.llms.types import ChatMessage

from langchain_opensearch_llm import (
    ChatOpenSearchLLM,
    OpenSearchKnowledgeRetriever,
    OpenSearchKnowledgeRunnable,
)
from llama_index_opensearch_llm import OpenSearchKnowledgeRetriever as LIKnowledgeRetriever
from llama_index_opensearch_llm import OpenSearchKnowledgeSynthesizer, OpenSearchLLM
from opensearch_llm import (
    AccessKeyCredentials,
    AsyncChatClient,
    AsyncKnowledgeClient,
    ChatClient,
    KnowledgeClient,
    RequestValidationError,
)
from opensearch_llm.emulator import Emulator, EmulatorServer
from tests.reliability.support import APP, CHAT_MODEL, KEY, PASSAGE, QUESTION
from tests.reliability.surfaces import NODES

USER = {"role": "user", "content": QUESTION}
SYSTEM = {"role": "system", "content": "Be brief."}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
ASSISTANT_CALLS = {"role": "assistant", "content": None, "tool_calls": [CALL]}


def _deep_schema(depth: int = 5_000) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def _tool(**function: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": "get_weather", **function}}


@dataclass(frozen=True)
class Bad:
    """A malformed request: what it sets, and the field the error must name.

    ``kind``: ``chat`` (keywords of ``create``/``stream`` over a valid call), ``chat-client``
    (keywords of the client), ``knowledge`` (keywords of ``answer``/``stream``) or
    ``knowledge-client``. ``adapters``: also through LangChain and LlamaIndex.
    """

    name: str
    #: The field the error must name.
    named: str
    given: dict[str, Any] = field(default_factory=dict)
    kind: str = "chat"
    adapters: bool = False
    #: Why it fails today (through the adapters); the lead removes it with the fix.
    bug: str | None = None
    adapter_bug: str | None = None


def chat(name: str, field_: str, **given: Any) -> Bad:
    """A bad chat call, through the core only."""
    return Bad(name, field_, given)


def param(name: str, field_: str, **given: Any) -> Bad:
    """A bad chat parameter, through the core and both adapters."""
    return Bad(name, field_, given, adapters=True)


def messages(name: str, field_: str, *wire: Any) -> Bad:
    """Bad messages, through the core."""
    return Bad(name, field_, {"messages": list(wire)})


def content(name: str, value: Any, field_: str = "messages[0].content") -> Bad:
    """A bad content of the one user message."""
    return Bad(name, field_, {"messages": [{"role": "user", "content": value}]})


CHAT_CALLS: tuple[Bad, ...] = (
    # --- messages: shape, roles and their order
    chat("no messages", "messages", messages=[]),
    chat("messages is a string", "messages", messages=QUESTION),
    chat("messages is one dict", "messages", messages=USER),
    messages("a message is a string", "messages[0]", QUESTION),
    messages("unknown role", "messages[0].role", {"role": "bot", "content": "hi"}),
    messages("no role", "messages[0].role", {"content": "hi"}),
    messages("role is not a string", "messages[0].role", {"role": 1, "content": "hi"}),
    messages("system after user", "messages[1].role", USER, SYSTEM),
    messages("two system messages", "messages[1].role", SYSTEM, SYSTEM, USER),
    messages(
        "tool message without tool_call_id",
        "messages[2].tool_call_id",
        USER,
        ASSISTANT_CALLS,
        {"role": "tool", "content": "sunny"},
    ),
    messages(
        "tool message with an empty tool_call_id",
        "messages[2].tool_call_id",
        USER,
        ASSISTANT_CALLS,
        {"role": "tool", "content": "sunny", "tool_call_id": ""},
    ),
    messages("name is not a string", "messages[0].name", {**USER, "name": 7}),
    messages(
        "tool_calls is not a list",
        "messages[1].tool_calls",
        USER,
        {"role": "assistant", "content": None, "tool_calls": CALL},
    ),
    messages(
        "a tool call without a function name",
        "messages[1].tool_calls[0]",
        USER,
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {}}]},
    ),
    messages(
        "empty assistant message without tool calls",
        "messages[1].content",
        USER,
        {"role": "assistant", "content": ""},
    ),
    # --- content
    content("empty content", ""),
    content("blank content", " \n\t"),
    content("content is None", None),
    messages("no content", "messages[0].content", {"role": "user"}),
    content("content is a number", 42),
    content("content is a dict", {"text": "hi"}),
    content("empty list of parts", []),
    content("unknown part type", [{"type": "hologram"}], "messages[0].content[0].type"),
    content("part is a string", ["hi"], "messages[0].content[0].type"),
    content("text part without text", [{"type": "text"}], "messages[0].content[0].text"),
    content(
        "text part with a number", [{"type": "text", "text": 3}], "messages[0].content[0].text"
    ),
    # --- model
    chat("empty model", "model", model=""),
    chat("blank model", "model", model="  "),
    chat("model is None", "model", model=None),
    chat("model is a number", "model", model=42),
    # --- parameters: types and ranges
    param("temperature 2", "temperature", temperature=2),
    param("temperature below 0", "temperature", temperature=-0.5),
    param("temperature is text", "temperature", temperature="hot"),
    param("temperature NaN", "temperature", temperature=math.nan),
    param("top_p 0", "top_p", top_p=0),
    param("top_p above 1", "top_p", top_p=1.01),
    param("presence_penalty 2.5", "presence_penalty", presence_penalty=2.5),
    param("frequency_penalty -3", "frequency_penalty", frequency_penalty=-3),
    param("max_tokens 0", "max_tokens", max_tokens=0),
    param("max_tokens 1.5", "max_tokens", max_tokens=1.5),
    param("max_tokens True", "max_tokens", max_tokens=True),
    param("max_tokens as text", "max_tokens", max_tokens="100"),
    param("max_completion_tokens 0", "max_completion_tokens", max_completion_tokens=0),
    param("n 0", "n", n=0),
    param("n 5", "n", n=5),
    param("seed -1", "seed", seed=-1),
    param("seed 2**64", "seed", seed=2**64),
    chat("stop empty", "stop", stop=""),
    param("stop list of numbers", "stop", stop=[1]),
    param("stop empty string in list", "stop", stop=["end", ""]),
    param("top_logprobs 21", "top_logprobs", top_logprobs=21),
    param("logprobs as text", "logprobs", logprobs="yes"),
    param("enable_thinking 1", "enable_thinking", enable_thinking=1),
    param("thinking_budget 0", "thinking_budget", thinking_budget=0),
    param("top_k -1", "top_k", top_k=-1),
    param("repetition_penalty 0", "repetition_penalty", repetition_penalty=0),
    param("user is a number", "user", user=42),
    param("parallel_tool_calls as text", "parallel_tool_calls", parallel_tool_calls="no"),
    param("stream_options is text", "stream_options", stream_options="usage"),
    param("extra_headers with a number", "extra_headers", extra_headers={"X-Trace": 1}),
    param("extra_body is a list", "extra_body", extra_body=[1]),
    chat("misspelt parameter", "temprature", temprature=0.5),
    # --- tools: a broken schema
    param("tools is a dict", "tools", tools=WEATHER),
    param("tool is a string", "tools[0]", tools=["get_weather"]),
    param("tool of another type", "tools[0]", tools=[{"type": "retrieval"}]),
    param("tool without function", "tools[0].function", tools=[{"type": "function"}]),
    param(
        "tool without name",
        "tools[0].function.name",
        tools=[{"type": "function", "function": {"parameters": {}}}],
    ),
    param("tool name with spaces", "tools[0].function.name", tools=[_tool(name="get weather")]),
    param("tool name too long", "tools[0].function.name", tools=[_tool(name="f" * 65)]),
    param("tool parameters a list", "tools[0].function.parameters", tools=[_tool(parameters=[])]),
    param(
        "tool properties a list",
        "tools[0].function.parameters",
        tools=[_tool(parameters={"type": "object", "properties": ["city"]})],
    ),
    param(
        "tool schema type a number",
        "tools[0].function.parameters",
        tools=[_tool(parameters={"type": 5})],
    ),
    # --- tool_choice
    param("tool_choice any", "tool_choice", tool_choice="any", tools=[WEATHER]),
    param("tool_choice required without tools", "tool_choice", tool_choice="required"),
    param(
        "tool_choice names an unknown tool",
        "tool_choice",
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    ),
    param("tool_choice dict without function", "tool_choice", tools=[WEATHER], tool_choice={}),
    param("tool_choice is a number", "tool_choice", tool_choice=5),
    chat(
        "forced tool_choice with a thinking model",
        "tool_choice",
        model="qwq-plus",
        tools=[WEATHER],
        tool_choice="required",
    ),
    # --- response_format
    param("response_format type xml", "response_format.type", response_format={"type": "xml"}),
    param(
        "json_schema without schema",
        "response_format.json_schema",
        response_format={"type": "json_schema", "json_schema": {"name": "x"}},
    ),
    param("response_format is text", "response_format", response_format="json"),
    # --- content that is not JSON-serializable
    param("extra_body with an object", "blob", extra_body={"blob": object()}),
    param("extra_body with a datetime", "when", extra_body={"when": datetime.datetime.now()}),
    messages("a message with a set", "messages", {**USER, "tags": {"a"}}),
    content(
        "an image part with bytes",
        [{"type": "image_url", "image_url": {"url": b"\x89PNG"}}],
        "messages[0].content[0].image_url",
    ),
    param(
        "a tool schema with an object default",
        "tools",
        tools=[_tool(parameters={"type": "object", "properties": {"x": {"default": object()}}})],
    ),
    Bad("extra_body with NaN", "x", {"extra_body": {"x": math.nan}}),
    Bad("extra_body with Infinity", "x", {"extra_body": {"x": math.inf}}),
    param("a tool schema nested 5,000 deep", "tools", tools=[_tool(parameters=_deep_schema())]),
    content(
        "a part type that is a list",
        [{"type": ["text"], "text": "hi"}],
        "messages[0].content[0].type",
    ),
    Bad("extra_body modalities a number", "modalities", {"extra_body": {"modalities": 5}}),
    # --- extra_body may not replace an argument of its own
    param("extra_body sets model", "extra_body", extra_body={"model": "qwen-max"}),
    param("extra_body sets messages", "extra_body", extra_body={"messages": []}),
    param("extra_body sets stream", "extra_body", extra_body={"stream": False}),
    # --- headers that cannot be sent
    param("extra_headers non-ASCII", "extra_headers", extra_headers={"X-Name": "café"}),
    param("extra_headers with a newline", "extra_headers", extra_headers={"X-A": "a\r\nB: b"}),
)

CHAT_CLIENTS: tuple[Bad, ...] = (
    Bad("unknown region", "region", {"region": "mars"}, "chat-client", adapters=True),
    Bad("empty region", "region", {"region": ""}, "chat-client", adapters=True),
    Bad("base_url ftp", "base_url", {"base_url": "ftp://example.com/v1"}, "chat-client", True),
    Bad(
        "base_url without scheme",
        "base_url",
        {"base_url": "dashscope-intl.aliyuncs.com/compatible-mode/v1"},
        "chat-client",
        True,
    ),
    Bad("base_url without host", "base_url", {"base_url": "http://"}, "chat-client", True),
    Bad("base_url with a space", "base_url", {"base_url": "http://a b/v1"}, "chat-client", True),
    Bad(
        "base_url and region",
        "base_url",
        {"base_url": "http://127.0.0.1:1/v1", "region": "beijing"},
        "chat-client",
        True,
    ),
    Bad("timeout 0", "timeout.read", {"timeout": 0}, "chat-client"),
    Bad(
        "stream_idle_timeout -1", "timeout.stream_idle", {"stream_idle_timeout": -1}, "chat-client"
    ),
    Bad("connect_timeout text", "timeout.connect", {"connect_timeout": "10"}, "chat-client"),
    Bad("max_retries -1", "max_retries", {"max_retries": -1}, "chat-client"),
    Bad("max_retries 1.5", "max_retries", {"max_retries": 1.5}, "chat-client"),
    Bad("timeout NaN", "timeout.read", {"timeout": math.nan}, "chat-client"),
    Bad("timeout Infinity", "timeout.read", {"timeout": math.inf}, "chat-client"),
    Bad(
        "default_headers non-ASCII",
        "default_headers",
        {"default_headers": {"X-Name": "café"}},
        "chat-client",
    ),
    Bad("api_key with a newline inside", "api_key", {"api_key": "sk-a\nb"}, "chat-client"),
    Bad("api_key non-ASCII", "api_key", {"api_key": "sk-clé"}, "chat-client"),
)

KNOWLEDGE_CALLS: tuple[Bad, ...] = (
    Bad("neither question nor prompt", "question", {"question": None}, "knowledge", True),
    Bad("empty question", "question", {"question": ""}, "knowledge", True),
    Bad("blank question", "question", {"question": "  "}, "knowledge"),
    Bad("question is a number", "question", {"question": 42}, "knowledge"),
    Bad("empty prompt", "prompt", {"prompt": ""}, "knowledge"),
    Bad("prompt is a number", "prompt", {"prompt": 5}, "knowledge"),
    Bad("content is a string", "content", {"content": PASSAGE}, "knowledge"),
    Bad("content is empty", "content", {"content": []}, "knowledge"),
    Bad("content is a dict", "content", {"content": {"a": PASSAGE}}, "knowledge"),
    Bad("a passage is a number", "content[0]", {"content": [1]}, "knowledge"),
    Bad("a passage is None", "content[1]", {"content": [PASSAGE, None]}, "knowledge"),
    Bad("unknown csi_level", "csi_level", {"csi_level": "strict"}, "knowledge"),
    Bad("empty model", "model", {"model": ""}, "knowledge"),
    Bad("type is a number", "type", {"type": 5}, "knowledge"),
    Bad("extra_body with an object", "blob", {"extra_body": {"blob": object()}}, "knowledge"),
    Bad("extra_body sets question", "extra_body", {"extra_body": {"question": "q"}}, "knowledge"),
    Bad("extra_body sets content", "extra_body", {"extra_body": {"content": []}}, "knowledge"),
    Bad(
        "extra_body options is text",
        "extra_body.options",
        {"extra_body": {"options": "stream"}},
        "knowledge",
    ),
)

KNOWLEDGE_CLIENTS: tuple[Bad, ...] = (
    Bad("no app", "app", {"app": None}, "knowledge-client", True),
    Bad("app with a space", "app", {"app": "my app"}, "knowledge-client", True),
    Bad("app with a slash", "app", {"app": "a/b"}, "knowledge-client", True),
    Bad("no host", "host", {"host": None}, "knowledge-client", True),
    Bad("host ftp", "host", {"host": "ftp://kb.example.com"}, "knowledge-client", True),
    Bad("host without scheme", "host", {"host": "kb.example.com"}, "knowledge-client", True),
    Bad("auth is a string", "auth", {"auth": "access-key"}, "knowledge-client"),
    Bad("timeout 0", "timeout.read", {"timeout": 0}, "knowledge-client"),
    Bad("max_retries -1", "max_retries", {"max_retries": -1}, "knowledge-client"),
)

ALL = CHAT_CALLS + CHAT_CLIENTS + KNOWLEDGE_CALLS + KNOWLEDGE_CLIENTS


def _params(rows: tuple[Bad, ...], *, adapters: bool = False) -> list[Any]:
    params = []
    for row in rows:
        bug = row.adapter_bug if adapters else row.bug
        marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
        params.append(pytest.param(row, id=row.name, marks=marks))
    return params


def named_field(error: BaseException) -> str:
    """The field a rejection names: ``RequestValidationError.field``.

    LangChain's classes are pydantic models: their constructors report a bad setting as a
    pydantic ``ValidationError`` (also a ``ValueError``) that carries our error in its context,
    or, for a field of the wrong type, names it in its location.
    """
    if isinstance(error, RequestValidationError):
        return error.field
    if isinstance(error, pydantic.ValidationError):
        detail = error.errors()[0]
        inner = detail.get("ctx", {}).get("error")
        if isinstance(inner, RequestValidationError):
            return inner.field
        return ".".join(str(part) for part in detail["loc"])
    raise AssertionError(f"not a RequestValidationError: {error!r}")


Attempt = Callable[[], Any]


async def _rejected(attempt: Attempt) -> Exception:
    """Run ``attempt`` (sync, or returning an awaitable or an async iterator) to its error."""
    try:
        result = attempt()
        if isinstance(result, Awaitable):
            result = await result
        if hasattr(result, "__aiter__"):
            result = [item async for item in result]
        elif hasattr(result, "__next__"):
            result = list(result)
    except Exception as error:
        return error
    pytest.fail(f"accepted: {result!r}")


async def _check(attempts: dict[str, Attempt], row: Bad, emulator: Emulator) -> None:
    for how, attempt in attempts.items():
        error = await _rejected(attempt)
        assert named_field(error) == row.named, f"{how}: named {named_field(error)!r}"
        assert row.named in str(error), f"{how}: the message does not name the field"
    assert emulator.request_count == 0, "a rejected request was sent"


# --------------------------------------------------------------------------- chat, core


def _chat_call(row: Bad) -> dict[str, Any]:
    return {"model": CHAT_MODEL, "messages": [USER], **row.given}


def _client_options(server: EmulatorServer, given: dict[str, Any]) -> dict[str, Any]:
    options = {"base_url": server.compatible_base_url, **given}
    if "region" in given and "base_url" not in given:
        del options["base_url"]
    return options


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("row", _params(CHAT_CALLS))
async def test_chat_call(row: Bad, mode: str, server: EmulatorServer, emulator: Emulator) -> None:
    cls = ChatClient if mode == "sync" else AsyncChatClient
    client = cls(KEY, base_url=server.compatible_base_url)
    call = _chat_call(row)
    try:
        await _check(
            {"create": lambda: client.create(**call), "stream": lambda: client.stream(**call)},
            row,
            emulator,
        )
    finally:
        await close(client)


async def close(client: Any) -> None:
    """``aclose`` an async client, ``close`` a sync one."""
    if hasattr(client, "aclose"):
        await client.aclose()
    else:
        client.close()


@pytest.mark.parametrize("row", _params(CHAT_CLIENTS))
async def test_chat_client(row: Bad, server: EmulatorServer, emulator: Emulator) -> None:
    options = {"api_key": KEY, **_client_options(server, row.given)}
    attempts: dict[str, Attempt] = {
        "ChatClient": lambda: ChatClient(**options),
        "AsyncChatClient": lambda: AsyncChatClient(**options),
    }
    await _check(attempts, row, emulator)


# --------------------------------------------------------------------------- chat, adapters


def _langchain_attempts(llm: ChatOpenSearchLLM, params: dict[str, Any]) -> dict[str, Attempt]:
    return {
        "invoke": lambda: llm.invoke(QUESTION, **params),
        "stream": lambda: llm.stream(QUESTION, **params),
        "ainvoke": lambda: llm.ainvoke(QUESTION, **params),
        "astream": lambda: llm.astream(QUESTION, **params),
    }


def _llama_index_attempts(llm: OpenSearchLLM, params: dict[str, Any]) -> dict[str, Attempt]:
    history = [ChatMessage(role="user", content=QUESTION)]
    return {
        "chat": lambda: llm.chat(history, **params),
        "stream_chat": lambda: llm.stream_chat(history, **params),
        "achat": lambda: llm.achat(history, **params),
        "astream_chat": lambda: llm.astream_chat(history, **params),
    }


@pytest.mark.parametrize("framework", ["langchain", "llama-index"])
@pytest.mark.parametrize("row", _params(tuple(r for r in CHAT_CALLS if r.adapters), adapters=True))
async def test_chat_param_through_adapters(
    row: Bad, framework: str, server: EmulatorServer, emulator: Emulator
) -> None:
    base_url = server.compatible_base_url
    llm: Any
    if framework == "langchain":
        llm = ChatOpenSearchLLM(model=CHAT_MODEL, api_key=KEY, base_url=base_url)
        attempts = _langchain_attempts(llm, row.given)
    else:
        llm = OpenSearchLLM(model=CHAT_MODEL, api_key=KEY, base_url=base_url)
        attempts = _llama_index_attempts(llm, row.given)
    try:
        await _check(attempts, row, emulator)
    finally:
        llm.close()
        await llm.aclose()


@pytest.mark.parametrize(
    ("framework", "history"),
    [
        ("langchain", [HumanMessage("")]),
        ("langchain", [HumanMessage(" ")]),
        ("llama-index", [ChatMessage(role="user", content="")]),
        ("llama-index", [ChatMessage(role="user", content="  ")]),
    ],
)
async def test_empty_message_through_adapters(
    framework: str, history: list[Any], server: EmulatorServer, emulator: Emulator
) -> None:
    row = Bad("empty content", "messages[0].content")
    base_url = server.compatible_base_url
    if framework == "langchain":
        llm: Any = ChatOpenSearchLLM(api_key=KEY, base_url=base_url)
        attempts = {"invoke": lambda: llm.invoke(history), "astream": lambda: llm.astream(history)}
    else:
        llm = OpenSearchLLM(api_key=KEY, base_url=base_url)
        attempts = {"chat": lambda: llm.chat(history), "astream": lambda: llm.astream_chat(history)}
    try:
        await _check(attempts, row, emulator)
    finally:
        llm.close()
        await llm.aclose()


@pytest.mark.parametrize("row", _params(tuple(r for r in CHAT_CLIENTS if r.adapters)))
async def test_chat_client_through_adapters(
    row: Bad, server: EmulatorServer, emulator: Emulator
) -> None:
    options = _client_options(server, row.given)
    attempts: dict[str, Attempt] = {
        "ChatOpenSearchLLM": lambda: ChatOpenSearchLLM(api_key=KEY, **options),
        "OpenSearchLLM": lambda: OpenSearchLLM(api_key=KEY, **options),
    }
    await _check(attempts, row, emulator)


# --------------------------------------------------------------------------- knowledge-llm


def _knowledge_call(row: Bad) -> dict[str, Any]:
    return {"question": QUESTION, "content": [PASSAGE], **row.given}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("row", _params(KNOWLEDGE_CALLS))
async def test_knowledge_call(
    row: Bad, mode: str, server: EmulatorServer, emulator: Emulator
) -> None:
    cls = KnowledgeClient if mode == "sync" else AsyncKnowledgeClient
    client = cls(KEY, host=server.origin, app=APP)
    call = _knowledge_call(row)
    try:
        attempts = {
            "answer": lambda: client.answer(**call),
            "stream": lambda: client.stream(**call),
        }
        await _check(attempts, row, emulator)
    finally:
        await close(client)


def _knowledge_adapters(server: EmulatorServer) -> dict[str, Any]:
    options = {"host": server.origin, "app": APP, "api_key": KEY}
    return {
        "langchain-retriever": OpenSearchKnowledgeRetriever(**options),
        "langchain-runnable": OpenSearchKnowledgeRunnable(**options),
        "llama-index-synthesizer": OpenSearchKnowledgeSynthesizer(**options),
        "llama-index-retriever": LIKnowledgeRetriever(**options),
    }


def _knowledge_adapter_attempts(objects: dict[str, Any], question: Any) -> dict[str, Attempt]:
    lc_retriever = objects["langchain-retriever"]
    runnable = objects["langchain-runnable"]
    synthesizer = objects["llama-index-synthesizer"]
    li_retriever = objects["llama-index-retriever"]
    query = {"question": question, "documents": [PASSAGE]}
    attempts: dict[str, Attempt] = {
        "OpenSearchKnowledgeRunnable.invoke": lambda: runnable.invoke(query),
        "OpenSearchKnowledgeRunnable.astream": lambda: runnable.astream(query),
    }
    if question is not None:  # the others always send the query as the question
        attempts |= {
            "OpenSearchKnowledgeRetriever.invoke": lambda: lc_retriever.invoke(question),
            "OpenSearchKnowledgeRetriever.ainvoke": lambda: lc_retriever.ainvoke(question),
            "OpenSearchKnowledgeSynthesizer.synthesize": lambda: synthesizer.synthesize(
                question, nodes=NODES
            ),
            "OpenSearchKnowledgeSynthesizer.asynthesize": lambda: synthesizer.asynthesize(
                question, nodes=NODES
            ),
            "LlamaIndex OpenSearchKnowledgeRetriever.retrieve": lambda: li_retriever.retrieve(
                question
            ),
        }
    return attempts


@pytest.mark.parametrize("row", _params(tuple(r for r in KNOWLEDGE_CALLS if r.adapters)))
async def test_knowledge_call_through_adapters(
    row: Bad, server: EmulatorServer, emulator: Emulator
) -> None:
    objects = _knowledge_adapters(server)
    try:
        await _check(_knowledge_adapter_attempts(objects, row.given["question"]), row, emulator)
    finally:
        await _close_knowledge_adapters(objects)


async def _close_knowledge_adapters(objects: dict[str, Any]) -> None:
    for obj in objects.values():
        obj.close()
        await obj.aclose()


def _knowledge_client_options(server: EmulatorServer, given: dict[str, Any]) -> dict[str, Any]:
    return {"host": server.origin, "app": APP, "api_key": KEY, **given}


@pytest.mark.parametrize("row", _params(KNOWLEDGE_CLIENTS))
async def test_knowledge_client(row: Bad, server: EmulatorServer, emulator: Emulator) -> None:
    options = _knowledge_client_options(server, row.given)
    attempts: dict[str, Attempt] = {
        "KnowledgeClient": lambda: KnowledgeClient(**options),
        "AsyncKnowledgeClient": lambda: AsyncKnowledgeClient(**options),
    }
    if row.adapters:
        attempts |= {
            "OpenSearchKnowledgeRetriever": lambda: OpenSearchKnowledgeRetriever(**options),
            "OpenSearchKnowledgeSynthesizer": lambda: OpenSearchKnowledgeSynthesizer(**options),
            "LlamaIndex OpenSearchKnowledgeRetriever": lambda: LIKnowledgeRetriever(**options),
        }
    await _check(attempts, row, emulator)


async def test_access_key_without_an_id(emulator: Emulator) -> None:
    row = Bad("empty access key id", "access_key_id")
    await _check(
        {"AccessKeyCredentials": lambda: AccessKeyCredentials("", "secret")}, row, emulator
    )


async def test_knowledge_runnable_rejects_a_document_of_another_type(
    server: EmulatorServer, emulator: Emulator
) -> None:
    runnable = OpenSearchKnowledgeRunnable(host=server.origin, app=APP, api_key=KEY)
    row = Bad("a document is a number", "documents[0]")
    try:
        await _check(
            {"invoke": lambda: runnable.invoke({"question": QUESTION, "documents": [1]})},
            row,
            emulator,
        )
    finally:
        runnable.close()


def test_the_table_is_large_enough() -> None:
    assert len(ALL) >= 40
    assert len({row.name for row in CHAT_CALLS}) == len(CHAT_CALLS)
