"""Async embedding and rerank clients in one event loop after another, and pickled after use.

``asyncio.run`` twice (scripts, notebooks, test runners), Ray and multiprocessing (which pickle
the object they ship) must find a client as usable as a new one: the core classes and the four
framework classes, each against the served emulator on its default transports. Every call makes
more requests than ``max_concurrency`` lets out at once, so the requests wait for each other.
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from langchain_core.documents import Document
from llama_index.core.schema import NodeWithScore, TextNode

import langchain_opensearch_llm as lc
import llama_index_opensearch_llm as li
from opensearch_llm import AsyncEmbeddingClient, AsyncRerankClient
from opensearch_llm.emulator import Emulator, serve

from .support import KEY

TEXTS = [f"passage {i} about topic{i}" for i in range(30)]  # 3 requests of 10
DOCUMENTS = [f"filler text {i}" for i in range(1200)]  # 3 requests: 500, 500 and 200


@dataclass(frozen=True)
class Case:
    """An async client made on a base URL, and a call that returns how many results came back."""

    make: Callable[[str], Any]
    call: Callable[[Any], Awaitable[int]]
    expected: int


async def _core_embed(client: AsyncEmbeddingClient) -> int:
    return len((await client.embed(TEXTS)).vectors)


async def _core_rerank(client: AsyncRerankClient) -> int:
    return len((await client.rerank("filler", DOCUMENTS)).results)


async def _lc_embed(model: lc.OpenSearchEmbeddings) -> int:
    return len(await model.aembed_documents(TEXTS))


async def _lc_rerank(model: lc.OpenSearchRerank) -> int:
    documents = [Document(text) for text in DOCUMENTS]
    return len(await model.acompress_documents(documents, "filler"))


async def _li_embed(model: li.OpenSearchEmbedding) -> int:
    return len(await model.aget_text_embedding_batch(TEXTS))


async def _li_rerank(model: li.OpenSearchRerank) -> int:
    nodes = [NodeWithScore(node=TextNode(text=text)) for text in DOCUMENTS]
    return len(await model.apostprocess_nodes(nodes, query_str="filler"))


CASES = {
    "core-embed": Case(
        lambda url: AsyncEmbeddingClient(KEY, base_url=url, max_concurrency=2), _core_embed, 30
    ),
    "core-rerank": Case(
        lambda url: AsyncRerankClient(KEY, base_url=url, max_concurrency=1), _core_rerank, 1200
    ),
    "langchain-embed": Case(
        lambda url: lc.OpenSearchEmbeddings(api_key=KEY, base_url=url, max_concurrency=2),
        _lc_embed,
        30,
    ),
    "langchain-rerank": Case(
        lambda url: lc.OpenSearchRerank(api_key=KEY, base_url=url, max_concurrency=1, top_n=None),
        _lc_rerank,
        1200,
    ),
    "llama-index-embed": Case(
        lambda url: li.OpenSearchEmbedding(api_key=KEY, base_url=url, max_concurrency=2),
        _li_embed,
        30,
    ),
    "llama-index-rerank": Case(
        lambda url: li.OpenSearchRerank(api_key=KEY, base_url=url, max_concurrency=1, top_n=None),
        _li_rerank,
        1200,
    ),
}


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]


@pytest.mark.usefixtures("local_sockets")
def test_one_client_serves_one_event_loop_after_another(case: Case) -> None:
    emulator = Emulator()
    with serve(emulator) as server:
        client = case.make(server.compatible_base_url)
        assert asyncio.run(case.call(client)) == case.expected
        assert asyncio.run(case.call(client)) == case.expected
    assert emulator.request_count == 6


@pytest.mark.usefixtures("local_sockets")
def test_a_client_pickles_after_use_and_the_copy_works(case: Case) -> None:
    with serve(Emulator()) as server:
        client = case.make(server.compatible_base_url)
        assert asyncio.run(case.call(client)) == case.expected
        copied = pickle.loads(pickle.dumps(client))
        assert copied is not client
        assert asyncio.run(case.call(copied)) == case.expected
        assert asyncio.run(case.call(client)) == case.expected
