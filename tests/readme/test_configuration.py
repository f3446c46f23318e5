"""The configuration table of README.md, checked against behaviour: who reads which variable.

Requests go to ``httpx.MockTransport``s that record them (nothing leaves the process), or to
the emulator on 127.0.0.1 for the command line.
"""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from langchain_core.messages import HumanMessage
from llama_index.core.llms import ChatMessage

from langchain_opensearch_llm import ChatOpenSearchLLM
from langchain_opensearch_llm import OpenSearchKnowledgeRetriever as LCKnowledgeRetriever
from llama_index_opensearch_llm import OpenSearchKnowledgeRetriever as LIKnowledgeRetriever
from llama_index_opensearch_llm import OpenSearchLLM
from opensearch_llm import (
    REGION_BASE_URLS,
    ChatClient,
    KnowledgeClient,
    MissingAPIKeyError,
    RequestValidationError,
)
from opensearch_llm.cli import main as cli
from opensearch_llm.emulator import Emulator, serve

COMPLETION = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]}
ANSWER = {"request_id": "r", "latency": 0.1, "result": {"data": [{"answer": "ok"}]}, "errors": []}


class Recorder:
    """An httpx transport that answers every request and remembers it."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = ANSWER if "knowledge-llm" in request.url.path else COMPLETION
        return httpx.Response(200, json=body)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


HI = [{"role": "user", "content": "hi"}]


def test_key_comes_from_opensearch_llm_api_key_before_dashscope_api_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = Recorder()
    monkeypatch.setenv("DASHSCOPE_API_KEY", "dashscope-key")
    ChatClient(http_client=recorder.client()).create(model="qwen-plus", messages=HI)
    assert recorder.last.headers["authorization"] == "Bearer dashscope-key"
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", "opensearch-key")
    ChatClient(http_client=recorder.client()).create(model="qwen-plus", messages=HI)
    assert recorder.last.headers["authorization"] == "Bearer opensearch-key"


def test_no_key_names_both_variables() -> None:
    with pytest.raises(MissingAPIKeyError, match="OPENSEARCH_LLM_API_KEY or DASHSCOPE_API_KEY"):
        ChatClient()


def test_endpoint_default_region_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    ChatClient("k", http_client=recorder.client()).create(model="qwen-plus", messages=HI)
    assert str(recorder.last.url) == REGION_BASE_URLS["singapore"] + "/chat/completions"
    monkeypatch.setenv("OPENSEARCH_LLM_BASE_URL", "http://instance.example/compatible-mode/v1")
    ChatClient("k", http_client=recorder.client()).create(model="qwen-plus", messages=HI)
    assert str(recorder.last.url) == "http://instance.example/compatible-mode/v1/chat/completions"
    client = ChatClient("k", region="beijing", http_client=recorder.client())
    client.create(model="qwen-plus", messages=HI)
    assert str(recorder.last.url) == REGION_BASE_URLS["beijing"] + "/chat/completions"
    with pytest.raises(RequestValidationError, match="either base_url or region"):
        ChatClient("k", base_url="http://a.example/v1", region="beijing")


def test_both_adapters_read_key_and_endpoint_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", "env-key")
    monkeypatch.setenv("OPENSEARCH_LLM_BASE_URL", "http://gateway.example/api/v1")
    recorder = Recorder()
    ChatOpenSearchLLM(http_client=recorder.client()).invoke([HumanMessage("hi")])
    OpenSearchLLM(http_client=recorder.client()).chat([ChatMessage(role="user", content="hi")])
    assert [str(r.url) for r in recorder.requests] == [
        "http://gateway.example/api/v1/chat/completions"
    ] * 2
    assert {r.headers["authorization"] for r in recorder.requests} == {"Bearer env-key"}
    assert all(b'"model":"qwen-plus"' in r.content for r in recorder.requests)  # the default


def knowledge_calls(recorder: Recorder) -> list[Any]:
    return [
        lambda: KnowledgeClient(app="app", http_client=recorder.client()).answer("q", ["c"]),
        lambda: LCKnowledgeRetriever(app="app", http_client=recorder.client()).invoke("q"),
        lambda: LIKnowledgeRetriever(app="app", http_client=recorder.client()).retrieve("q"),
    ]


def test_knowledge_host_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", "env-key")
    monkeypatch.setenv("OPENSEARCH_LLM_KNOWLEDGE_HOST", "http://kb.example")
    recorder = Recorder()
    for call in knowledge_calls(recorder):
        call()
    urls = {str(r.url) for r in recorder.requests}
    assert urls == {"http://kb.example/v3/openapi/apps/app/actions/knowledge-llm"}
    assert len(recorder.requests) == 3


def test_knowledge_without_host_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RequestValidationError, match="OPENSEARCH_LLM_KNOWLEDGE_HOST"):
        KnowledgeClient("k", app="app")


def test_command_line_ask_reads_the_app_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator = Emulator()
    with serve(emulator) as server:
        monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", "env-key")
        monkeypatch.setenv("OPENSEARCH_LLM_KNOWLEDGE_HOST", server.origin)
        monkeypatch.setenv("OPENSEARCH_LLM_APP", "env_app")
        out, err = io.StringIO(), io.StringIO()
        assert cli(["ask", "What is OpenSearch?", "--content", "A search service."], out, err) == 0
    assert out.getvalue().strip() == "Answer to: What is OpenSearch? | Sources: A search service."
    assert emulator.requests[-1].path == "/v3/openapi/apps/env_app/actions/knowledge-llm"


def test_knowledge_client_reads_the_app_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENSEARCH_LLM_APP", "env_app")
    recorder = Recorder()
    KnowledgeClient("k", host="http://kb.example", http_client=recorder.client()).answer("q")
    assert recorder.last.url.path == "/v3/openapi/apps/env_app/actions/knowledge-llm"
