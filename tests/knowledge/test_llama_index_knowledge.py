"""LlamaIndex: ``OpenSearchKnowledgeSynthesizer`` and ``OpenSearchKnowledgeRetriever``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from llama_index.core import Settings
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.response.schema import (
    AsyncStreamingResponse,
    Response,
    StreamingResponse,
)
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode

from llama_index_opensearch_llm.knowledge import (
    RESPONSE_METADATA_KEY,
    OpenSearchKnowledgeRetriever,
    OpenSearchKnowledgeSynthesizer,
)
from opensearch_llm import (
    ContentFilterError,
    MissingAPIKeyError,
    RequestValidationError,
    StreamError,
)
from opensearch_llm.emulator import Emulator
from opensearch_llm.knowledge import AccessKeyCredentials, KnowledgeClient
from tests.unit.pools import count_pools

from .support import APP, KEY

HOST = "http://emulator.local"
SECRET = "access-SECRET-llama-index-31"
NODES = [
    NodeWithScore(node=TextNode(text="OpenSearch is a search service", id_="n1"), score=0.9),
    NodeWithScore(node=TextNode(text="Havenask", id_="n2", metadata={"file": "h.txt"}), score=0.5),
]
SUMMARY = (
    "Answer to: what is it | Sources: OpenSearch is a search service | file: h.txt\n\nHavenask"
)


class FixedRetriever(BaseRetriever):
    """An inner retriever that always finds the same nodes."""

    def __init__(self, nodes: list[NodeWithScore]) -> None:
        self.nodes = nodes
        super().__init__()

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return list(self.nodes)


@pytest.fixture(autouse=True)
def _no_default_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail if anything resolves LlamaIndex's default LLM (OpenAI)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"Settings.llm was resolved: {args}")

    monkeypatch.setattr("llama_index.core.settings.resolve_llm", refuse)
    monkeypatch.setattr(Settings, "_llm", None)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    yield
    assert Settings._llm is None


@pytest.fixture
def emulator() -> Emulator:
    return Emulator()


def options(emulator: Emulator, **extra: Any) -> dict[str, Any]:
    return {
        "app": APP,
        "host": HOST,
        "api_key": KEY,
        "http_client": httpx.Client(transport=emulator.transport()),
        "async_http_client": httpx.AsyncClient(transport=emulator.async_transport()),
        **extra,
    }


def engine(emulator: Emulator, streaming: bool = False, **extra: Any) -> RetrieverQueryEngine:
    synthesizer = OpenSearchKnowledgeSynthesizer(streaming=streaming, **options(emulator, **extra))
    return RetrieverQueryEngine(FixedRetriever(NODES), response_synthesizer=synthesizer)


async def call(component: Any, name: str, mode: str, *args: Any) -> Any:
    """``component.<name>(*args)`` in sync mode, ``await component.a<name>(*args)`` in async."""
    if mode == "sync":
        return getattr(component, name)(*args)
    return await getattr(component, f"a{name}")(*args)


#: What a streaming query engine answers in each mode.
STREAMING_RESPONSE: dict[str, type[Any]] = {
    "sync": StreamingResponse,
    "async": AsyncStreamingResponse,
}


async def streamed_pieces(response: Any, mode: str) -> list[str]:
    """Every piece of a streaming response's answer."""
    if mode == "sync":
        return list(response.response_gen)
    return [piece async for piece in response.async_response_gen()]


async def test_query_engine(emulator: Emulator, mode: str) -> None:
    response = await call(engine(emulator, model="qwen-turbo"), "query", mode, "what is it")
    assert isinstance(response, Response) and response.response == SUMMARY
    assert type(response.response) is str
    assert [n.node.node_id for n in response.source_nodes] == ["n1", "n2"]
    details = response.metadata[RESPONSE_METADATA_KEY]  # type: ignore[index]
    assert details["request_id"] and details["model"] == "qwen-turbo"
    assert details["data"] == [{"answer": SUMMARY, "type": "text"}]
    assert emulator.requests[0].json["content"] == [
        "OpenSearch is a search service",
        "file: h.txt\n\nHavenask",
    ]


