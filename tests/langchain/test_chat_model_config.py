"""Fields, aliases, environment, tracing params, profile, serialization, pickling, public surface."""

from __future__ import annotations

import asyncio
import copy
import json
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langchain_core.load import dumpd, dumps, load, loads
from pydantic import SecretStr

import langchain_opensearch_llm
from langchain_opensearch_llm import ChatOpenSearchLLM
from opensearch_llm import get_profile
from opensearch_llm.emulator import Emulator, serve
from tests.langchain._helpers import merge
from tests.langchain.conftest import EMULATOR_BASE_URL
from tests.unit.pools import Pools, count_pools

LLMFactory = Callable[..., ChatOpenSearchLLM]


def test_public_surface() -> None:
    assert langchain_opensearch_llm.__all__ == [
        "ChatOpenSearchLLM",
        "KnowledgeQuery",
        "OpenSearchEmbeddings",
        "OpenSearchKnowledgeRetriever",
        "OpenSearchKnowledgeRunnable",
        "OpenSearchLLMAPIStatusError",
        "OpenSearchLLMAuthenticationError",
        "OpenSearchLLMConnectionError",
        "OpenSearchLLMContentFilterError",
        "OpenSearchLLMContextOverflowError",
        "OpenSearchLLMInvalidRequestError",
        "OpenSearchLLMNotFoundError",
        "OpenSearchLLMPermissionDeniedError",
        "OpenSearchLLMRateLimitError",
        "OpenSearchLLMResponseDecodeError",
        "OpenSearchLLMResponseTooLargeError",
        "OpenSearchLLMServerError",
        "OpenSearchLLMStreamError",
        "OpenSearchLLMTimeoutError",
        "OpenSearchRerank",
    ]


def test_import_pulls_in_neither_openai_nor_llama_index() -> None:
    code = (
        "import sys, langchain_opensearch_llm; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('openai', 'llama_index')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_defaults_and_aliases() -> None:
    llm = ChatOpenSearchLLM(api_key="k")
    assert llm.model_name == "qwen-plus"
    assert llm.stream_usage is True
    assert llm.max_retries == 2
    aliased = ChatOpenSearchLLM(
        model="qwen-max", dashscope_api_key="k2", stop_sequences=["x"], request_timeout=5
    )
    assert aliased.model_name == "qwen-max"
    assert aliased.api_key == SecretStr("k2")
    assert aliased.stop == ["x"]
    assert aliased.timeout == 5
    by_name = ChatOpenSearchLLM(model_name="qwen-turbo", api_key="k", stop=["y"], timeout=3)
    assert (by_name.model_name, by_name.stop, by_name.timeout) == ("qwen-turbo", ["y"], 3)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"OPENSEARCH_LLM_API_KEY": "first", "DASHSCOPE_API_KEY": "second"}, "first"),
        ({"DASHSCOPE_API_KEY": "second"}, "second"),
        ({}, None),
    ],
)
def test_api_key_from_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str | None
) -> None:
    monkeypatch.delenv("OPENSEARCH_LLM_API_KEY", raising=False)
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    llm = ChatOpenSearchLLM()
    assert (llm.api_key.get_secret_value() if llm.api_key else None) == expected


def test_default_headers_are_never_shown_nor_serialized() -> None:
    """They may carry credentials (an Authorization header, a signed token)."""
    secret = "Bearer sk-header-SECRET-42"
    llm = ChatOpenSearchLLM(api_key="k", default_headers={"Authorization": secret})
    texts = [
        repr(llm),
        str(llm),
        dumps(llm),
        json.dumps(dumpd(llm)),
        json.dumps(llm.model_dump(), default=str),
        llm.model_dump_json(),
    ]
    assert [text for text in texts if "SECRET" in text] == []
    assert llm.default_headers == {"Authorization": secret}


def test_key_never_shown() -> None:
    llm = ChatOpenSearchLLM(api_key="sk-very-secret")
    for text in (repr(llm), str(llm), dumps(llm), json.dumps(llm.model_dump(), default=str)):
        assert "sk-very-secret" not in text
    assert dumpd(llm)["kwargs"]["api_key"] == {
        "lc": 1,
        "type": "secret",
        "id": ["OPENSEARCH_LLM_API_KEY"],
    }


