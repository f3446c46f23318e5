"""The emulator's embedding and rerank routes, called with raw HTTP: paths, limits, error bodies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from opensearch_llm.emulator import Emulator
from opensearch_llm.emulator._embeddings import dense_vector, relevance, words

from .support import cosine

ORIGIN = "http://emulator.local"
AUTH = {"Authorization": "Bearer sk-test"}


@pytest.fixture
def http() -> httpx.Client:
    return httpx.Client(transport=Emulator().transport(), base_url=ORIGIN, headers=AUTH)


def embed(http: httpx.Client, **body: Any) -> httpx.Response:
    return http.post("/compatible-mode/v1/embeddings", json={"model": "text-embedding-v4", **body})


def test_eleven_inputs_get_the_documented_400(http: httpx.Client) -> None:
    response = embed(http, input=["a"] * 11)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == {
        "message": "<400> InternalError.Algo.InvalidParameter: Value error, batch size is invalid, "
        "it should not be larger than 10.: input.contents",
        "type": "InvalidParameter",
        "param": None,
        "code": "InvalidParameter",
    }
    assert body["id"] == body["request_id"] == response.headers["x-request-id"]
    assert embed(http, input=["a"] * 10).status_code == 200
    assert embed(http, model="text-embedding-v2", input=["a"] * 25).status_code == 200


def test_the_answer_has_the_documented_shape(http: httpx.Client) -> None:
    body = embed(http, input="hello world", dimensions=64, encoding_format="float").json()
    assert set(body) == {"data", "model", "object", "usage", "id"}
    (item,) = body["data"]
    assert item["index"] == 0 and item["object"] == "embedding" and len(item["embedding"]) == 64
    assert all(isinstance(value, float) and value != 0.0 for value in item["embedding"])
    assert body["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    assert len(embed(http, input="x").json()["data"][0]["embedding"]) == 1024  # the default


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"input": [[101, 2023]]}, "contents is neither str nor list of str"),
        ({"input": ["a", ""]}, "must not be empty"),
        ({"input": ["word " * 8193]}, "Range of input length should be [1, 8192]"),
        ({"input": "a", "dimensions": 100}, "dimensions should be one of"),
        ({"input": "a", "encoding_format": "base64"}, "only supports float"),
    ],
)
def test_bad_embedding_requests_are_400s(
    http: httpx.Client, body: dict[str, Any], message: str
) -> None:
    response = embed(http, **body)
    assert response.status_code == 400 and message in response.json()["error"]["message"]


def test_unknown_model_and_missing_key(http: httpx.Client) -> None:
    assert embed(http, model="text-embedding-v9", input="a").status_code == 404
    response = httpx.Client(transport=Emulator(api_key="right").transport()).post(
        ORIGIN + "/compatible-mode/v1/embeddings",
        json={"model": "text-embedding-v4", "input": "a"},
        headers={"Authorization": "Bearer wrong"},
    )
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


def test_vectors_are_deterministic_and_shared_words_bring_texts_close() -> None:
    a = dense_vector("OpenSearch is a search service of Alibaba Cloud.", 256)
    assert a == dense_vector("OpenSearch is a search service of Alibaba Cloud.", 256)
    query = dense_vector("What is OpenSearch?", 256)
    unrelated = dense_vector("Cats sleep most of the day.", 256)
    assert cosine(query, a) > 0.4 > 0.1 > abs(cosine(query, unrelated))
    assert abs(sum(v * v for v in a) - 1) < 1e-9


def test_words_drop_stop_words_and_plurals_and_split_chinese() -> None:
    assert words("What are the Engines?") == ["engine"]
    assert words("阿里云搜索") == ["阿", "里", "云", "搜", "索"]
    assert words("the a") == ["the", "a"]  # only stop words: kept


def test_relevance_prefers_the_text_about_the_query() -> None:
    query = "What is OpenSearch?"
    about = "OpenSearch is a distributed search service."
    mentions = "Havenask is the engine behind OpenSearch."
    assert relevance(query, about) > relevance(query, mentions) > relevance(query, "Cats.") == 0.0
    assert 0.0 <= relevance(query, mentions) <= 1.0


def test_compatible_and_native_rerank(http: httpx.Client) -> None:
    documents = ["Cats sleep.", "Havenask is the engine behind OpenSearch.", "Havenask ranks."]
    body = http.post(
        "/compatible-api/v1/reranks",
        json={
            "model": "qwen3-rerank",
            "query": "What is Havenask?",
            "documents": documents,
            "top_n": 2,
        },
    ).json()
    assert [r["index"] for r in body["results"]] == [1, 2]
    assert (
        body["object"] == "list"
        and body["model"] == "qwen3-rerank"
        and "document" not in body["results"][0]
    )
    native = http.post(
        "/api/v1/services/rerank/text-rerank/text-rerank",
        json={
            "model": "gte-rerank-v2",
            "input": {"query": "Havenask", "documents": documents},
            "parameters": {"return_documents": True},
        },
    ).json()
    assert native["output"]["results"][0]["document"] == {"text": documents[1]}
    assert native["usage"]["total_tokens"] == 3 + sum(len(d.split()) for d in documents)


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        (
            "/compatible-api/v1/reranks",
            {"model": "qwen3-rerank", "query": "q", "documents": ["d"] * 501},
            "InvalidParameter",
        ),
        (
            "/compatible-api/v1/reranks",
            {"model": "qwen3-rerank", "query": "", "documents": ["d"]},
            "InvalidParameter",
        ),
        (
            "/compatible-api/v1/reranks",
            {"model": "qwen3-rerank", "query": "q", "documents": ["d"], "top_n": 0},
            "InvalidParameter",
        ),
        (
            "/compatible-api/v1/reranks",
            {"model": "gte-rerank-v2", "query": "q", "documents": ["d"]},
            "model_not_found",
        ),
        (
            "/api/v1/services/rerank/text-rerank/text-rerank",
            {"model": "gte-rerank-v2", "input": {"query": "q q q", "documents": ["w " * 4000] * 8}},
            "InvalidParameter",
        ),
    ],
)
def test_bad_rerank_requests_get_flat_errors(
    http: httpx.Client, path: str, body: dict[str, Any], code: str
) -> None:
    response = http.post(path, json=body)
    assert response.status_code in (400, 404)
    assert response.json()["code"] == code and "request_id" in response.json()


def test_platform_services(http: httpx.Client) -> None:
    prefix = "/v3/openapi/workspaces/default"
    dense = http.post(
        f"{prefix}/text-embedding/ops-text-embedding-en-001",
        json={"input": ["a b"], "input_type": "query"},
    ).json()
    assert len(dense["result"]["embeddings"][0]["embedding"]) == 768 and dense["usage"] == {
        "token_count": 2
    }
    sparse = http.post(
        f"{prefix}/text-sparse-embedding/ops-text-sparse-embedding-001",
        json={"input": "engines engine", "return_token": True},
    ).json()
    (entry,) = sparse["result"]["sparse_embeddings"][0]["embedding"]
    assert entry["token"] == "engine" and entry["weight"] > 1  # both words are "engine"
    ranked = http.post(
        f"{prefix}/ranker/ops-bge-reranker-larger",
        json={"query": "Havenask", "docs": ["Cats.", "Havenask"]},
    ).json()
    assert [s["index"] for s in ranked["result"]["scores"]] == [1, 0]
    assert ranked["result"]["scores"][1]["score"] == -3.0 and ranked["usage"] == {"doc_count": 2}


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("text-embedding/ops-nope", {"input": "a"}, "ServiceIdNotExist"),
        ("ranker/ops-text-embedding-001", {"query": "q", "docs": ["d"]}, "ServiceIdNotExist"),
        (
            "text-embedding/ops-text-embedding-001",
            {"input": "a", "input_type": "passage"},
            "InvalidParameter",
        ),
        ("text-embedding/ops-text-embedding-001", {"input": ["a"] * 33}, "InvalidParameter"),
        (
            "text-sparse-embedding/ops-text-sparse-embedding-001",
            {"input": [""]},
            "InvalidParameter",
        ),
    ],
)
def test_platform_errors_have_the_platform_shape(
    http: httpx.Client, path: str, body: dict[str, Any], code: str
) -> None:
    response = http.post(f"/v3/openapi/workspaces/default/{path}", json=body)
    assert response.status_code == 400
    assert set(response.json()) == {"request_id", "latency", "code", "message"}
    assert response.json()["code"] == code


def test_unknown_platform_service_types_are_404(http: httpx.Client) -> None:
    assert http.post("/v3/openapi/workspaces/default/chat/ops-x", json={}).status_code == 404
