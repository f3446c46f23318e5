"""Text embeddings: the model table, request checks and bodies, response parsing. Pure; no I/O.

Three APIs (docs/service-facts.md, "Embeddings and rerank"):

- ``compatible``: Model Studio ``POST {base_url}/embeddings`` (``text-embedding-v4`` ...), the
  OpenAI shape; ``dimensions`` from a fixed set; ``encoding_format: "float"`` always sent.
- ``opensearch``: the AI Search platform's ``text-embedding/{service_id}`` (``ops-*``), with
  ``input_type`` ``query`` or ``document``.
- ``opensearch-sparse``: its ``text-sparse-embedding/{service_id}``: token id -> weight.

Any number of texts is split into requests of at most the model's per-request count; each text
is checked first (a string, not blank, not surely over the model's token limit) and a bad one
is refused by its position (``texts[i]``) before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from opensearch_llm._bodies import encode_json, request_id_of
from opensearch_llm._errors import RequestValidationError, ResponseDecodeError
from opensearch_llm._services import (
    PLATFORM_MAX_BODY_BYTES,
    Endpoint,
    check_body_size,
    check_model_name,
    check_positive,
    items_by_index,
    platform_url,
    resolve_endpoint,
    split,
    text_list,
    usage_number,
    value_at,
)

EmbeddingAPI = Literal["compatible", "opensearch", "opensearch-sparse"]
InputType = Literal["query", "document"]
INPUT_TYPES: tuple[str, ...] = ("query", "document")
DEFAULT_EMBEDDING_MODEL = "text-embedding-v4"
EMBEDDINGS_PATH = "/embeddings"
#: The AI Search platform's service types (path segments) of the two OpenSearch APIs.
PLATFORM_SERVICES: dict[str, str] = {
    "opensearch": "text-embedding",
    "opensearch-sparse": "text-sparse-embedding",
}
#: Model Studio documents only float output; the OpenAI SDK would ask for base64 by default.
ENCODING_FORMAT = "float"


@dataclass(frozen=True)
class EmbeddingModel:
    """What the client needs to know of a model: its API and its limits.

    ``dimensions``: the values ``dimensions`` may take; ``()`` when the size is fixed; None when
    the model is not in the table (any positive value is sent as given).
    """

    name: str
    api: EmbeddingAPI
    max_inputs: int
    max_input_tokens: int | None = None
    dimensions: tuple[int, ...] | None = None
    default_dimensions: int | None = None

    @property
    def sparse(self) -> bool:
        """Whether the model returns sparse vectors (token id -> weight)."""
        return self.api == "opensearch-sparse"

    @property
    def takes_input_type(self) -> bool:
        """Whether requests carry ``input_type`` (query or document)."""
        return self.api != "compatible"


_V4_DIMENSIONS = (2048, 1536, 1024, 768, 512, 256, 128, 64)
# Singapore: 1024, 768, 512; Beijing adds 256, 128, 64. The client does not know the region.
_V3_DIMENSIONS = (1024, 768, 512, 256, 128, 64)
#: Inputs per request of Model Studio's text-embedding-v3/-v4, and of unknown Model Studio
#: models (service facts).
MODEL_STUDIO_MAX_INPUTS = 10
#: Inputs per request of the AI Search platform's embedding services (service facts).
PLATFORM_MAX_INPUTS = 32


def _ops(name: str, max_tokens: int, dimensions: int) -> EmbeddingModel:
    return EmbeddingModel(name, "opensearch", PLATFORM_MAX_INPUTS, max_tokens, (), dimensions)


EMBEDDING_MODELS: dict[str, EmbeddingModel] = {
    model.name: model
    for model in (
        EmbeddingModel(
            "text-embedding-v4", "compatible", MODEL_STUDIO_MAX_INPUTS, 8192, _V4_DIMENSIONS, 1024
        ),
        EmbeddingModel(
            "text-embedding-v3", "compatible", MODEL_STUDIO_MAX_INPUTS, 8192, _V3_DIMENSIONS, 1024
        ),
        EmbeddingModel("text-embedding-v2", "compatible", 25, 2048, (), 1536),
        EmbeddingModel("text-embedding-v1", "compatible", 25, 2048, (), 1536),
        _ops("ops-text-embedding-001", 300, 1536),
        _ops("ops-text-embedding-zh-001", 1024, 768),
        _ops("ops-text-embedding-en-001", 512, 768),
        _ops("ops-text-embedding-002", 8192, 1024),
        _ops("ops-gte-sentence-embedding-multilingual-base", 8192, 768),
        _ops("ops-qwen3-embedding-0.6b", 32768, 1024),
        EmbeddingModel(
            "ops-text-sparse-embedding-001", "opensearch-sparse", PLATFORM_MAX_INPUTS, 8192
        ),
    )
}


def embedding_model(name: Any) -> EmbeddingModel:
    """The table's entry for ``name``; an unknown name gets the limits of its family.

    ``ops-*`` names are AI Search platform services (``*sparse*`` ones sparse), 32 inputs per
    request; any other name is a Model Studio model, 10 inputs per request (the v3/v4 limit).
    """
    name = check_model_name(name)
    known = EMBEDDING_MODELS.get(name)
    if known is not None:
        return known
    if name.startswith("ops-"):
        api: EmbeddingAPI = "opensearch-sparse" if "sparse" in name else "opensearch"
        return EmbeddingModel(name, api, PLATFORM_MAX_INPUTS)
    return EmbeddingModel(name, "compatible", MODEL_STUDIO_MAX_INPUTS)


def check_dimensions(model: EmbeddingModel, dimensions: Any) -> int | None:
    """``dimensions`` if ``model`` takes it (None: the model's default, not sent)."""
    if dimensions is None:
        return None
    if model.api != "compatible" or model.dimensions == ():
        size = f"fixed at {model.default_dimensions}" if model.default_dimensions else "fixed"
        raise RequestValidationError(
            "dimensions", dimensions, f"None: {model.name}'s vector size is {size}"
        )
    if model.dimensions is None:
        return check_positive("dimensions", dimensions)
    if isinstance(dimensions, bool) or dimensions not in model.dimensions:
        allowed = ", ".join(str(d) for d in model.dimensions)
        raise RequestValidationError("dimensions", dimensions, f"one of {allowed} for {model.name}")
    return int(dimensions)


def check_input_type(input_type: Any) -> InputType | None:
    """``input_type`` if it is None, ``query`` or ``document``."""
    if input_type is not None and input_type not in INPUT_TYPES:
        raise RequestValidationError("input_type", input_type, "'query', 'document' or None")
    return input_type  # type: ignore[no-any-return]


_WORD_RUN = re.compile(r"[^\W_]+")


def min_tokens(text: str) -> int:
    """A lower bound of the tokens ``text`` takes: its runs of letters and digits.

    Every tokenizer of these services ends a token where such a run ends (service facts), so a
    text with more runs than the limit is surely too long; a shorter one is left to the service.
    """
    return len(_WORD_RUN.findall(text))


def check_texts(texts: Any, model: EmbeddingModel) -> list[str]:
    """``texts`` as a list, if each one is a non-blank string not surely over the token limit."""
    checked = list(text_list("texts", texts))
    limit = model.max_input_tokens
    for position, text in enumerate(checked):
        if not isinstance(text, str):
            raise RequestValidationError(
                f"texts[{position}]", text, "a string (the services refuse token arrays)"
            )
        if not text.strip():
            raise RequestValidationError(f"texts[{position}]", text, "a non-blank string")
        # Runs never outnumber characters: only a text longer than the limit needs counting.
        if limit is not None and len(text) > limit and (words := min_tokens(text)) > limit:
            raise RequestValidationError(
                f"texts[{position}]",
                f"<a text of at least {words} tokens>",
                f"at most {limit} tokens for {model.name}",
                "Split the text into shorter chunks.",
            )
    return checked


@dataclass(frozen=True)
class EmbeddingPlan:
    """How a client's texts become requests: the model, the URL and the fixed fields."""

    model: EmbeddingModel
    endpoint: Endpoint
    url: str
    dimensions: int | None = None
    batch_size: int = MODEL_STUDIO_MAX_INPUTS

    def requests(
        self, texts: Any, input_type: Any = None, return_token: bool | None = None
    ) -> list[tuple[range, bytes]]:
        """Each request's positions in ``texts`` and its JSON body; raises before any is sent."""
        checked_type = check_input_type(input_type)
        if return_token is not None and not isinstance(return_token, bool):
            raise RequestValidationError("return_token", return_token, "True, False or None")
        checked = check_texts(texts, self.model)
        limit = PLATFORM_MAX_BODY_BYTES if self.endpoint.platform else None
        requests = []
        for positions in split(len(checked), self.batch_size):
            body = self._body(checked[positions.start : positions.stop], checked_type, return_token)
            field = f"texts[{positions.start}:{positions.stop}]"
            requests.append((positions, check_body_size(field, encode_json(body), limit)))
        return requests

    def parser(self, positions: range) -> Callable[[Any, Mapping[str, str]], EmbeddingBatch]:
        """``parse(answer, headers)`` of the response to the request of texts ``positions``."""
        return partial(parse_response, self.model, count=len(positions))

    def _body(
        self, texts: list[str], input_type: InputType | None, return_token: bool | None
    ) -> dict[str, Any]:
        if self.model.api == "compatible":
            body: dict[str, Any] = {"model": self.model.name, "input": texts}
            if self.dimensions is not None:
                body["dimensions"] = self.dimensions
            body["encoding_format"] = ENCODING_FORMAT
            return body
        body = {"input": texts}
        if input_type is not None:
            body["input_type"] = input_type
        if return_token is not None and self.model.sparse:
            body["return_token"] = return_token
        return body


def embedding_plan(
    model: Any = DEFAULT_EMBEDDING_MODEL,
    *,
    dimensions: Any = None,
    batch_size: Any = None,
    base_url: str | None = None,
    region: str | None = None,
    host: str | None = None,
    workspace: str | None = None,
) -> EmbeddingPlan:
    """A client's checked settings: where its requests go, and how many texts each carries.

    Model Studio models take ``base_url``/``region``, OpenSearch services ``host``/
    ``workspace`` (``_services.resolve_endpoint``).
    """
    entry = embedding_model(model)
    endpoint = resolve_endpoint(
        entry.api != "compatible", base_url=base_url, region=region, host=host, workspace=workspace
    )
    size = check_positive("batch_size", batch_size, entry.max_inputs) or entry.max_inputs
    checked_dimensions = check_dimensions(entry, dimensions)
    if endpoint.platform:
        service = PLATFORM_SERVICES[entry.api]
        url = platform_url(endpoint.base, str(endpoint.workspace), service, entry.name)
    else:
        url = endpoint.base + EMBEDDINGS_PATH
    return EmbeddingPlan(entry, endpoint, url, checked_dimensions, size)


# --------------------------------------------------------------------------- responses


@dataclass(frozen=True)
class EmbeddingBatch:
    """One response: its vectors (in the request's order), tokens, usage and request id."""

    vectors: list[Any]
    tokens: list[dict[int, str]] | None
    total_tokens: int | None
    request_id: str | None


def parse_response(
    model: EmbeddingModel, body: Any, headers: Mapping[str, str], count: int
) -> EmbeddingBatch:
    """The ``count`` vectors of a decoded, error-free response, in input order."""
    request_id = _request_id(body, headers)
    if model.api == "compatible":
        items = items_by_index(value_at(body, "data"), count, "embeddings")
        vectors = [_dense(item) for item in items]
        return EmbeddingBatch(
            vectors, None, usage_number(body, "usage", "total_tokens"), request_id
        )
    tokens = usage_number(body, "usage", "token_count")
    if model.sparse:
        items = items_by_index(value_at(body, "result", "sparse_embeddings"), count, "embeddings")
        pairs = [_sparse(item) for item in items]
        return EmbeddingBatch(
            [weights for weights, _ in pairs], [names for _, names in pairs], tokens, request_id
        )
    items = items_by_index(value_at(body, "result", "embeddings"), count, "embeddings")
    return EmbeddingBatch([_dense(item) for item in items], None, tokens, request_id)


def _request_id(body: Any, headers: Mapping[str, str]) -> str | None:
    # Model Studio's embedding answer names its request id ``id`` (service facts).
    found = request_id_of(body)
    if found is None and isinstance(body, dict) and isinstance(body.get("id"), str):
        return str(body["id"])
    return found or request_id_of(None, headers)


def _dense(item: dict[str, Any]) -> list[float]:
    vector = item.get("embedding")
    if not isinstance(vector, list) or not vector:
        raise ResponseDecodeError(
            f"an embedding is not a list of numbers: {str(item)[:200]}", body=str(item)[:200]
        )
    return vector


def _sparse(item: dict[str, Any]) -> tuple[dict[int, float], dict[int, str]]:
    entries = item.get("embedding")
    if not isinstance(entries, list):
        raise ResponseDecodeError(
            f"a sparse embedding is not a list: {str(item)[:200]}", body=str(item)[:200]
        )
    weights: dict[int, float] = {}
    names: dict[int, str] = {}
    for entry in entries:
        token_id = entry.get("token_id") if isinstance(entry, dict) else None
        weight = entry.get("weight") if isinstance(entry, dict) else None
        if not isinstance(token_id, int) or not isinstance(weight, (int, float)):
            raise ResponseDecodeError(
                f"a sparse embedding entry has no token_id and weight: {str(entry)[:200]}",
                body=str(entry)[:200],
            )
        weights[token_id] = float(weight)
        if isinstance(entry.get("token"), str):
            names[token_id] = entry["token"]
    return weights, names


@dataclass(frozen=True)
class EmbeddingResult:
    """Dense vectors, one per input text, in input order.

    ``total_tokens`` adds up the responses' usage (None when the service reported none);
    ``request_ids`` has one id per request the texts were split into.
    """

    vectors: list[list[float]]
    model: str
    total_tokens: int | None = None
    request_ids: tuple[str | None, ...] = ()

    @property
    def dimensions(self) -> int | None:
        """The vectors' size (None for no vectors)."""
        return len(self.vectors[0]) if self.vectors else None


@dataclass(frozen=True)
class SparseEmbeddingResult:
    """Sparse vectors (token id -> weight), one per input text, in input order.

    ``tokens`` maps each vector's token ids to their text when ``return_token=True`` was asked
    (else empty dicts).
    """

    vectors: list[dict[int, float]]
    model: str
    tokens: list[dict[int, str]]
    total_tokens: int | None = None
    request_ids: tuple[str | None, ...] = ()


def combine(model: EmbeddingModel, batches: Sequence[EmbeddingBatch]) -> EmbeddingResult:
    """The dense result of the responses, in request order."""
    return EmbeddingResult(
        [vector for batch in batches for vector in batch.vectors],
        model.name,
        _total(batches),
        tuple(batch.request_id for batch in batches),
    )


def combine_sparse(
    model: EmbeddingModel, batches: Sequence[EmbeddingBatch]
) -> SparseEmbeddingResult:
    """The sparse result of the responses, in request order."""
    return SparseEmbeddingResult(
        [vector for batch in batches for vector in batch.vectors],
        model.name,
        [names for batch in batches for names in (batch.tokens or [{} for _ in batch.vectors])],
        _total(batches),
        tuple(batch.request_id for batch in batches),
    )


def _total(batches: Sequence[EmbeddingBatch]) -> int | None:
    counts = [batch.total_tokens for batch in batches if batch.total_tokens is not None]
    return sum(counts) if counts else None


def check_kind(model: EmbeddingModel, *, sparse: bool) -> None:
    """Refuse a dense call on a sparse model and the other way round."""
    if model.sparse != sparse:
        kind, method = ("sparse", "embed_sparse") if model.sparse else ("dense", "embed")
        raise RequestValidationError(
            "model", model.name, f"{method}() for a model with {kind} vectors"
        )
