"""Rerank documents for a query: Model Studio and the OpenSearch AI Search platform, sync and async.

The model decides the API: ``qwen3-rerank`` goes to Model Studio's compatible
``/compatible-api/v1/reranks``, ``gte-rerank-v2`` and ``qwen3-vl-rerank`` to its native
``text-rerank`` API, ``ops-*`` rankers to the AI Search platform. Documents beyond a request's
limits are split into several requests, sent side by side; the result is ``(index, score)``
pairs, highest score first, at most ``top_n``. The pure work is in ``_rerank``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from typing_extensions import Unpack

from opensearch_llm._config import ConnectionOptions
from opensearch_llm._rerank import (
    DEFAULT_RERANK_MODEL,
    RERANK_MODELS,
    RerankBatch,
    RerankItem,
    RerankModel,
    RerankPlan,
    RerankResult,
    combine,
    rerank_plan,
)
from opensearch_llm._service_client import (
    AsyncServiceClient,
    HttpClientT,
    HttpxAsyncClient,
    HttpxClient,
    ServiceClient,
    SyncServiceClient,
)
from opensearch_llm._services import DEFAULT_MAX_CONCURRENCY

if TYPE_CHECKING:
    from pydantic import SecretStr

__all__ = [
    "DEFAULT_RERANK_MODEL",
    "RERANK_MODELS",
    "AsyncRerankClient",
    "RerankClient",
    "RerankItem",
    "RerankModel",
    "RerankResult",
    "check_rerank_settings",
]


def check_rerank_settings(**settings: Any) -> None:
    """Raise ``RequestValidationError`` for a bad model or endpoint (the key is not looked up).

    For construction time in the adapters; takes ``model``, ``base_url``, ``region``, ``host``
    and ``workspace``.
    """
    rerank_plan(**settings)


class _RerankClientBase(ServiceClient[RerankBatch, HttpClientT]):
    _plan: RerankPlan

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        model: str = DEFAULT_RERANK_MODEL,
        base_url: str | None = None,
        region: str | None = None,
        host: str | None = None,
        workspace: str | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        http_client: HttpClientT | None = None,
        **options: Unpack[ConnectionOptions],
    ) -> None:
        plan = rerank_plan(model, base_url=base_url, region=region, host=host, workspace=workspace)
        super().__init__(plan, api_key, max_concurrency, http_client, options)


class RerankClient(_RerankClientBase[HttpxClient], SyncServiceClient[RerankBatch]):
    """Rerank, synchronous; one pooled ``httpx.Client`` per instance.

    The key and the Model Studio endpoint are found as for chat (``base_url``, ``region``,
    ``OPENSEARCH_LLM_BASE_URL``: the compatible-mode base URL; the rerank paths are derived
    from it); ``ops-*`` rankers use ``host`` (else ``OPENSEARCH_LLM_SEARCH_HOST``) and
    ``workspace``.

    Example::

        with RerankClient(model="qwen3-rerank") as client:
            ranked = client.rerank("What is OpenSearch?", passages, top_n=2)
            for index, score in ranked.results:
                print(score, passages[index])
    """

    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        top_n: int | None = None,
        instruct: str | None = None,
    ) -> RerankResult:
        """The documents' ``(index, score)`` pairs, most relevant first, at most ``top_n``.

        ``instruct``: the task, for Model Studio models that take one (e.g. "Retrieve
        semantically similar text.").
        """
        top, requests = self._plan.requests(query, documents, top_n, instruct)
        return combine(self._plan.model, self._send_all(requests), top)


class AsyncRerankClient(_RerankClientBase[HttpxAsyncClient], AsyncServiceClient[RerankBatch]):
    """Rerank, asynchronous; one aiohttp connection pool per instance (per event loop).

    Example::

        async with AsyncRerankClient() as client:
            ranked = await client.rerank("What is OpenSearch?", passages, top_n=2)
    """

    async def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        top_n: int | None = None,
        instruct: str | None = None,
    ) -> RerankResult:
        """The documents' ``(index, score)`` pairs, most relevant first, at most ``top_n``."""
        top, requests = self._plan.requests(query, documents, top_n, instruct)
        return combine(self._plan.model, await self._send_all(requests), top)