async def test_query_engine_streaming(emulator: Emulator, mode: str) -> None:
    response = await call(engine(emulator, streaming=True), "query", mode, "what is it")
    assert isinstance(response, STREAMING_RESPONSE[mode])
    pieces = await streamed_pieces(response, mode)
    assert len(pieces) > 3 and "".join(pieces) == SUMMARY
    assert len(response.source_nodes) == 2


def test_get_response_is_a_real_generator_that_sends_lazily(emulator: Emulator) -> None:
    synthesizer = OpenSearchKnowledgeSynthesizer(streaming=True, **options(emulator))
    generator = synthesizer.get_response("q", ["a b"])
    assert emulator.request_count == 0
    assert next(generator) == "Answer" and emulator.request_count == 1
    generator.close()  # early close releases the response


async def test_aget_response_plain(emulator: Emulator) -> None:
    synthesizer = OpenSearchKnowledgeSynthesizer(**options(emulator))
    answer = await synthesizer.aget_response("q", ["a", " "], csi_level="none", unknown=1)
    assert answer == "Answer to: q | Sources: a"
    assert emulator.requests[0].json["csi_level"] == "none"


def test_no_nodes_gives_the_empty_response_without_a_call(emulator: Emulator) -> None:
    synthesizer = OpenSearchKnowledgeSynthesizer(**options(emulator))
    response = RetrieverQueryEngine(FixedRetriever([]), response_synthesizer=synthesizer).query("q")
    assert str(response) == "Empty Response" and emulator.request_count == 0


def test_streaming_error_mid_answer(emulator: Emulator) -> None:
    headers = {"X-Emulator-Fault": "error-frame", "X-Emulator-Fault-After": "2"}
    response = engine(emulator, streaming=True, default_headers=headers).query("what is it")
    received: list[str] = []
    with pytest.raises(StreamError) as caught:
        for piece in response.response_gen:
            received.append(piece)
    assert received == ["Answer", " to:"] and caught.value.partial.answer == "Answer to:"


def test_errors_are_the_cores_typed_errors(emulator: Emulator) -> None:
    synthesizer = OpenSearchKnowledgeSynthesizer(**options(emulator, csi_level="loose"))
    with pytest.raises(ContentFilterError):
        synthesizer.get_response("[restricted]", ["x"])


def test_a_given_llm_or_client_is_used(emulator: Emulator) -> None:
    llm = MockLLM()
    client = KnowledgeClient(
        KEY, host=HOST, app=APP, http_client=httpx.Client(transport=emulator.transport())
    )
    synthesizer = OpenSearchKnowledgeSynthesizer(client=client, llm=llm)
    assert synthesizer._llm is llm
    assert synthesizer.get_response("q", ["a"]) == "Answer to: q | Sources: a"
    assert synthesizer.get_prompts() == {}
    synthesizer.update_prompts({})


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"host": HOST, "api_key": KEY}, "app"),
        ({"app": APP, "host": "not a url"}, "host"),
        ({"app": APP, "host": HOST, "csi_level": "strict"}, "csi_level"),
        ({"app": APP, "host": HOST, "auth": SECRET}, "auth"),
    ],
)
def test_settings_are_checked_at_construction(options: dict[str, Any], field: str) -> None:
    for cls in (OpenSearchKnowledgeSynthesizer, OpenSearchKnowledgeRetriever):
        with pytest.raises(RequestValidationError) as caught:
            cls(**options)
        assert caught.value.field == field
        assert SECRET not in str(caught.value)


def test_unknown_options_are_refused() -> None:
    with pytest.raises(TypeError, match="temperature"):
        OpenSearchKnowledgeSynthesizer(app=APP, host=HOST, temperature=0.5)  # type: ignore[call-arg]


