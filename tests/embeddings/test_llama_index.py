"""LlamaIndex: ``OpenSearchEmbedding`` in an index, ``OpenSearchRerank`` in a query engine."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import httpx
import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import NodeWithScore, TextNode

from llama_index_opensearch_llm import (
    OpenSearchEmbedding,
    OpenSearchKnowledgeSynthesizer,
    OpenSearchRerank,
)
from opensearch_llm import (
    AuthenticationError,
    EmbeddingClient,
    MissingAPIKeyError,
    RequestValidationError,
)
from opensearch_llm.emulator import Emulator, serve

from .support import BASE_URL, KEY, PASSAGES


def offline(emulator: Emulator | None = None, **options: Any) -> dict[str, Any]:
    emulator = emulator or Emulator()
    return {
        "api_key": KEY,
        "base_url": BASE_URL,
        "http_client": httpx.Client(transport=emulator.transport()),
        "async_http_client": httpx.AsyncClient(transport=emulator.async_transport()),
        **options,
    }


def nodes() -> list[TextNode]:
    return [TextNode(text=text, id_=f"passage-{n}") for n, text in enumerate(PASSAGES)]


def test_the_classes_are_the_frameworks_kinds() -> None:
    assert issubclass(OpenSearchEmbedding, BaseEmbedding)
    assert issubclass(OpenSearchRerank, BaseNodePostprocessor)
    assert OpenSearchEmbedding.class_name() == "OpenSearchEmbedding"


def test_an_index_retrieves_the_passage_a_query_is_about() -> None:
    index = VectorStoreIndex(nodes(), embed_model=OpenSearchEmbedding(**offline(dimensions=256)))
    (found,) = index.as_retriever(similarity_top_k=1).retrieve("What is Havenask?")
    assert found.node.node_id == "passage-1"


def test_embed_batch_size_is_what_the_core_gets_per_call_and_splits() -> None:
    emulator = Emulator()
    model = OpenSearchEmbedding(**offline(emulator, embed_batch_size=25))
    assert len(model.get_text_embedding_batch([f"t{i}" for i in range(60)])) == 60
    # LlamaIndex hands over 25, 25 and 10 texts; each call is split to 10 per request.
    assert sorted(len(request.json["input"]) for request in emulator.requests) == [
        5,
        5,
        10,
        10,
        10,
        10,
        10,
    ]


async def test_async_query_and_text_embeddings() -> None:
    emulator = Emulator()
    model = OpenSearchEmbedding(
        **offline(
            emulator,
            model_name="ops-text-embedding-en-001",
            base_url=None,
            host="http://search.local",
        )
    )
    texts = await model.aget_text_embedding_batch(PASSAGES * 40)
    query = await model.aget_query_embedding("Havenask")
    assert len(texts) == 120 and len(query) == 768
    assert emulator.requests[-1].json == {"input": ["Havenask"], "input_type": "query"}
    assert {r.json["input_type"] for r in emulator.requests[:-1]} == {"document"}
    assert len(await model.aget_text_embedding("one")) == 768


def test_rerank_in_a_query_engine() -> None:
    emulator = Emulator()
    index = VectorStoreIndex(nodes(), embed_model=OpenSearchEmbedding(**offline(emulator)))
    engine = RetrieverQueryEngine(
        index.as_retriever(similarity_top_k=3),
        response_synthesizer=OpenSearchKnowledgeSynthesizer(
            app="my_app",
            host="http://emulator.local",
            api_key=KEY,
            http_client=httpx.Client(transport=emulator.transport()),
        ),
        node_postprocessors=[OpenSearchRerank(**offline(emulator, top_n=1))],
    )
    response = engine.query("Which engine is behind OpenSearch?")
    assert [n.node.node_id for n in response.source_nodes] == ["passage-1"]
    assert 0 < (response.source_nodes[0].score or 0) <= 1
    assert str(response).endswith("Havenask is the search engine behind OpenSearch.")


async def test_rerank_async_on_the_platform_ranker() -> None:
    reranker = OpenSearchRerank(
        **offline(model="ops-bge-reranker-larger", base_url=None, host="http://s.local", top_n=None)
    )
    given = [NodeWithScore(node=node, score=0.5) for node in [TextNode(text=""), *nodes()]]
    ranked = await reranker.apostprocess_nodes(given, query_str="Qwen models")
    assert ranked[0].node.node_id == "passage-2" and len(ranked) == 3
    assert ranked[-1].score is not None and ranked[-1].score < 0  # ranker scores are not in [0, 1]
    with pytest.raises(RequestValidationError, match="query_str") as caught:
        reranker.postprocess_nodes(given)
    assert caught.value.field == "query_bundle" and caught.value.value is None
    assert reranker.postprocess_nodes([], query_str="q") == []


def test_settings_fail_at_construction_the_key_at_the_first_call() -> None:
    with pytest.raises(RequestValidationError, match="dimensions"):
        OpenSearchEmbedding(api_key=KEY, dimensions=100)
    with pytest.raises(RequestValidationError, match="OPENSEARCH_LLM_SEARCH_HOST"):
        OpenSearchRerank(api_key=KEY, model="ops-text-reranker-001")
    with pytest.raises(MissingAPIKeyError):
        OpenSearchEmbedding(base_url=BASE_URL).get_query_embedding("hi")


def test_the_key_never_shows_and_errors_are_typed() -> None:
    model = OpenSearchEmbedding(**offline(Emulator(api_key="other"), max_retries=0))
    assert KEY not in repr(model) and KEY not in str(model.to_dict())
    with pytest.raises(AuthenticationError) as caught:
        model.get_query_embedding("hi")
    assert KEY not in str(caught.value)


def test_copies_have_their_own_clients_and_settings_take_effect() -> None:
    model = OpenSearchEmbedding(**offline())
    first = model._sync_client(EmbeddingClient)
    assert copy.deepcopy(model)._sync_client(EmbeddingClient) is not first
    model.dimensions = 128
    assert len(model.get_query_embedding("hi")) == 128


@pytest.mark.usefixtures("local_sockets")
def test_on_the_default_transports() -> None:
    with serve(Emulator()) as server:
        model = OpenSearchEmbedding(api_key=KEY, base_url=server.compatible_base_url, dimensions=64)
        assert len(model.get_text_embedding_batch(PASSAGES * 30)) == 90
        assert len(asyncio.run(model.aget_query_embedding("hi"))) == 64
        model.close()
