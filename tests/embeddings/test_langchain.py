"""LangChain: ``OpenSearchEmbeddings`` (standard suites) and ``OpenSearchRerank`` in a retriever.

The standard integration suite runs against the emulator served on 127.0.0.1, or against the
live service when a key is set (``OPENSEARCH_LLM_API_KEY`` / ``DASHSCOPE_API_KEY``).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests
from pydantic import ValidationError

from langchain_opensearch_llm import (
    OpenSearchEmbeddings,
    OpenSearchLLMAuthenticationError,
    OpenSearchRerank,
)
from opensearch_llm import EmbeddingClient, MissingAPIKeyError
from opensearch_llm.emulator import Emulator, serve

from .support import BASE_URL, KEY, PASSAGES

LIVE_KEY = os.environ.get("OPENSEARCH_LLM_API_KEY") or os.environ.get("DASHSCOPE_API_KEY")
SERVED: dict[str, str] = {}


@pytest.fixture(scope="module")
def served_emulator() -> Iterator[str]:
    """The emulator on a local port for the whole module; its compatible-mode base URL."""
    with serve(Emulator()) as server:
        SERVED["base_url"] = server.compatible_base_url
        yield server.compatible_base_url


def offline(emulator: Emulator | None = None, **options: Any) -> dict[str, Any]:
    emulator = emulator or Emulator()
    return {
        "api_key": KEY,
        "base_url": BASE_URL,
        "http_client": httpx.Client(transport=emulator.transport()),
        "http_async_client": httpx.AsyncClient(transport=emulator.async_transport()),
        **options,
    }


class TestOpenSearchEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[OpenSearchEmbeddings]:
        return OpenSearchEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": "text-embedding-v4", "api_key": KEY}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"DASHSCOPE_API_KEY": "env-key", "OPENSEARCH_LLM_BASE_URL": "https://x.example/v1"},
            {"dimensions": 512},
            {"api_key": "env-key", "dimensions": 512, "model": "text-embedding-v4"},
        )


@pytest.mark.usefixtures("served_emulator", "local_sockets")
class TestOpenSearchEmbeddingsIntegration(EmbeddingsIntegrationTests):
    """Offline against the served emulator (the default aiohttp and httpx transports)."""

    @property
    def embeddings_class(self) -> type[OpenSearchEmbeddings]:
        return OpenSearchEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": "text-embedding-v4", "api_key": KEY, "base_url": SERVED["base_url"]}


@pytest.mark.live
@pytest.mark.skipif(not LIVE_KEY, reason="live: set OPENSEARCH_LLM_API_KEY or DASHSCOPE_API_KEY")
@pytest.mark.usefixtures("live_network")
class TestOpenSearchEmbeddingsLive(EmbeddingsIntegrationTests):
    """Against Model Studio (``OPENSEARCH_LLM_BASE_URL`` or Singapore) when a key is set."""

    @property
    def embeddings_class(self) -> type[OpenSearchEmbeddings]:
        return OpenSearchEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": "text-embedding-v4", "api_key": LIVE_KEY, "dimensions": 256}


@pytest.fixture
def live_network() -> None:
    from pytest_socket import enable_socket

    enable_socket()


# --------------------------------------------------------------------------- our own


def test_a_vector_store_finds_the_passage_a_query_is_about() -> None:
    store = InMemoryVectorStore(OpenSearchEmbeddings(**offline(dimensions=256)))
    store.add_documents([Document(text) for text in PASSAGES])
    (found,) = store.similarity_search("What is Havenask?", k=1)
    assert found.page_content.startswith("Havenask")


async def test_documents_and_queries_get_their_input_type_on_platform_services() -> None:
    emulator = Emulator()
    options = offline(emulator, model="ops-text-embedding-002", host="http://search.local")
    del options["base_url"]
    embeddings = OpenSearchEmbeddings(**options)
    assert len(embeddings.embed_documents(PASSAGES * 12)) == 36
    assert len(await embeddings.aembed_query("hello")) == 1024
    types = [request.json["input_type"] for request in emulator.requests]
    assert types == ["document", "document", "query"]
    assert [len(request.json["input"]) for request in emulator.requests] == [32, 4, 1]


def test_errors_are_the_langchain_flavoured_classes_and_hide_the_key() -> None:
    embeddings = OpenSearchEmbeddings(**offline(Emulator(api_key="other"), max_retries=0))
    with pytest.raises(OpenSearchLLMAuthenticationError) as caught:
        embeddings.embed_query("hi")
    assert KEY not in str(caught.value) and KEY not in repr(embeddings)
    assert KEY not in str(embeddings.model_dump())


def test_bad_settings_fail_at_construction_a_missing_key_at_the_first_call() -> None:
    # pydantic reports the core's RequestValidationError (a ValueError) as a ValidationError.
    with pytest.raises(ValidationError, match=r"Invalid dimensions: 100; allowed: one of 2048"):
        OpenSearchEmbeddings(api_key=KEY, dimensions=100)
    with pytest.raises(ValidationError, match="OPENSEARCH_LLM_SEARCH_HOST"):
        OpenSearchEmbeddings(api_key=KEY, model="ops-text-embedding-001")
    with pytest.raises(ValidationError, match="Invalid model"):
        OpenSearchRerank(api_key=KEY, model="bad model")
    with pytest.raises(ValidationError, match="dimension"):
        OpenSearchEmbeddings(api_key=KEY, dimension=512)  # type: ignore[call-arg]
    keyless = OpenSearchEmbeddings(base_url=BASE_URL)
    with pytest.raises(MissingAPIKeyError):
        keyless.embed_query("hi")


def test_a_copy_has_clients_of_its_own_and_a_new_setting_takes_effect() -> None:
    embeddings = OpenSearchEmbeddings(**offline())
    first = embeddings._sync_client(EmbeddingClient)
    clone = copy.deepcopy(embeddings)
    assert clone._sync_client(EmbeddingClient) is not first
    assert clone.http_client is embeddings.http_client
    embeddings.dimensions = 64
    assert len(embeddings.embed_query("hi")) == 64


def test_rerank_in_a_contextual_compression_retriever() -> None:
    emulator = Emulator()
    store = InMemoryVectorStore(OpenSearchEmbeddings(**offline(emulator)))
    store.add_documents([Document(text, metadata={"n": n}) for n, text in enumerate(PASSAGES)])
    retriever = ContextualCompressionRetriever(
        base_compressor=OpenSearchRerank(**offline(emulator, top_n=1)),
        base_retriever=store.as_retriever(search_kwargs={"k": 3}),
    )
    (best,) = retriever.invoke("Which engine is behind OpenSearch?")
    assert best.page_content.startswith("Havenask") and best.metadata["n"] == 1
    assert 0 < best.metadata["relevance_score"] <= 1
    assert emulator.requests[-1].path == "/compatible-api/v1/reranks"


async def test_rerank_async_keeps_every_document_when_top_n_is_none() -> None:
    reranker = OpenSearchRerank(**offline(model="gte-rerank-v2", top_n=None))
    documents = [Document(""), *(Document(text) for text in PASSAGES)]
    ranked = await reranker.acompress_documents(documents, "What is Havenask?")
    assert len(ranked) == 3  # the empty one has nothing to score
    scores = [document.metadata["relevance_score"] for document in ranked]
    assert scores == sorted(scores, reverse=True) and ranked[0].page_content.startswith("Havenask")
    assert await reranker.acompress_documents([], "q") == []


@pytest.mark.usefixtures("local_sockets", "served_emulator")
async def test_rerank_on_the_default_transports() -> None:
    reranker = OpenSearchRerank(api_key=KEY, base_url=SERVED["base_url"], top_n=2)
    documents = [Document(text) for text in PASSAGES]
    assert reranker.compress_documents(documents, "Havenask")[0].page_content.startswith("Havenask")
    assert (await reranker.acompress_documents(documents, "Qwen models"))[
        0
    ].page_content.startswith("Model")
    reranker.close()
    await reranker.aclose()