async def test_a_missing_key_is_reported_on_the_first_call(emulator: Emulator) -> None:
    """As for the chat models: the components can be built without a key."""
    synthesizer = OpenSearchKnowledgeSynthesizer(**{**options(emulator), "api_key": None})
    retriever = OpenSearchKnowledgeRetriever(
        content=["x"], **{**options(emulator), "api_key": None}
    )
    with pytest.raises(MissingAPIKeyError, match="OPENSEARCH_LLM_API_KEY"):
        synthesizer.get_response("q", ["a"])
    with pytest.raises(MissingAPIKeyError):
        await synthesizer.aget_response("q", ["a"])
    with pytest.raises(MissingAPIKeyError):
        retriever.retrieve("q")
    assert emulator.request_count == 0


def test_secrets_are_never_shown() -> None:
    synthesizer = OpenSearchKnowledgeSynthesizer(
        host=HOST, app=APP, auth=AccessKeyCredentials("LTAI-id", SECRET)
    )
    retriever = OpenSearchKnowledgeRetriever(host=HOST, app=APP, api_key=KEY)
    texts = [repr(synthesizer), str(vars(synthesizer)), repr(retriever), str(vars(retriever))]
    texts += [str(vars(component._knowledge)) for component in (synthesizer, retriever)]
    assert not [t for t in texts if SECRET in t or KEY in t]


@pytest.mark.parametrize("kind", ["synthesizer", "retriever"])
async def test_close_and_aclose_release_the_pools_they_made(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, kind: str
) -> None:
    pools = count_pools(monkeypatch, emulator.transport(), emulator.async_transport())
    settings = {"app": APP, "host": HOST, "api_key": KEY}
    if kind == "synthesizer":
        component: Any = OpenSearchKnowledgeSynthesizer(**settings)
        for _ in range(2):
            assert component.get_response("q", ["a"]) == "Answer to: q | Sources: a"
            assert await component.aget_response("q", ["a"]) == "Answer to: q | Sources: a"
    else:
        component = OpenSearchKnowledgeRetriever(content=["a"], **settings)
        for _ in range(2):
            assert component.retrieve("q")[0].node.get_content() == "Answer to: q | Sources: a"
            assert (await component.aretrieve("q"))[0].node.get_content().startswith("Answer")
    assert pools.opened == (1, 1)
    component.close()
    await component.aclose()
    assert pools.closed == (1, 1)


# --------------------------------------------------------------------------- retriever


def _check_answer_node(nodes: list[NodeWithScore]) -> None:
    assert len(nodes) == 1
    node = nodes[0].node
    assert node.get_content() == SUMMARY
    assert node.metadata["request_id"] and node.metadata["latency"] is not None
    assert node.metadata["model"] is None
    assert [s["node_id"] for s in node.metadata["sources"]] == ["n1", "n2"]
    assert node.metadata["sources"][1] == {
        "node_id": "n2",
        "score": 0.5,
        "text": "Havenask",
        "metadata": {"file": "h.txt"},
    }
    # The answer's bookkeeping is not shown to an LLM or an embedding model.
    assert node.get_content(metadata_mode=MetadataMode.LLM) == SUMMARY
    assert node.get_content(metadata_mode=MetadataMode.EMBED) == SUMMARY


async def test_retriever(emulator: Emulator, mode: str) -> None:
    retriever = OpenSearchKnowledgeRetriever(FixedRetriever(NODES), **options(emulator))
    _check_answer_node(await call(retriever, "retrieve", mode, "what is it"))


def test_retriever_with_fixed_content_only(emulator: Emulator) -> None:
    retriever = OpenSearchKnowledgeRetriever(
        content=["fixed"], model="qwen-plus", **options(emulator)
    )
    node = retriever.retrieve("q")[0].node
    assert node.get_content() == "Answer to: q | Sources: fixed"
    assert node.metadata["sources"] == [] and node.metadata["model"] == "qwen-plus"
    assert emulator.requests[0].json["model"] == "qwen-plus"


def test_retriever_feeds_a_query_engine(emulator: Emulator) -> None:
    retriever = OpenSearchKnowledgeRetriever(FixedRetriever(NODES), **options(emulator))
    synthesizer = OpenSearchKnowledgeSynthesizer(**options(emulator))
    response = RetrieverQueryEngine(retriever, response_synthesizer=synthesizer).query("what is it")
    assert response.response.startswith("Answer to: what is it | Sources: Answer to: what is it")