def test_unknown_constructor_keywords_go_to_model_kwargs() -> None:
    with pytest.warns(UserWarning, match="vendor_option"):
        llm = ChatOpenSearchLLM(api_key="k", vendor_option=1)
    assert llm.model_kwargs == {"vendor_option": 1}
    with pytest.raises(ValueError, match="temperature"):
        ChatOpenSearchLLM(api_key="k", model_kwargs={"temperature": 0.1})


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"base_url": "not a url"}, "base_url"),
        ({"region": "mars"}, "region"),
        ({"base_url": "https://x.example/v1", "region": "beijing"}, "base_url"),
        ({"top_p": 0}, "top_p"),
        ({"n": 9}, "n"),
    ],
)
def test_bad_settings_fail_at_construction(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ChatOpenSearchLLM(api_key="k", **settings)


def test_region_selects_the_base_url(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> None:
    urls: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return emulator.transport().handle_request(request)

    count_pools(monkeypatch, httpx.MockTransport(record), emulator.async_transport())
    assert ChatOpenSearchLLM(api_key="k", region="beijing").invoke("hi").content == "You said: hi"
    assert urls == ["https://dashscope.aliyuncs.com/compatible-mode/v1/chat/completions"]


def test_ls_params() -> None:
    llm = ChatOpenSearchLLM(
        api_key="k", model="qwen-max", temperature=0.2, max_tokens=9, stop="END"
    )
    assert llm._get_ls_params() == {
        "ls_provider": "opensearch_llm",
        "ls_model_name": "qwen-max",
        "ls_model_type": "chat",
        "ls_temperature": 0.2,
        "ls_max_tokens": 9,
        "ls_stop": ["END"],
    }
    assert llm._get_ls_params(model="qwen-turbo")["ls_model_name"] == "qwen-turbo"
    assert llm._llm_type == "opensearch-llm-chat"


@pytest.mark.parametrize("model", ["qwen-plus", "qwen-vl-max", "qwq-plus", "qwen2.5-7b-instruct"])
def test_profile(model: str) -> None:
    core = get_profile(model)
    profile = ChatOpenSearchLLM(api_key="k", model=model).profile
    assert profile is not None
    assert profile["max_input_tokens"] == core.context_window
    assert profile["max_output_tokens"] == core.max_output
    assert profile["tool_calling"] is core.tools
    assert profile["structured_output"] is core.json_schema
    assert profile["reasoning_output"] is (core.thinking != "none")
    assert profile["image_inputs"] is core.vision


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
def test_serialization_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", "from-env")
    llm = ChatOpenSearchLLM(
        api_key="k", model="qwen-max", temperature=0.4, enable_thinking=True, region="singapore"
    )
    text = dumps(llm)
    assert "from-env" not in text
    for allowed in ([ChatOpenSearchLLM], "all"):
        revived = loads(
            text,
            allowed_objects=allowed,
            valid_namespaces=["langchain_opensearch_llm"],
            secrets_from_env=True,
        )
        assert isinstance(revived, ChatOpenSearchLLM)
        assert revived.asdict() == llm.asdict()
        assert revived.api_key == SecretStr("from-env")
    revived = load(
        dumpd(llm),
        allowed_objects=[ChatOpenSearchLLM],
        valid_namespaces=["langchain_opensearch_llm"],
        secrets_map={"OPENSEARCH_LLM_API_KEY": "mapped"},
    )
    assert revived.api_key == SecretStr("mapped")


def test_default_load_refuses_the_model() -> None:
    with pytest.raises(ValueError, match="not allowed"):
        loads(dumps(ChatOpenSearchLLM(api_key="k")), allowed_objects="core")


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> Pools:
    """Every connection pool the models make (no httpx client injected) talks to the emulator."""
    return count_pools(monkeypatch, emulator.transport(), emulator.async_transport())


def _own_pools(**params: Any) -> ChatOpenSearchLLM:
    return ChatOpenSearchLLM(api_key="k", base_url=EMULATOR_BASE_URL, **params)


def test_pickle_drops_live_clients(make_llm: LLMFactory, pools: Pools) -> None:
    llm = _own_pools(temperature=0.7, model="qwen-max")
    llm.invoke("warm up")
    revived = pickle.loads(pickle.dumps(llm))
    assert (revived.model_name, revived.temperature) == ("qwen-max", 0.7)
    assert revived.api_key == llm.api_key
    assert revived.invoke("hi").content == "You said: hi"
    llm.invoke("again")
    assert pools.opened == (2, 0)  # the revived model made its own pool; the original kept its
    injected = make_llm()
    revived = pickle.loads(pickle.dumps(injected))
    assert revived.http_client is None  # injected clients hold sockets and locks
    assert injected.http_client is not None  # the original keeps its own


def test_copies_start_without_clients(make_llm: LLMFactory, pools: Pools) -> None:
    llm = _own_pools()
    llm.invoke("warm up")
    clones = [
        llm.model_copy(update={"model_name": "qwen-max"}),
        llm.model_copy(deep=True),
        copy.copy(llm),
        copy.deepcopy(llm),
    ]
    for number, clone in enumerate(clones, start=2):
        assert clone.invoke("hi").content == "You said: hi"
        assert pools.opened == (number, 0)  # each copy its own pool
    for clone in clones:
        clone.close()
    llm.invoke("still open")
    assert pools.closed == (4, 0) and not pools.sync[0].is_closed
    injected = make_llm()
    assert [c.http_client for c in (copy.copy(injected), copy.deepcopy(injected))] == [
        injected.http_client
    ] * 2


def test_one_async_pool_per_event_loop_each_closed_by_aclose(pools: Pools) -> None:
    llm = _own_pools()

    async def calls() -> list[Any]:
        replies = [(await llm.ainvoke("loop")).content for _ in range(2)]
        replies += [merge([c async for c in llm.astream("loop")]).content]
        await llm.aclose()
        return replies

    assert asyncio.run(calls()) == asyncio.run(calls()) == ["You said: loop"] * 3
    assert pools.opened == (0, 2)
    assert pools.closed == (0, 2)


def test_threads_with_their_own_event_loops_keep_their_own_pools(pools: Pools) -> None:
    """Two live loops calling in turn: neither replaces (and drops) the other's pool."""
    llm = _own_pools()
    barrier = threading.Barrier(2, timeout=30)
    replies: list[Any] = []

    async def calls() -> None:
        for _ in range(3):
            replies.append((await llm.ainvoke("thread")).content)
            barrier.wait()
        await llm.aclose()

    threads = [threading.Thread(target=asyncio.run, args=(calls(),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert replies == ["You said: thread"] * 6
    assert pools.opened == (0, 2)
    assert pools.closed == (0, 2)


def test_sync_call_inside_a_running_loop(make_llm: LLMFactory) -> None:
    """Jupyter: the sync methods work while an event loop runs (no asyncio.run inside)."""

    async def main() -> str:
        return str(make_llm().invoke("from a notebook").content)

    assert asyncio.run(main()) == "You said: from a notebook"


# --------------------------------------------------------------------------- hand-made streams


def _sse(*frames: dict[str, Any]) -> bytes:
    body = b"".join(b"data: " + json.dumps(frame).encode() + b"\n\n" for frame in frames)
    return body + b"data: [DONE]\n\n"


def _frame(
    tool_calls: list[dict[str, Any]] | None = None, finish: str | None = None
) -> dict[str, Any]:
    delta: dict[str, Any] = {"tool_calls": tool_calls} if tool_calls else {"content": ""}
    return {
        "id": "chatcmpl-x",
        "model": "qwen-plus",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


# Shapes seen from OpenAI-compatible services that break naive chunk merging.
SERVICE_STREAMS: dict[str, list[list[dict[str, Any]]]] = {
    "id-empty-string": [
        [
            {
                "index": 0,
                "id": "call_a",
                "type": "function",
                "function": {"name": "f", "arguments": ""},
            }
        ],
        [{"index": 0, "id": "", "type": "function", "function": {"arguments": '{"a": 1}'}}],
    ],
    "no-index": [
        [{"id": "call_a", "type": "function", "function": {"name": "f", "arguments": '{"a"'}}],
        [{"id": "", "function": {"name": None, "arguments": ": 1}"}}],
    ],
    "parallel-in-one-chunk": [
        [
            {
                "index": 0,
                "id": "call_a",
                "type": "function",
                "function": {"name": "f", "arguments": '{"a": 1}'},
            },
            {
                "index": 1,
                "id": "call_b",
                "type": "function",
                "function": {"name": "g", "arguments": "{}"},
            },
        ],
    ],
    "empty-function-object": [
        [
            {
                "index": 0,
                "id": "call_a",
                "type": "function",
                "function": {"name": "f", "arguments": '{"a": 1}'},
            }
        ],
        [{"index": 0, "id": "", "function": {}}],
    ],
}
EXPECTED = {
    "id-empty-string": [("call_a", "f", {"a": 1})],
    "no-index": [("call_a", "f", {"a": 1})],
    "parallel-in-one-chunk": [("call_a", "f", {"a": 1}), ("call_b", "g", {})],
    "empty-function-object": [("call_a", "f", {"a": 1})],
}


@pytest.mark.parametrize("shape", SERVICE_STREAMS)
async def test_service_tool_call_streams_end_to_end(shape: str) -> None:
    """ChatOpenAI's fault with this service: split tool-call fragments do not merge."""
    frames = [_frame(calls) for calls in SERVICE_STREAMS[shape]] + [_frame(finish="tool_calls")]
    body = _sse(*frames)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    llm = ChatOpenSearchLLM(
        api_key="k",
        base_url=EMULATOR_BASE_URL,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )
    for chunks in (list(llm.stream("x")), [c async for c in llm.astream("x")]):
        full = merge(chunks)
        assert [(c["id"], c["name"], c["args"]) for c in full.tool_calls] == EXPECTED[shape]
        assert full.invalid_tool_calls == []
        assert full.response_metadata["finish_reason"] == "tool_calls"


# --------------------------------------------------------------------------- connections


class _TrackedBody(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A streamed SSE body that records whether the client closed it."""

    def __init__(self, body: bytes) -> None:
        self.lines = body.split(b"\n\n")
        self.closed = False

    def __iter__(self) -> Any:
        for line in self.lines:
            yield line + b"\n\n"

    async def __aiter__(self) -> Any:
        for line in self.lines:
            yield line + b"\n\n"

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_breaking_out_of_a_stream_closes_the_response(mode: str) -> None:
    frames = [
        {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": f" {i}"}}]}
        for i in range(50)
    ]
    bodies: list[_TrackedBody] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(_TrackedBody(_sse(*frames)))
        return httpx.Response(200, stream=bodies[-1], headers={"content-type": "text/event-stream"})

    llm = ChatOpenSearchLLM(
        api_key="k",
        base_url=EMULATOR_BASE_URL,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )
    if mode == "sync":
        stream = llm.stream("x")
        assert next(stream).content == " 0"
        stream.close()
    else:
        astream = llm.astream("x")
        assert (await astream.__anext__()).content == " 0"
        await astream.aclose()
    assert bodies[0].closed


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_real_http_on_loopback(mode: str) -> None:
    """No injected client: the model's own pool, over a socket, closed by close()/aclose()."""
    with serve(Emulator()) as server:
        llm = ChatOpenSearchLLM(api_key="k", base_url=server.compatible_base_url)
        if mode == "sync":
            assert llm.invoke("over http").content == "You said: over http"
            assert merge(list(llm.stream("over http"))).content == "You said: over http"
            llm.close()
        else:
            assert (await llm.ainvoke("over http")).content == "You said: over http"
            chunks = [chunk async for chunk in llm.astream("over http")]
            assert merge(chunks).content == "You said: over http"
            await llm.aclose()
