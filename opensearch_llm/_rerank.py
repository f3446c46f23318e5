"""Rerank: the model table, request checks and bodies, response parsing. Pure; no I/O.

Three APIs (docs/service-facts.md, "Embeddings and rerank"):

- ``compatible``: Model Studio ``POST {root}/compatible-api/v1/reranks`` (``qwen3-rerank``);
  flat body, ``results[].{index, relevance_score}``.
- ``native``: Model Studio ``POST {root}/api/v1/services/rerank/text-rerank/text-rerank``
  (``gte-rerank-v2``, ``qwen3-vl-rerank``); ``input``/``parameters``, ``output.results``.
- ``opensearch``: the AI Search platform's ``ranker/{service_id}`` (``ops-*``); ``query`` and
  ``docs``, ``result.scores[].{index, score}`` (scores are not bounded to [0, 1]); no ``top_n``.

Many documents are split into requests that keep within the model's documents and tokens per
request; the scores of all of them are merged, sorted (highest first) and cut to ``top_n``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from opensearch_llm._bodies import encode_json, request_id_of
from opensearch_llm._errors import RequestValidationError, ResponseDecodeError
from opensearch_llm._services import (
    COMPATIBLE_API_SUFFIX,
    PLATFORM_MAX_BODY_BYTES,
    Endpoint,
    check_body_size,
    check_model_name,
    check_positive,
    modelstudio_root,
    platform_url,
    resolve_endpoint,
    text_list,
    usage_number,
    value_at,
)

RerankAPI = Literal["compatible", "native", "opensearch"]
DEFAULT_RERANK_MODEL = "qwen3-rerank"
COMPATIBLE_RERANK_PATH = COMPATIBLE_API_SUFFIX + "/reranks"
NATIVE_RERANK_PATH = "/api/v1/services/rerank/text-rerank/text-rerank"
PLATFORM_RANKER_SERVICE = "ranker"
#: Tokens a query-document pair may take besides its text (separator and special tokens).
PAIR_OVERHEAD_TOKENS = 8


@dataclass(frozen=True)
class RerankModel:
    """A rerank model's API and limits (None: not documented, not enforced).

    ``max_item_tokens``: longer queries and documents are truncated by the service, so a pair
    never counts more; ``max_request_tokens``: the query's tokens times the documents plus the
    documents' tokens, per request.
    """

    name: str
    api: RerankAPI
    max_documents: int | None = None
    max_item_tokens: int | None = None
    max_request_tokens: int | None = None


RERANK_MODELS: dict[str, RerankModel] = {
    model.name: model
    for model in (
        # 120,000 tokens per request on most snapshots of the page, 30,000 on one: the smaller.
        RerankModel("qwen3-rerank", "compatible", 500, 4000, 30_000),
        RerankModel("gte-rerank-v2", "native", 500, 4000, 30_000),
        RerankModel("qwen3-vl-rerank", "native", 100, 8000, 120_000),
        RerankModel("ops-bge-reranker-larger", "opensearch"),
        RerankModel("ops-text-reranker-001", "opensearch"),
        RerankModel("ops-qwen3-reranker-0.6b", "opensearch"),
    )
}


def rerank_model(name: Any) -> RerankModel:
    """The table's entry for ``name``; an unknown name gets its family's API, no limits.

    ``ops-*``: the AI Search platform's ranker; ``gte-rerank*`` and ``*vl-rerank*``: the native
    API; any other name: the compatible API.
    """
    name = check_model_name(name)
    known = RERANK_MODELS.get(name)
    if known is not None:
        return known
    if name.startswith("ops-"):
        return RerankModel(name, "opensearch")
    if name.startswith("gte-rerank") or "vl-rerank" in name:
        return RerankModel(name, "native")
    return RerankModel(name, "compatible")


def rerank_plan(
    model: Any = DEFAULT_RERANK_MODEL,
    *,
    base_url: str | None = None,
    region: str | None = None,
    host: str | None = None,
    workspace: str | None = None,
) -> RerankPlan:
    """A client's checked settings: the model and where its requests go.

    Model Studio models take ``base_url``/``region`` (the compatible-mode base URL; the rerank
    paths hang off its root), OpenSearch rankers ``host``/``workspace``.
    """
    entry = rerank_model(model)
    endpoint = resolve_endpoint(
        entry.api == "opensearch", base_url=base_url, region=region, host=host, workspace=workspace
    )
    if endpoint.platform:
        url = platform_url(
            endpoint.base, str(endpoint.workspace), PLATFORM_RANKER_SERVICE, entry.name
        )
    else:
        root = modelstudio_root(endpoint.base)
        url = root + (COMPATIBLE_RERANK_PATH if entry.api == "compatible" else NATIVE_RERANK_PATH)
    return RerankPlan(entry, endpoint, url)


# --------------------------------------------------------------------------- requests


def check_query(query: Any) -> str:
    """``query`` if it is a non-blank string."""
    if not isinstance(query, str) or not query.strip():
        raise RequestValidationError("query", query, "a non-blank string")
    return query


def check_documents(documents: Any) -> list[str]:
    """``documents`` as a list, if it has at least one and each is a non-blank string."""
    checked = list(text_list("documents", documents))
    if not checked:
        raise RequestValidationError("documents", checked, "at least one document")
    for position, document in enumerate(checked):
        if not isinstance(document, str) or not document.strip():
            raise RequestValidationError(f"documents[{position}]", document, "a non-blank string")
    return checked


def max_tokens(text: str) -> int:
    """An upper bound of the tokens ``text`` takes: its UTF-8 bytes (a token is at least one)."""
    return len(text) if text.isascii() else len(text.encode())


def rerank_batches(query: str, documents: Sequence[str], model: RerankModel) -> list[range]:
    """Consecutive ranges of documents, each within the model's documents and tokens per request.

    Token counts are upper bounds (``max_tokens``), each cut at the per-item limit the service
    truncates at, so a range never takes more tokens than the model allows.
    """
    most = model.max_documents or len(documents)
    budget = model.max_request_tokens
    if budget is None:
        return [
            range(start, min(start + most, len(documents)))
            for start in range(0, len(documents), most)
        ]
    item = model.max_item_tokens
    query_cost = _capped(max_tokens(query), item) + PAIR_OVERHEAD_TOKENS
    ranges: list[range] = []
    start, used = 0, 0
    for position, document in enumerate(documents):
        cost = query_cost + _capped(max_tokens(document), item)
        if position > start and (used + cost > budget or position - start >= most):
            ranges.append(range(start, position))
            start, used = position, 0
        used += cost
    ranges.append(range(start, len(documents)))
    return ranges


def _capped(tokens: int, limit: int | None) -> int:
    return tokens if limit is None else min(tokens, limit)


@dataclass(frozen=True)
class RerankPlan:
    """How a client's calls become requests: the model, the endpoint, the URL."""

    model: RerankModel
    endpoint: Endpoint
    url: str

    def requests(
        self, query: Any, documents: Any, top_n: Any = None, instruct: Any = None
    ) -> tuple[int | None, list[tuple[range, bytes]]]:
        """The checked ``top_n`` and each request's documents and JSON body; raises first."""
        checked_query = check_query(query)
        checked = check_documents(documents)
        checked_top_n = check_positive("top_n", top_n)
        self._check_instruct(instruct)
        limit = PLATFORM_MAX_BODY_BYTES if self.model.api == "opensearch" else None
        requests = []
        for positions in rerank_batches(checked_query, checked, self.model):
            part = checked[positions.start : positions.stop]
            wanted = None if checked_top_n is None else min(checked_top_n, len(part))
            body = self._body(checked_query, part, wanted, instruct)
            requests.append((positions, check_body_size("documents", encode_json(body), limit)))
        return checked_top_n, requests

    def parser(self, positions: range) -> Callable[[Any, Mapping[str, str]], RerankBatch]:
        """``parse(answer, headers)`` of the response to the request of documents ``positions``."""
        return partial(parse_response, self.model, positions=positions)

    def _check_instruct(self, instruct: Any) -> None:
        if instruct is None:
            return
        if self.model.api == "opensearch":
            raise RequestValidationError(
                "instruct", instruct, "None: the OpenSearch ranker takes no instruction"
            )
        if not isinstance(instruct, str) or not instruct.strip():
            raise RequestValidationError("instruct", instruct, "a non-blank string or None")

    def _body(
        self, query: str, documents: list[str], top_n: int | None, instruct: str | None
    ) -> dict[str, Any]:
        if self.model.api == "opensearch":
            return {"query": query, "docs": documents}  # the ranker has no top_n: cut here
        options = {key: value for key, value in (("top_n", top_n), ("instruct", instruct)) if value}
        if self.model.api == "compatible":
            return {"model": self.model.name, "query": query, "documents": documents, **options}
        body: dict[str, Any] = {
            "model": self.model.name,
            "input": {"query": query, "documents": documents},
        }
        if options:
            body["parameters"] = options
        return body


