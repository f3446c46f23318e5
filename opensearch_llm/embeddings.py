"""Text embeddings from Model Studio and the OpenSearch AI Search platform, sync and async.

The model decides the API: ``text-embedding-v4``/``-v3``/... go to Model Studio's
compatible-mode ``{base_url}/embeddings``; ``ops-*`` services to the AI Search platform
(``host``, ``workspace``). Any number of texts is split into requests of at most the model's
limit (10 for v3/v4, 32 for the platform), sent up to ``max_concurrency`` at a time; vectors come
back in input order. The pure work is in ``_embeddings``; sending, retries and typed errors are
the transport's, as for chat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from typing_extensions import Unpack

from opensearch_llm._config import ConnectionOptions
from opensearch_llm._embeddings import (
    DEFAULT_EMBEDDING_MODEL,
    EMBEDDING_MODELS,
    MODEL_STUDIO_MAX_INPUTS,
    EmbeddingBatch,
    EmbeddingModel,
    EmbeddingPlan,
    EmbeddingResult,
    InputType,
    SparseEmbeddingResult,
    check_kind,
    combine,
    combine_sparse,
    embedding_plan,
)
from opensearch_llm._service_client import (
    AsyncServiceClient,
    HttpClientT,
    HttpxAsyncClient,
    HttpxClient,
    ServiceClient,
    SyncServiceClient,
)
from opensearch_llm._services import (
    DEFAULT_MAX_CONCURRENCY,
    ENDPOINT_OPTION_NAMES,
    SEARCH_HOST_ENV_VAR,
    SERVICE_OPTION_NAMES,
)

if TYPE_CHECKING:
    from pydantic import SecretStr

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "DEFAULT_MAX_CONCURRENCY",
    "EMBEDDING_MODELS",
    "ENDPOINT_OPTION_NAMES",
    "MODEL_STUDIO_MAX_INPUTS",
    "SEARCH_HOST_ENV_VAR",
    "SERVICE_OPTION_NAMES",
    "AsyncEmbeddingClient",
    "EmbeddingClient",
    "EmbeddingModel",
    "EmbeddingResult",
    "InputType",
    "SparseEmbeddingResult",
    "check_embedding_settings",
]


def check_embedding_settings(**settings: Any) -> None:
    """Raise ``RequestValidationError`` for a bad model, dimensions, batch size or endpoint.

    For construction time in the adapters: the key is not looked up (a missing key is reported
    on the first call, as for chat). Takes the clients' keyword arguments but the connection
    ones.
    """
    embedding_plan(**settings)


class _EmbeddingClientBase(ServiceClient[EmbeddingBatch, HttpClientT]):
    _plan: EmbeddingPlan

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        model: str = DEFAULT_EMBEDDING_MODEL,
        dimensions: int | None = None,
        base_url: str | None = None,
        region: str | None = None,
        host: str | None = None,
        workspace: str | None = None,
        batch_size: int | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        http_client: HttpClientT | None = None,
        **options: Unpack[ConnectionOptions],
    ) -> None:
        plan = embedding_plan(
            model,
            dimensions=dimensions,
            batch_size=batch_size,
            base_url=base_url,
            region=region,
            host=host,
            workspace=workspace,
        )
        super().__init__(plan, api_key, max_concurrency, http_client, options)

    @property
    def batch_size(self) -> int:
        """Texts per request at most (the model's limit unless a smaller one was given)."""
        return self._plan.batch_size


class EmbeddingClient(_EmbeddingClientBase[HttpxClient], SyncServiceClient[EmbeddingBatch]):
    """Text embeddings, synchronous; one pooled ``httpx.Client`` per instance.

    The key comes from ``api_key``, else ``OPENSEARCH_LLM_API_KEY``, else ``DASHSCOPE_API_KEY``.
    Model Studio models use ``base_url`` / ``region`` (as chat); ``ops-*`` services use ``host``
    (else ``OPENSEARCH_LLM_SEARCH_HOST``) and ``workspace`` (default ``default``).
    ``dimensions`` must be one the model offers (v4: 2048 ... 64); ``batch_size`` lowers the
    texts per request; ``max_concurrency`` bounds the requests of one call sent at once (sync:
    in threads).

    Example::

        with EmbeddingClient(model="text-embedding-v4", dimensions=512) as client:
            result = client.embed(["OpenSearch is a search service.", "Havenask is its engine."])
            print(len(result.vectors), result.dimensions, result.total_tokens)
    """

    def embed(
        self, texts: Sequence[str], *, input_type: InputType | None = None
    ) -> EmbeddingResult:
        """One dense vector per text, in order; ``input_type`` for the services that take it."""
        check_kind(self._plan.model, sparse=False)
        batches = self._send_all(self._plan.requests(texts, input_type))
        return combine(self._plan.model, batches)

    def embed_sparse(
        self,
        texts: Sequence[str],
        *,
        input_type: InputType | None = None,
        return_token: bool | None = None,
    ) -> SparseEmbeddingResult:
        """One sparse vector (token id -> weight) per text, in order (sparse services)."""
        check_kind(self._plan.model, sparse=True)
        batches = self._send_all(self._plan.requests(texts, input_type, return_token))
        return combine_sparse(self._plan.model, batches)


class AsyncEmbeddingClient(
    _EmbeddingClientBase[HttpxAsyncClient], AsyncServiceClient[EmbeddingBatch]
):
    """Text embeddings, asynchronous; one aiohttp connection pool per instance (per event loop).

    Takes the same settings as ``EmbeddingClient``; at most ``max_concurrency`` requests are in
    flight at once, across all the client's calls (in each event loop).

    Example::

        async with AsyncEmbeddingClient(model="text-embedding-v4") as client:
            result = await client.embed(passages)  # any number: 10 per request, 8 at a time
    """

    async def embed(
        self, texts: Sequence[str], *, input_type: InputType | None = None
    ) -> EmbeddingResult:
        """One dense vector per text, in order; ``input_type`` for the services that take it."""
        check_kind(self._plan.model, sparse=False)
        batches = await self._send_all(self._plan.requests(texts, input_type))
        return combine(self._plan.model, batches)

    async def embed_sparse(
        self,
        texts: Sequence[str],
        *,
        input_type: InputType | None = None,
        return_token: bool | None = None,
    ) -> SparseEmbeddingResult:
        """One sparse vector (token id -> weight) per text, in order (sparse services)."""
        check_kind(self._plan.model, sparse=True)
        batches = await self._send_all(self._plan.requests(texts, input_type, return_token))
        return combine_sparse(self._plan.model, batches)
