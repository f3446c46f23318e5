"""Pure tests of the embedding and rerank wire code: tables, checks, bodies, parsing, splitting."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opensearch_llm import RequestValidationError, ResponseDecodeError
from opensearch_llm._config import ConnectionOptions, resolve_host_url
from opensearch_llm._embeddings import (
    EMBEDDING_MODELS,
    MODEL_STUDIO_MAX_INPUTS,
    check_texts,
    combine,
    combine_sparse,
    embedding_model,
    embedding_plan,
    min_tokens,
    parse_response,
)
from opensearch_llm._rerank import (
    RERANK_MODELS,
    RerankModel,
    check_documents,
    max_tokens,
    rerank_batches,
    rerank_model,
    rerank_plan,
)
from opensearch_llm._rerank import combine as combine_rerank
from opensearch_llm._rerank import parse_response as parse_rerank
from opensearch_llm._services import (
    PLATFORM_MAX_BODY_BYTES,
    SEARCH_HOST_ENV_VAR,
    SEARCH_WORKSPACE_ENV_VAR,
    SERVICE_OPTION_NAMES,
    STREAM_OPTION_NAMES,
    items_by_index,
    modelstudio_root,
    resolve_endpoint,
)

BASE = "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
HOST = "http://search.example.com"


def bodies(requests: list[tuple[range, bytes]]) -> list[dict]:
    return [json.loads(body) for _, body in requests]


# --------------------------------------------------------------------------- embedding requests


def test_model_studio_requests_carry_at_most_ten_texts_in_order_with_float_encoding() -> None:
    plan = embedding_plan("text-embedding-v4", base_url=BASE)
    texts = [f"text {i}" for i in range(23)]
    requests = plan.requests(texts)
    assert [positions for positions, _ in requests] == [range(0, 10), range(10, 20), range(20, 23)]
    sent = bodies(requests)
    assert [t for body in sent for t in body["input"]] == texts
    assert all(body["encoding_format"] == "float" for body in sent)
    assert all(body["model"] == "text-embedding-v4" and "dimensions" not in body for body in sent)
    assert plan.url == BASE + "/embeddings"


def test_v1_and_v2_take_25_texts_and_the_platform_32() -> None:
    assert embedding_plan("text-embedding-v2", base_url=BASE).batch_size == 25
    assert embedding_plan("ops-text-embedding-001", host=HOST).batch_size == 32
    assert embedding_plan("text-embedding-v4", base_url=BASE, batch_size=4).batch_size == 4
    with pytest.raises(RequestValidationError, match=r"batch_size.*from 1 to 10"):
        embedding_plan("text-embedding-v4", base_url=BASE, batch_size=11)


def test_dimensions_are_checked_against_the_models_values() -> None:
    plan = embedding_plan("text-embedding-v4", base_url=BASE, dimensions=512)
    assert bodies(plan.requests(["a"]))[0]["dimensions"] == 512
    with pytest.raises(RequestValidationError, match=r"dimensions: 1000.*one of 2048, 1536, 1024"):
        embedding_plan("text-embedding-v4", base_url=BASE, dimensions=1000)
    with pytest.raises(RequestValidationError, match=r"dimensions: 2048.*one of 1024, 768"):
        embedding_plan("text-embedding-v3", base_url=BASE, dimensions=2048)
    with pytest.raises(RequestValidationError, match=r"fixed at 1536"):
        embedding_plan("text-embedding-v2", base_url=BASE, dimensions=1536)
    with pytest.raises(RequestValidationError, match=r"fixed at 768"):
        embedding_plan("ops-text-embedding-en-001", host=HOST, dimensions=768)
    with pytest.raises(RequestValidationError, match="dimensions"):
        embedding_plan("text-embedding-v4", base_url=BASE, dimensions=True)


@pytest.mark.parametrize(
    ("texts", "field", "allowed"),
    [
        (["ok", "", "ok"], "texts[1]", "non-blank"),
        (["ok", "ok", "  \n"], "texts[2]", "non-blank"),
        (["ok", [101, 2023]], "texts[1]", "token arrays"),
        ("a lone string", "texts", "a list of strings"),
    ],
)
def test_bad_texts_are_refused_by_position_before_sending(
    texts: object, field: str, allowed: str
) -> None:
    plan = embedding_plan("text-embedding-v4", base_url=BASE)
    with pytest.raises(RequestValidationError, match=allowed) as caught:
        plan.requests(texts)
    assert caught.value.field == field


def test_a_text_surely_over_the_token_limit_is_refused_by_position() -> None:
    model = EMBEDDING_MODELS["text-embedding-v4"]
    too_long = "word " * 8193
    with pytest.raises(RequestValidationError, match="at most 8192 tokens") as caught:
        check_texts(["short", "short", too_long], model)
    assert caught.value.field == "texts[2]"
    assert "word word" not in str(caught.value)  # the text itself is not repeated
    # Long in characters but few words: maybe within the limit, so left to the service.
    assert check_texts(["x" * 50_000], model) == ["x" * 50_000]


@given(st.text(max_size=300))
def test_min_tokens_counts_runs_of_letters_and_digits(text: str) -> None:
    # Never more than the whitespace-and-punctuation split gives: a lower bound for tokenizers
    # that end tokens where runs end.
    runs = min_tokens(text)
    assert runs <= len(text)
    pieces = [p for p in "".join(c if c.isalnum() else " " for c in text).split() if p]
    assert runs == len(pieces)


def test_platform_requests_carry_input_type_and_sparse_ones_return_token() -> None:
    dense = embedding_plan("ops-text-embedding-002", host=HOST, workspace="ws1")
    assert dense.url == HOST + "/v3/openapi/workspaces/ws1/text-embedding/ops-text-embedding-002"
    assert bodies(dense.requests(["a"], "query")) == [{"input": ["a"], "input_type": "query"}]
    assert bodies(dense.requests(["a"])) == [{"input": ["a"]}]
    sparse = embedding_plan("ops-text-sparse-embedding-001", host=HOST)
    assert sparse.url.endswith(
        "/workspaces/default/text-sparse-embedding/ops-text-sparse-embedding-001"
    )
    assert bodies(sparse.requests(["a"], "document", True)) == [
        {"input": ["a"], "input_type": "document", "return_token": True}
    ]
    # Model Studio's compatible API has no input type: it is not sent.
    assert "input_type" not in bodies(embedding_plan(base_url=BASE).requests(["a"], "query"))[0]
    with pytest.raises(RequestValidationError, match="input_type"):
        dense.requests(["a"], "passage")


def test_platform_requests_over_eight_megabytes_are_refused() -> None:
    plan = embedding_plan("ops-qwen3-embedding-0.6b", host=HOST)
    text = "é" * (PLATFORM_MAX_BODY_BYTES // 2 // 32 + 1000)
    with pytest.raises(RequestValidationError, match="at most 8388608 bytes"):
        plan.requests([text] * 32)


def test_unknown_models_get_their_familys_api_and_limits() -> None:
    assert embedding_model("text-embedding-v9").api == "compatible"
    assert embedding_model("text-embedding-v9").max_inputs == MODEL_STUDIO_MAX_INPUTS == 10
    assert embedding_plan("text-embedding-v9", base_url=BASE).batch_size == 10
    assert embedding_model("ops-text-embedding-003").api == "opensearch"
    assert embedding_model("ops-text-sparse-embedding-002").sparse
    with pytest.raises(RequestValidationError, match="model"):
        embedding_model("../etc/passwd")


# --------------------------------------------------------------------------- endpoints


def test_endpoints_come_from_arguments_or_environment_and_wrong_kinds_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(RequestValidationError, match=SEARCH_HOST_ENV_VAR):
        resolve_endpoint(True)
    monkeypatch.setenv(SEARCH_HOST_ENV_VAR, HOST + "/")
    monkeypatch.setenv(SEARCH_WORKSPACE_ENV_VAR, "team")
    endpoint = resolve_endpoint(True)
    assert (endpoint.base, endpoint.workspace) == (HOST, "team")
    with pytest.raises(RequestValidationError, match=r"base_url.*pass host="):
        resolve_endpoint(True, base_url=BASE)
    with pytest.raises(RequestValidationError, match=r"host.*pass base_url="):
        resolve_endpoint(False, host=HOST)
    with pytest.raises(RequestValidationError, match="workspace"):
        resolve_endpoint(True, workspace="a/b")
    with pytest.raises(RequestValidationError, match="absolute http") as caught:
        resolve_endpoint(True, host="search.example.com")
    assert caught.value.field == "host"
    assert resolve_endpoint(False, region="beijing").base.startswith("https://dashscope.aliyuncs")


def test_a_host_comes_from_the_argument_or_its_environment_variable() -> None:
    resolve = {"env_var": "MY_HOST", "example": "http://<id>.example.com", "hint": "Set it."}
    assert resolve_host_url("http://h.example/", env={}, **resolve) == "http://h.example"
    assert resolve_host_url(None, env={"MY_HOST": "https://e.example"}, **resolve) == (
        "https://e.example"
    )
    with pytest.raises(RequestValidationError, match=r"http://<id>\.example\.com.*Set it\."):
        resolve_host_url(None, env={"MY_HOST": ""}, **resolve)
    for bad in ("h.example", "ftp://h", "http://", "http://a b"):
        with pytest.raises(RequestValidationError) as caught:
            resolve_host_url(bad, env={}, **resolve)
        assert caught.value.field == "host" and caught.value.value == bad


def test_service_options_are_the_connection_options_but_the_stream_ones() -> None:
    connection = set(ConnectionOptions.__annotations__)
    assert set(STREAM_OPTION_NAMES) < connection
    own = {"api_key", "base_url", "region", "host", "workspace", "max_concurrency"}
    assert set(SERVICE_OPTION_NAMES) == own | (connection - set(STREAM_OPTION_NAMES))


def test_rerank_urls_hang_off_the_model_studio_root() -> None:
    assert modelstudio_root(BASE) == "https://dashscope-intl.aliyuncs.com"
    assert rerank_plan(base_url=BASE).url == (
        "https://dashscope-intl.aliyuncs.com/compatible-api/v1/reranks"
    )
    assert rerank_plan("gte-rerank-v2", base_url=BASE).url == (
        "https://dashscope-intl.aliyuncs.com/api/v1/services/rerank/text-rerank/text-rerank"
    )
    assert rerank_plan("ops-bge-reranker-larger", host=HOST).url == (
        HOST + "/v3/openapi/workspaces/default/ranker/ops-bge-reranker-larger"
    )
    assert (
        rerank_model("gte-rerank").api == "native"
        and rerank_model("qwen3.7-rerank").api == "compatible"
    )


# --------------------------------------------------------------------------- embedding responses


def test_vectors_are_placed_by_index_not_by_list_order() -> None:
    model = EMBEDDING_MODELS["text-embedding-v4"]
    data = [{"index": i, "embedding": [float(i)], "object": "embedding"} for i in range(5)]
    random.Random(3).shuffle(data)
    body = {"data": data, "usage": {"total_tokens": 9}, "id": "req-1"}
    batch = parse_response(model, body, {}, 5)
    assert batch.vectors == [[0.0], [1.0], [2.0], [3.0], [4.0]]
    assert (batch.total_tokens, batch.request_id) == (9, "req-1")


@pytest.mark.parametrize(
    "data",
    [
        [{"index": 0, "embedding": [1.0]}],  # one missing
        [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}],  # duplicate
        [{"index": 0, "embedding": [1.0]}, {"index": 5, "embedding": [2.0]}],  # out of range
        [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": "AAAA"}],  # base64
        None,
    ],
)
def test_a_response_that_does_not_give_each_text_one_vector_is_a_decode_error(data: object) -> None:
    with pytest.raises(ResponseDecodeError):
        parse_response(EMBEDDING_MODELS["text-embedding-v4"], {"data": data}, {}, 2)


def test_platform_responses_dense_and_sparse() -> None:
    dense = EMBEDDING_MODELS["ops-text-embedding-001"]
    body = {
        "request_id": "B4AB89C8",
        "latency": 38,
        "usage": {"token_count": 3072},
        "result": {"embeddings": [{"index": 0, "embedding": [-0.028, 0.022]}]},
    }
    batch = parse_response(dense, body, {}, 1)
    assert (batch.vectors, batch.total_tokens, batch.request_id) == (
        [[-0.028, 0.022]],
        3072,
        "B4AB89C8",
    )
    sparse = EMBEDDING_MODELS["ops-text-sparse-embedding-001"]
    entries = [{"token_id": 6, "weight": 0.1, "token": "a"}, {"token_id": 9, "weight": 0.2}]
    body = {
        "request_id": "D",
        "usage": {"token_count": 2},
        "result": {"sparse_embeddings": [{"index": 0, "embedding": entries}]},
    }
    result = combine_sparse(sparse, [parse_response(sparse, body, {}, 1)])
    assert result.vectors == [{6: 0.1, 9: 0.2}] and result.tokens == [{6: "a"}]
    with pytest.raises(ResponseDecodeError, match="token_id and weight"):
        bad = {"result": {"sparse_embeddings": [{"index": 0, "embedding": [{"weight": 1}]}]}}
        parse_response(sparse, bad, {}, 1)


def test_combined_results_add_usage_and_keep_each_request_id() -> None:
    model = EMBEDDING_MODELS["text-embedding-v4"]
    first = parse_response(
        model,
        {"data": [{"index": 0, "embedding": [1.0]}], "usage": {"total_tokens": 2}, "id": "a"},
        {},
        1,
    )
    second = parse_response(
        model, {"data": [{"index": 0, "embedding": [2.0]}]}, {"x-request-id": "b"}, 1
    )
    result = combine(model, [first, second])
    assert result.vectors == [[1.0], [2.0]] and result.total_tokens == 2
    assert result.request_ids == ("a", "b") and result.dimensions == 1


def test_sparse_results_without_tokens_give_each_text_a_dict_of_its_own() -> None:
    sparse = EMBEDDING_MODELS["ops-text-sparse-embedding-001"]
    items = [{"index": i, "embedding": [{"token_id": i, "weight": 0.5}]} for i in range(3)]
    body = {"result": {"sparse_embeddings": items}}
    result = combine_sparse(sparse, [parse_response(sparse, body, {}, 3)])
    assert result.tokens == [{}, {}, {}]
    result.tokens[0][7] = "mine"
    assert result.tokens[1:] == [{}, {}]


def test_items_by_index_rejects_a_non_list() -> None:
    with pytest.raises(ResponseDecodeError, match="expected 1 things, got dict"):
        items_by_index({}, 1, "things")


# --------------------------------------------------------------------------- rerank requests


def test_rerank_bodies_of_the_three_apis() -> None:
    compatible = rerank_plan(base_url=BASE)
    top, requests = compatible.requests("q", ["a", "b"], top_n=1, instruct="Retrieve similar text.")
    assert top == 1 and bodies(requests) == [
        {
            "model": "qwen3-rerank",
            "query": "q",
            "documents": ["a", "b"],
            "top_n": 1,
            "instruct": "Retrieve similar text.",
        }
    ]
    native = rerank_plan("gte-rerank-v2", base_url=BASE)
    assert bodies(native.requests("q", ["a"])[1]) == [
        {"model": "gte-rerank-v2", "input": {"query": "q", "documents": ["a"]}}
    ]
    assert bodies(native.requests("q", ["a", "b", "c"], top_n=2)[1])[0]["parameters"] == {
        "top_n": 2
    }
    ranker = rerank_plan("ops-text-reranker-001", host=HOST)
    assert bodies(ranker.requests("q", ["a"], top_n=1)[1]) == [{"query": "q", "docs": ["a"]}]
    with pytest.raises(RequestValidationError, match=r"instruct.*no instruction"):
        ranker.requests("q", ["a"], instruct="x")


@pytest.mark.parametrize(
    ("query", "documents", "field"),
    [
        ("", ["a"], "query"),
        ("q", [], "documents"),
        ("q", ["a", " "], "documents[1]"),
        ("q", ["a", None], "documents[1]"),
        ("q", "a", "documents"),
    ],
)
def test_bad_rerank_input_is_refused(query: str, documents: object, field: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        rerank_plan(base_url=BASE).requests(query, documents)
    assert caught.value.field == field


def test_top_n_must_be_a_positive_integer() -> None:
    with pytest.raises(RequestValidationError, match="top_n"):
        rerank_plan(base_url=BASE).requests("q", ["a"], top_n=0)


def test_rerank_splits_at_the_document_limit_and_sends_top_n_per_request() -> None:
    top, requests = rerank_plan(base_url=BASE).requests("q", ["d"] * 1203, top_n=700)
    assert [positions for positions, _ in requests] == [
        range(0, 500),
        range(500, 1000),
        range(1000, 1203),
    ]
    assert [body["top_n"] for body in bodies(requests)] == [500, 500, 203]
    assert top == 700


@given(
    st.lists(st.text(min_size=1, max_size=3000), min_size=1, max_size=60),
    st.text(min_size=1, max_size=500),
)
def test_rerank_batches_cover_every_document_in_order_within_the_token_budget(
    documents: list[str], query: str
) -> None:
    model = RerankModel(
        "m", "compatible", max_documents=7, max_item_tokens=1000, max_request_tokens=4000
    )
    ranges = rerank_batches(query, documents, model)
    assert [i for r in ranges for i in r] == list(range(len(documents)))
    for part in ranges:
        assert 1 <= len(part) <= 7
        cost = sum(
            min(max_tokens(query), 1000) + 8 + min(max_tokens(documents[i]), 1000) for i in part
        )
        assert cost <= 4000 or len(part) == 1


def test_max_tokens_is_the_utf8_length() -> None:
    assert max_tokens("abc") == 3 and max_tokens("阿里") == 6


def test_check_documents_returns_a_list() -> None:
    assert check_documents(("a", "b")) == ["a", "b"]


# --------------------------------------------------------------------------- rerank responses


def test_rerank_results_of_several_requests_are_merged_sorted_and_cut() -> None:
    model = RERANK_MODELS["qwen3-rerank"]
    first = parse_rerank(
        model,
        {
            "results": [{"index": 1, "relevance_score": 0.2}, {"index": 0, "relevance_score": 0.9}],
            "usage": {"total_tokens": 5},
            "id": "a",
        },
        {},
        range(0, 2),
    )
    second = parse_rerank(
        model,
        {
            "results": [{"index": 0, "relevance_score": 0.5}, {"index": 1, "relevance_score": 0.9}],
            "usage": {"total_tokens": 7},
        },
        {"x-request-id": "b"},
        range(2, 4),
    )
    result = combine_rerank(model, [first, second], top_n=3)
    assert [(item.index, item.score) for item in result.results] == [(0, 0.9), (3, 0.9), (2, 0.5)]
    index, score = result.results[0]
    assert (index, score) == (0, 0.9)
    assert result.total_tokens == 12 and result.request_ids == (None, "b")


def test_native_and_ranker_responses() -> None:
    native = parse_rerank(
        RERANK_MODELS["gte-rerank-v2"],
        {
            "output": {
                "results": [{"document": {"text": "x"}, "index": 0, "relevance_score": 0.93}]
            },
            "usage": {"total_tokens": 105},
            "request_id": "56a1",
        },
        {},
        range(0, 1),
    )
    assert (native.items[0].score, native.total_tokens, native.request_id) == (0.93, 105, "56a1")
    ranker = parse_rerank(
        RERANK_MODELS["ops-bge-reranker-larger"],
        {
            "request_id": "450f",
            "usage": {"doc_count": 2},
            "result": {"scores": [{"index": 1, "score": 1.37}, {"index": 0, "score": -0.3}]},
        },
        {},
        range(10, 12),
    )
    assert [(i.index, i.score) for i in ranker.items] == [(11, 1.37), (10, -0.3)]
    assert ranker.total_tokens is None


@pytest.mark.parametrize(
    "results",
    [
        [{"index": 2, "relevance_score": 0.1}],
        [{"index": 0, "relevance_score": 0.1}, {"index": 0, "relevance_score": 0.2}],
        [{"index": 0, "relevance_score": "high"}],
        [{"index": 0}, {"index": 1}, {"index": 1}],
        "nope",
    ],
)
def test_bad_rerank_results_are_decode_errors(results: object) -> None:
    with pytest.raises(ResponseDecodeError):
        parse_rerank(RERANK_MODELS["qwen3-rerank"], {"results": results}, {}, range(0, 2))
