"""Embeddings and rerank: Model Studio's and the AI Search platform's, with their limits.

Vectors and scores are deterministic and follow the words texts share (see the package
docstring, "Embeddings and rerank"): offline retrieval finds the passage a query is about.
The limits are the client's tables (``opensearch_llm._embeddings``, ``opensearch_llm._rerank``):
one place for each fact.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import time
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

from opensearch_llm._embeddings import EMBEDDING_MODELS, INPUT_TYPES, EmbeddingModel
from opensearch_llm._rerank import RERANK_MODELS, RerankModel
from opensearch_llm.emulator._errors import ApiError, flat_error, openai_error
from opensearch_llm.emulator._exchange import Exchange, ReplyOptions, Route
from opensearch_llm.emulator._response import EmuResponse, json_response
from opensearch_llm.emulator._text import count_tokens

EMBEDDINGS_PATH = "/compatible-mode/v1/embeddings"
COMPATIBLE_RERANK_PATH = "/compatible-api/v1/reranks"
NATIVE_RERANK_PATH = "/api/v1/services/rerank/text-rerank/text-rerank"
PLATFORM_PREFIX = "/v3/openapi/workspaces/"

# --------------------------------------------------------------------------- text features

_WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]|[^\W_\u3400-\u4dbf\u4e00-\u9fff]+")
_STOPWORDS = (
    "a an and are as at be by can do does for from has have how i in is it its me my of on or "
    "our that the their this to was we were what when where which who why will with you your"
)
STOPWORDS = frozenset(_STOPWORDS.split())
#: Each word adds to this many coordinates of a dense vector.
SLOTS_PER_WORD = 4
#: The amplitude of the fixed pattern every vector starts from (it makes every coordinate
#: non-zero, as a real model's are, and moves no text closer to another than to the rest).
BACKGROUND = 0.02
#: The sparse vocabulary's size (token ids are below it).
SPARSE_VOCABULARY = 250_000


def words(text: str) -> list[str]:
    """The words a text is compared by: lower case, no stop words, a plural ``s`` dropped.

    Each CJK character is a word. A text of stop words only keeps them; a text without
    words is one word, itself.
    """
    found = [word.lower() for word in _WORD.findall(text)]
    content = [_singular(word) for word in found if word not in STOPWORDS]
    return content or found or [text]


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _weight(position: int) -> float:
    # A text is usually about what it names first: earlier words weigh more.
    return 1.0 / (1.0 + position / 8)


def _digest(word: str) -> bytes:
    return hashlib.blake2b(word.encode(), digest_size=16).digest()


@lru_cache(maxsize=65_536)
def _slots(word: str, dimensions: int) -> tuple[tuple[int, float], ...]:
    digest = _digest(word)
    return tuple(
        (
            int.from_bytes(digest[4 * k : 4 * k + 3], "big") % dimensions,
            1.0 - 2 * (digest[4 * k + 3] & 1),
        )
        for k in range(SLOTS_PER_WORD)
    )


@lru_cache(maxsize=16)
def _background(dimensions: int) -> tuple[float, ...]:
    draw = random.Random(dimensions)
    return tuple(draw.uniform(-BACKGROUND, BACKGROUND) for _ in range(dimensions))


def dense_vector(text: str, dimensions: int) -> list[float]:
    """A unit vector: the fixed background plus ±weight at each word's hashed coordinates."""
    vector = list(_background(dimensions))
    for position, word in enumerate(words(text)):
        weight = _weight(position)
        for index, sign in _slots(word, dimensions):
            vector[index] += sign * weight
    norm = math.sqrt(sum(value * value for value in vector))
    return [value / norm for value in vector]


def sparse_vector(text: str, return_token: bool) -> list[dict[str, Any]]:
    """``[{token_id, weight[, token]}]``: each distinct word, weighted by its occurrences."""
    weights: dict[str, float] = {}
    for position, word in enumerate(words(text)):
        weights[word] = weights.get(word, 0.0) + _weight(position)
    entries = []
    for word, weight in weights.items():
        entry: dict[str, Any] = {"token_id": _token_id(word), "weight": round(weight, 6)}
        if return_token:
            entry["token"] = word
        entries.append(entry)
    return entries


def _token_id(word: str) -> int:
    return int.from_bytes(_digest(word)[:4], "big") % SPARSE_VOCABULARY


def relevance(query: str, document: str) -> float:
    """A score in [0, 1] from the words the document shares with the query.

    0.9 x the share of the query's words found in the document, + 0.1 / (1 + the position of
    the first one found).
    """
    wanted = set(words(query))
    found = words(document)
    first = next((position for position, word in enumerate(found) if word in wanted), None)
    if first is None:
        return 0.0
    share = len(wanted.intersection(found)) / len(wanted)
    return round(0.9 * share + 0.1 / (1 + first), 6)


def ranker_score(query: str, document: str) -> float:
    """The platform ranker's score: ``6 x relevance - 3`` (its scores are not in [0, 1])."""
    return round(6 * relevance(query, document) - 3, 6)


# --------------------------------------------------------------------------- errors


def _invalid(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, "InvalidParameter", message, param, type="InvalidParameter")


