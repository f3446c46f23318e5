"""The embedding and rerank clients against the emulator (in process and served), sync and async."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest

from opensearch_llm import (
    AsyncEmbeddingClient,
    AsyncRerankClient,
    AuthenticationError,
    BadRequestError,
    EmbeddingClient,
    InternalServerError,
    RequestValidationError,
    RerankClient,
)
from opensearch_llm.emulator import Emulator, serve
from opensearch_llm.emulator._embeddings import dense_vector

from .support import BASE_URL, KEY, PASSAGES, Modes, cosine


async def test_many_texts_are_split_to_the_limit_and_come_back_in_order(mode: Modes) -> None:
    emulator = Emulator()
    client = mode.embedder(emulator, dimensions=128)
    texts = [f"passage number {i} about topic{i}" for i in range(47)]
    result = await mode.call(client, "embed", texts)
    sent = [request.json["input"] for request in emulator.requests]
    assert sorted(len(batch) for batch in sent) == [7, 10, 10, 10, 10]
    assert sorted(text for batch in sent for text in batch) == sorted(texts)
    assert all(request.json["encoding_format"] == "float" for request in emulator.requests)
    assert result.vectors == [dense_vector(text, 128) for text in texts]
    assert result.total_tokens == sum(len(text.split()) for text in texts)
    assert len(result.request_ids) == 5 and len(set(result.request_ids)) == 5


async def test_the_query_finds_its_passage(mode: Modes) -> None:
    client = mode.embedder()
    passages = (await mode.call(client, "embed", PASSAGES)).vectors
    query = (await mode.call(client, "embed", ["What is Havenask?"], input_type="query")).vectors[0]
    best = max(range(len(PASSAGES)), key=lambda i: cosine(query, passages[i]))
    assert PASSAGES[best].startswith("Havenask")


async def test_no_texts_sends_nothing(mode: Modes) -> None:
    emulator = Emulator()
    result = await mode.call(mode.embedder(emulator), "embed", [])
    assert result.vectors == [] and result.dimensions is None and emulator.request_count == 0


async def test_a_bad_text_sends_nothing(mode: Modes) -> None:
    emulator = Emulator()
    client = mode.embedder(emulator)
    with pytest.raises(RequestValidationError) as caught:
        await mode.call(client, "embed", ["fine"] * 15 + [""])
    assert caught.value.field == "texts[15]" and emulator.request_count == 0


async def test_a_failed_request_is_retried(mode: Modes) -> None:
    emulator = Emulator()
    emulator.script_faults(["503", None])
    result = await mode.call(mode.embedder(emulator), "embed", ["a", "b"])
    assert len(result.vectors) == 2 and emulator.request_count == 2


async def test_a_request_that_keeps_failing_raises_its_typed_error(mode: Modes) -> None:
    emulator = Emulator()
    emulator.script_faults(["500"] * 3)
    client = mode.embedder(emulator, max_retries=0, max_concurrency=1)
    with pytest.raises(InternalServerError) as caught:
        await mode.call(client, "embed", [f"t{i}" for i in range(30)])
    assert caught.value.status == 500 and caught.value.request_id


async def test_a_wrong_key_is_an_authentication_error_that_does_not_show_it(mode: Modes) -> None:
    client = mode.embedder(Emulator(api_key="the-right-key"), max_retries=0)
    with pytest.raises(AuthenticationError) as caught:
        await mode.call(client, "embed", ["a"])
    assert KEY not in str(caught.value) and KEY not in repr(client)


async def test_an_echoed_key_is_masked(mode: Modes) -> None:
    client = mode.embedder(default_headers={"X-Emulator-Fault": "echo-auth"}, max_retries=0)
    with pytest.raises(AuthenticationError) as caught:
        await mode.call(client, "embed", ["a"])
    assert KEY not in str(caught.value) and KEY not in str(caught.value.body)


async def test_platform_dense_and_sparse_services(mode: Modes) -> None:
    emulator = Emulator()
    dense = mode.embedder(emulator, model="ops-text-embedding-001")
    result = await mode.call(dense, "embed", [f"t{i}" for i in range(40)], input_type="document")
    assert result.dimensions == 1536 and len(result.vectors) == 40
    assert [len(r.json["input"]) for r in emulator.requests] in ([32, 8], [8, 32])
    assert {r.json["input_type"] for r in emulator.requests} == {"document"}
    sparse = mode.embedder(emulator, model="ops-text-sparse-embedding-001")
    found = await mode.call(sparse, "embed_sparse", ["engine engines"], return_token=True)
    assert list(found.tokens[0].values()) == ["engine"] and len(found.vectors[0]) == 1
    with pytest.raises(RequestValidationError, match=r"embed_sparse\(\)"):
        await mode.call(sparse, "embed", ["a"])


async def test_an_unknown_platform_service_is_a_bad_request(mode: Modes) -> None:
    client = mode.embedder(model="ops-text-embedding-999")
    with pytest.raises(BadRequestError) as caught:
        await mode.call(client, "embed", ["a"])
    assert caught.value.code == "ServiceIdNotExist" and caught.value.request_id


@pytest.mark.parametrize("model", ["qwen3-rerank", "gte-rerank-v2", "ops-bge-reranker-larger"])
async def test_rerank_returns_sorted_pairs_cut_to_top_n(mode: Modes, model: str) -> None:
    client = mode.reranker(model=model)
    documents = ["Cats sleep.", "Havenask is the engine behind OpenSearch.", "Havenask ranks well."]
    result = await mode.call(client, "rerank", "What is Havenask?", documents, top_n=2)
    assert [item.index for item in result.results] == [1, 2]
    assert result.results[0].score >= result.results[1].score and result.model == model


async def test_many_documents_are_split_and_merged(mode: Modes) -> None:
    emulator = Emulator()
    documents = [f"filler text {i}" for i in range(1200)]
    documents[1099] = "Havenask is the engine"
    result = await mode.call(
        mode.reranker(emulator), "rerank", "Havenask engine", documents, top_n=1
    )
    assert [item.index for item in result.results] == [1099]
    assert sorted(len(r.json["documents"]) for r in emulator.requests) == [200, 500, 500]
    assert all(r.path == "/compatible-api/v1/reranks" for r in emulator.requests)


async def test_rerank_with_instruct_and_retry(mode: Modes) -> None:
    emulator = Emulator()
    emulator.script_faults(["429"])
    client = mode.reranker(emulator, default_headers={"X-Emulator-Retry-After": "0"})
    result = await mode.call(
        client, "rerank", "q", ["q"], instruct="Retrieve semantically similar text."
    )
    assert result.results[0].index == 0 and emulator.request_count == 2
    assert emulator.requests[-1].json["instruct"] == "Retrieve semantically similar text."


def _answer(request: httpx.Request) -> httpx.Response:
    count = len(json.loads(request.content)["input"])
    return httpx.Response(
        200, json={"data": [{"index": i, "embedding": [1.0]} for i in range(count)]}
    )


def test_sync_requests_run_side_by_side_up_to_max_concurrency() -> None:
    in_flight, most = [0], [0]
    lock = threading.Lock()
    full = threading.Event()  # the first requests wait for each other: they must overlap

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            if in_flight[0] == 3:
                full.set()
        full.wait(timeout=5)
        with lock:
            in_flight[0] -= 1
        return _answer(request)

    client = Modes("sync").embedder(handler=handler, max_concurrency=3)
    assert len(client.embed(["t"] * 100).vectors) == 100
    assert most[0] == 3 and full.is_set()


async def test_async_requests_share_the_clients_bound_across_calls() -> None:
    in_flight, most = [0], [0]
    full = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        if in_flight[0] == 4:
            full.set()
        await asyncio.wait_for(full.wait(), timeout=5)
        in_flight[0] -= 1
        return _answer(request)

    client = Modes("async").embedder(handler=handler, max_concurrency=4)
    results = await asyncio.gather(*(client.embed(["t"] * 50) for _ in range(5)))
    assert [len(r.vectors) for r in results] == [50] * 5
    assert most[0] == 4


async def test_a_failure_cancels_the_requests_not_yet_sent() -> None:
    sent = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if len(sent) == 2:
            return httpx.Response(
                400, json={"error": {"code": "InvalidParameter", "message": "bad"}}
            )
        await asyncio.sleep(0.05)
        return httpx.Response(
            200, json={"data": [{"index": i, "embedding": [1.0]} for i in range(10)]}
        )

    client = Modes("async").embedder(handler=handler, max_concurrency=2)
    with pytest.raises(BadRequestError):
        await client.embed(["t"] * 100)
    await asyncio.sleep(0.1)
    assert len(sent) <= 3  # the other 8 requests were never sent


@pytest.mark.usefixtures("local_sockets")
def test_served_emulator_sync() -> None:
    emulator = Emulator()
    with serve(emulator) as server:
        with EmbeddingClient(KEY, base_url=server.compatible_base_url, dimensions=64) as client:
            assert len(client.embed(PASSAGES * 10).vectors) == 30
        with RerankClient(KEY, base_url=server.compatible_base_url) as reranker:
            assert reranker.rerank("Havenask", PASSAGES, top_n=1).results[0].index == 1
        with RerankClient(KEY, model="ops-qwen3-reranker-0.6b", host=server.origin) as ranker:
            assert ranker.rerank("Havenask", PASSAGES).results[0].index == 1
    assert emulator.connection_count <= 8 + 2  # pooled: at most one per thread, then reused


@pytest.mark.usefixtures("local_sockets")
async def test_served_emulator_async_on_aiohttp() -> None:
    with serve(Emulator()) as server:
        async with AsyncEmbeddingClient(
            KEY, model="ops-text-embedding-002", host=server.origin
        ) as client:
            result = await client.embed(PASSAGES * 20, input_type="document")
            assert len(result.vectors) == 60 and result.dimensions == 1024
        async with AsyncRerankClient(
            KEY, base_url=server.compatible_base_url, model="gte-rerank-v2"
        ) as reranker:
            assert (await reranker.rerank("Havenask", PASSAGES, top_n=1)).results[0].index == 1


def test_settings_are_checked_at_construction() -> None:
    with pytest.raises(RequestValidationError, match="dimensions"):
        EmbeddingClient(KEY, base_url=BASE_URL, dimensions=3)
    with pytest.raises(RequestValidationError, match="max_concurrency"):
        RerankClient(KEY, base_url=BASE_URL, max_concurrency=0)
    with pytest.raises(RequestValidationError, match="host"):
        EmbeddingClient(KEY, model="ops-text-embedding-001")
    client = EmbeddingClient(KEY, base_url=BASE_URL)
    assert (
        repr(client) == f"EmbeddingClient(model='text-embedding-v4', url='{BASE_URL}/embeddings')"
    )
    assert client.batch_size == 10 and client.model == "text-embedding-v4"
    client.close()


def test_the_platform_host_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENSEARCH_LLM_SEARCH_HOST", "http://search.example.com")
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", KEY)
    client = RerankClient(model="ops-text-reranker-001")
    assert (
        client.url
        == "http://search.example.com/v3/openapi/workspaces/default/ranker/ops-text-reranker-001"
    )
    client.close()
