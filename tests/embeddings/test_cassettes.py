"""The clients replay the documented exchanges (``cassettes/``), sync and async.

Each cassette holds a response printed in the API docs and the request this package's client
sends for it; requests match on method, URL and JSON body, so a change to what the client sends
fails here. Credentials are never recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import vcr

from opensearch_llm import BadRequestError
from opensearch_llm._bodies import decode_response
from opensearch_llm.embeddings import AsyncEmbeddingClient, EmbeddingClient
from opensearch_llm.rerank import AsyncRerankClient, RerankClient

CASSETTES = Path(__file__).parent / "cassettes"
MODELSTUDIO = "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
PLATFORM = "http://default-j01.platform-cn-shanghai.opensearch.aliyuncs.com"
KEY = "replay-key-never-recorded"
RERANK_QUESTION = "What is a text rerank model?"
RERANK_DOCUMENTS = [
    "A text rerank model orders documents by their relevance to a query.",
    "Quantum computing is a frontier of computer science.",
    "Pretrained language models advanced text ranking.",
]

both_modes = pytest.mark.parametrize("mode", ["sync", "async"])

RECORDER = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    match_on=["method", "uri", "body"],
    filter_headers=["authorization"],
)


async def replay(
    name: str,
    mode: str,
    sync: type,
    asynchronous: type,
    options: dict[str, Any],
    method: str,
    *args: Any,
    **kwargs: Any,
) -> Any:
    with RECORDER.use_cassette(name) as cassette:
        if mode == "sync":
            with sync(KEY, max_retries=0, **options) as client:
                result = getattr(client, method)(*args, **kwargs)
        else:
            async with asynchronous(KEY, max_retries=0, **options) as client:
                result = await getattr(client, method)(*args, **kwargs)
        assert cassette.all_played
    return result


@both_modes
async def test_model_studio_embedding(mode: str) -> None:
    result = await replay(
        "compatible_embedding.yaml",
        mode,
        EmbeddingClient,
        AsyncEmbeddingClient,
        {"base_url": MODELSTUDIO},
        "embed",
        ["The clothes are of excellent quality and look beautiful."],
    )
    assert result.vectors == [[0.0023064255, -0.009327292, -0.0028842222]]
    assert result.total_tokens == 23 and result.request_ids == (
        "f62c2ae7-0906-9758-ab34-47c5764f07e2",
    )


@both_modes
async def test_platform_dense_embedding(mode: str) -> None:
    result = await replay(
        "platform_text_embedding.yaml",
        mode,
        EmbeddingClient,
        AsyncEmbeddingClient,
        {"model": "ops-text-embedding-001", "host": PLATFORM},
        "embed",
        ["OpenSearch is a search service of Alibaba Cloud."],
        input_type="document",
    )
    assert result.vectors == [[-0.02868066355586052, 0.022033605724573135]]
    assert result.total_tokens == 3072 and result.request_ids == (
        "B4AB89C8-B135-0000-A6F8-2BAB801A2CE4",
    )


@both_modes
async def test_platform_sparse_embedding(mode: str) -> None:
    result = await replay(
        "platform_sparse_embedding.yaml",
        mode,
        EmbeddingClient,
        AsyncEmbeddingClient,
        {"model": "ops-text-sparse-embedding-001", "host": PLATFORM},
        "embed_sparse",
        ["OpenSearch"],
        input_type="query",
    )
    assert result.vectors == [{6: 0.1014404296875, 163040: 0.2841796875}]
    assert result.tokens == [{}] and result.total_tokens == 11


@both_modes
async def test_platform_ranker(mode: str) -> None:
    result = await replay(
        "platform_ranker.yaml",
        mode,
        RerankClient,
        AsyncRerankClient,
        {"model": "ops-bge-reranker-larger", "host": PLATFORM},
        "rerank",
        "What is Havenask?",
        ["OpenSearch is a search service.", "Havenask is the engine behind OpenSearch."],
        top_n=1,
    )
    assert [(item.index, item.score) for item in result.results] == [(1, 1.37)]
    assert result.request_ids == ("450fcb80-f796-46c1-8d69-e1e86d29aa9f",)


@both_modes
async def test_compatible_rerank(mode: str) -> None:
    result = await replay(
        "compatible_rerank.yaml",
        mode,
        RerankClient,
        AsyncRerankClient,
        {"base_url": MODELSTUDIO},
        "rerank",
        RERANK_QUESTION,
        RERANK_DOCUMENTS,
        top_n=1,
    )
    assert [(item.index, item.score) for item in result.results] == [(0, 0.9334521178273196)]
    assert result.total_tokens == 0


@both_modes
async def test_native_rerank(mode: str) -> None:
    result = await replay(
        "native_rerank.yaml",
        mode,
        RerankClient,
        AsyncRerankClient,
        {"model": "gte-rerank-v2", "base_url": MODELSTUDIO},
        "rerank",
        RERANK_QUESTION,
        RERANK_DOCUMENTS,
        top_n=2,
    )
    assert [item.index for item in result.results] == [0, 2]
    assert result.total_tokens == 105 and result.request_ids == (
        "56a156f6-0000-0000-0000-000000000000",
    )


def test_the_reported_batch_size_error_is_a_typed_bad_request() -> None:
    body = {
        "error": {
            "message": "<400> InternalError.Algo.InvalidParameter: Value error, batch size is invalid, "
            "it should not be larger than 10.: input.contents",
            "type": "InvalidParameter",
            "param": None,
            "code": "InvalidParameter",
        },
        "id": "318cff27-0000",
        "request_id": "318cff27-0000",
    }
    with pytest.raises(BadRequestError) as caught:
        decode_response(400, json.dumps(body).encode(), {})
    assert caught.value.code == "InvalidParameter" and caught.value.request_id == "318cff27-0000"
    assert "larger than 10" in str(caught.value)


def test_no_cassette_holds_a_credential() -> None:
    for path in CASSETTES.glob("*.yaml"):
        text = path.read_text(encoding="utf-8").lower()
        assert "authorization" not in text.split("interactions:")[1] and "bearer" not in text