def compatible_error(error: ApiError, request_id: str) -> dict[str, Any]:
    """Model Studio's embedding error: the OpenAI ``error`` object, ``id`` and ``request_id``."""
    return {**openai_error(error, request_id), "id": request_id}


def platform_error(error: ApiError, request_id: str) -> dict[str, Any]:
    """The AI Search platform's ``{request_id, latency, code, message}``."""
    return {"request_id": request_id, "latency": 0, "code": error.code, "message": error.message}


def _unknown_model(model: Any) -> ApiError:
    message = f"The model `{model}` does not exist or you do not have access to it."
    return ApiError(404, "model_not_found", message, "model")


def _service_missing(service_id: str) -> ApiError:
    return ApiError(400, "ServiceIdNotExist", f"The service id {service_id} does not exist.")


def _batch_too_large(limit: int) -> ApiError:
    return _invalid(
        "<400> InternalError.Algo.InvalidParameter: Value error, batch size is invalid, it should "
        f"not be larger than {limit}.: input.contents"
    )


_NOT_TEXTS = _invalid("contents is neither str nor list of str.: payload.input.contents")


def _latency(exchange: Exchange) -> float:
    return round((time.time() - exchange.started) * 1000, 3)


# --------------------------------------------------------------------------- embeddings


def _texts(value: Any, model: EmbeddingModel) -> list[str] | ApiError:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        return _NOT_TEXTS
    if not texts:
        return _invalid("input must not be empty", "input")
    if len(texts) > model.max_inputs:
        return _batch_too_large(model.max_inputs)
    limit = model.max_input_tokens
    for text in texts:
        if not text.strip():
            return _invalid("input texts must not be empty", "input")
        if limit is not None and count_tokens(text) > limit:
            return _invalid(f"Range of input length should be [1, {limit}]", "input")
    return texts


def _dimensions(body: dict[str, Any], model: EmbeddingModel) -> int | ApiError:
    default = model.default_dimensions or 1024
    value = body.get("dimensions")
    if value is None:
        return default
    allowed = model.dimensions or (default,)
    if isinstance(value, bool) or value not in allowed:
        shown = ", ".join(str(d) for d in allowed)
        return _invalid(f"Value error, dimensions should be one of [{shown}]", "dimensions")
    return int(value)


def _compatible_embeddings(exchange: Exchange, options: ReplyOptions) -> EmuResponse:
    body = exchange.body if isinstance(exchange.body, dict) else {}
    model = EMBEDDING_MODELS.get(body.get("model"))  # type: ignore[arg-type]
    if model is None or model.sparse:
        return exchange.error(_unknown_model(body.get("model")))
    texts = _texts(body.get("input"), model)
    dimensions = _dimensions(body, model)
    if body.get("encoding_format", "float") != "float":
        return exchange.error(_invalid("encoding_format only supports float", "encoding_format"))
    for outcome in (texts, dimensions):
        if isinstance(outcome, ApiError):
            return exchange.error(outcome)
    assert isinstance(texts, list) and isinstance(dimensions, int)
    tokens = sum(count_tokens(text) for text in texts)
    answer = {
        "data": [
            {"embedding": dense_vector(text, dimensions), "index": index, "object": "embedding"}
            for index, text in enumerate(texts)
        ],
        "model": model.name,
        "object": "list",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        "id": exchange.request_id,
    }
    return json_response(200, exchange.request_id, answer)


def _platform_embeddings(
    model: EmbeddingModel, exchange: Exchange, options: ReplyOptions
) -> EmuResponse:
    body = exchange.body if isinstance(exchange.body, dict) else {}
    input_type = body.get("input_type")
    if input_type is not None and input_type not in INPUT_TYPES:
        return exchange.error(
            _invalid(
                "JSON parse error: Cannot deserialize value of type `InputType` from String "
                f"{input_type!r}: not one of the values accepted for Enum class: [query, document]"
            )
        )
    texts = _texts(body.get("input"), model)
    if isinstance(texts, ApiError):
        return exchange.error(texts)
    vectors: list[Any]
    if model.sparse:
        return_token = body.get("return_token") is True
        key = "sparse_embeddings"
        vectors = [sparse_vector(text, return_token) for text in texts]
    else:
        size = model.default_dimensions or 1024
        key = "embeddings"
        vectors = [dense_vector(text, size) for text in texts]
    answer = {
        "request_id": exchange.request_id,
        "latency": _latency(exchange),
        "usage": {"token_count": sum(count_tokens(text) for text in texts)},
        "result": {key: [{"index": i, "embedding": v} for i, v in enumerate(vectors)]},
    }
    return json_response(200, exchange.request_id, answer)


# --------------------------------------------------------------------------- rerank