# --------------------------------------------------------------------------- responses


@dataclass(frozen=True, slots=True)
class RerankItem:
    """A document's position in the input and its relevance score (higher is more relevant).

    Unpacks as a pair: ``for index, score in result.results``.
    """

    index: int
    score: float

    def __iter__(self) -> Iterator[int | float]:
        return iter((self.index, self.score))


@dataclass(frozen=True)
class RerankBatch:
    """One response: its scores (at the documents' input positions), usage and request id."""

    items: list[RerankItem]
    total_tokens: int | None
    request_id: str | None


def parse_response(
    model: RerankModel, body: Any, headers: Mapping[str, str], positions: range
) -> RerankBatch:
    """The scores of a decoded, error-free response to the request of documents ``positions``.

    The service numbers the request's documents from 0; the items carry their input positions.
    """
    request_id = request_id_of(body, headers)
    if model.api == "opensearch":
        entries = value_at(body, "result", "scores")
        return RerankBatch(_items(entries, positions, "score"), None, request_id)
    path = ("results",) if model.api == "compatible" else ("output", "results")
    tokens = usage_number(body, "usage", "total_tokens")
    return RerankBatch(
        _items(value_at(body, *path), positions, "relevance_score"), tokens, request_id
    )


def _items(entries: Any, positions: range, score_key: str) -> list[RerankItem]:
    count = len(positions)
    if not isinstance(entries, list) or len(entries) > count:
        raise ResponseDecodeError(
            f"expected at most {count} rerank results, got {str(entries)[:200]}",
            body=str(entries)[:200],
        )
    items, seen = [], set()
    for entry in entries:
        index = entry.get("index") if isinstance(entry, dict) else None
        score = entry.get(score_key) if isinstance(entry, dict) else None
        if (
            not isinstance(index, int)
            or not 0 <= index < count
            or index in seen
            or not isinstance(score, (int, float))
            or isinstance(score, bool)
        ):
            raise ResponseDecodeError(
                f"a rerank result has no valid index and {score_key}: {str(entry)[:200]}",
                body=str(entry)[:200],
            )
        seen.add(index)
        items.append(RerankItem(positions[index], float(score)))
    return items


@dataclass(frozen=True)
class RerankResult:
    """Documents by relevance, highest first: ``(index, score)`` pairs, at most ``top_n``.

    ``index`` is the document's position in the list that was passed. ``total_tokens`` adds up
    the responses' usage (None when none was reported); ``request_ids`` has one id per request.
    """

    results: list[RerankItem]
    model: str
    total_tokens: int | None = None
    request_ids: tuple[str | None, ...] = ()


def combine(model: RerankModel, batches: Sequence[RerankBatch], top_n: int | None) -> RerankResult:
    """Every request's scores, sorted (highest first, then by position), cut to ``top_n``."""
    items = sorted(
        (item for batch in batches for item in batch.items),
        key=lambda item: (-item.score, item.index),
    )
    counts = [batch.total_tokens for batch in batches if batch.total_tokens is not None]
    return RerankResult(
        items if top_n is None else items[:top_n],
        model.name,
        sum(counts) if counts else None,
        tuple(batch.request_id for batch in batches),
    )