def _rerank_input(
    query: Any, documents: Any, model: RerankModel | None
) -> tuple[str, list[str]] | ApiError:
    if not isinstance(query, str) or not query.strip():
        return _invalid("query must be a non-empty string", "query")
    if (
        not isinstance(documents, list)
        or not documents
        or not all(isinstance(document, str) for document in documents)
    ):
        return _invalid("documents must be a non-empty list of strings", "documents")
    most = model.max_documents if model else None
    if most is not None and len(documents) > most:
        return _invalid(f"the number of documents should not be larger than {most}", "documents")
    budget = model.max_request_tokens if model else None
    used = count_tokens(query) * len(documents) + sum(map(count_tokens, documents))
    if budget is not None and used > budget:
        return _invalid(f"the request has {used} tokens; at most {budget} are allowed", "documents")
    return query, documents


def _top_n(value: Any, count: int) -> int | ApiError:
    if value is None:
        return count
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        return _invalid("top_n must be a positive integer", "top_n")
    return min(value, count)


def _ranked(query: str, documents: list[str], top_n: int, with_text: bool) -> list[dict[str, Any]]:
    scored = sorted(
        ((relevance(query, document), index) for index, document in enumerate(documents)),
        key=lambda pair: (-pair[0], pair[1]),
    )
    results = []
    for score, index in scored[:top_n]:
        result: dict[str, Any] = {"index": index, "relevance_score": score}
        if with_text:
            result["document"] = {"text": documents[index]}
        results.append(result)
    return results


def _rerank(exchange: Exchange, native: bool) -> EmuResponse:
    body = exchange.body if isinstance(exchange.body, dict) else {}
    name = body.get("model")
    model = RERANK_MODELS.get(name)  # type: ignore[arg-type]
    if model is None or model.api != ("native" if native else "compatible"):
        return exchange.error(_unknown_model(name))
    source = body.get("input") if native else body
    options = body.get("parameters") if native else body
    source = source if isinstance(source, dict) else {}
    options = options if isinstance(options, dict) else {}
    checked = _rerank_input(source.get("query"), source.get("documents"), model)
    if isinstance(checked, ApiError):
        return exchange.error(checked)
    query, documents = checked
    top_n = _top_n(options.get("top_n"), len(documents))
    if isinstance(top_n, ApiError):
        return exchange.error(top_n)
    results = _ranked(query, documents, top_n, options.get("return_documents") is True)
    usage = {
        "total_tokens": count_tokens(query) * len(documents) + sum(map(count_tokens, documents))
    }
    rid = exchange.request_id
    if native:
        answer = {"output": {"results": results}, "usage": usage, "request_id": rid}
    else:
        answer = {
            "id": rid,
            "object": "list",
            "model": model.name,
            "results": results,
            "usage": usage,
        }
    return json_response(200, rid, answer)


def _platform_ranker(exchange: Exchange, options: ReplyOptions) -> EmuResponse:
    body = exchange.body if isinstance(exchange.body, dict) else {}
    checked = _rerank_input(body.get("query"), body.get("docs"), None)
    if isinstance(checked, ApiError):
        return exchange.error(checked)
    query, documents = checked
    scores = sorted(
        ({"index": i, "score": ranker_score(query, d)} for i, d in enumerate(documents)),
        key=lambda entry: (-entry["score"], entry["index"]),
    )
    answer = {
        "request_id": exchange.request_id,
        "latency": _latency(exchange),
        "usage": {"doc_count": len(documents)},
        "result": {"scores": scores},
    }
    return json_response(200, exchange.request_id, answer)


# --------------------------------------------------------------------------- routes

Handler = Callable[[Exchange, ReplyOptions], EmuResponse]

EMBEDDINGS = Route("embeddings", _compatible_embeddings, compatible_error)
COMPATIBLE_RERANK = Route("rerank", lambda exchange, _: _rerank(exchange, False), flat_error)
NATIVE_RERANK = Route("text-rerank", lambda exchange, _: _rerank(exchange, True), flat_error)
ROUTES = {
    EMBEDDINGS_PATH: EMBEDDINGS,
    COMPATIBLE_RERANK_PATH: COMPATIBLE_RERANK,
    NATIVE_RERANK_PATH: NATIVE_RERANK,
}


def _platform_handler(service: str, service_id: str) -> Handler | None:
    """The handler of a platform service, or None for an unknown service type."""
    if service == "ranker":
        known = RERANK_MODELS.get(service_id)
        return _platform_ranker if known and known.api == "opensearch" else _missing(service_id)
    if service not in ("text-embedding", "text-sparse-embedding"):
        return None
    model = EMBEDDING_MODELS.get(service_id)
    wanted = "opensearch-sparse" if service == "text-sparse-embedding" else "opensearch"
    if model is None or model.api != wanted:
        return _missing(service_id)
    return partial(_platform_embeddings, model)


def _missing(service_id: str) -> Handler:
    return lambda exchange, _: exchange.error(_service_missing(service_id))


def embedding_route(path: str) -> Route | None:
    """The route of an embeddings or rerank path, if ``path`` is one."""
    route = ROUTES.get(path.rstrip("/"))
    if route is not None or not path.startswith(PLATFORM_PREFIX):
        return route
    parts = path[len(PLATFORM_PREFIX) :].rstrip("/").split("/")
    if len(parts) != 3 or not all(parts):
        return None
    _workspace, service, service_id = parts
    handler = _platform_handler(service, service_id)
    return None if handler is None else Route(service, handler, platform_error)
