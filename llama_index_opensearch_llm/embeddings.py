"""``OpenSearchEmbedding``: a LlamaIndex ``BaseEmbedding`` on the ``opensearch_llm`` clients.

LlamaIndex hands over ``embed_batch_size`` texts at a time; the core splits them to the
service's per-request limit, sends the requests side by side, retries and raises typed errors.
Also the connection settings this class and ``OpenSearchRerank`` share.
"""

from __future__ import annotations

from typing import Any, ClassVar

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import BaseModel, Field, PrivateAttr, SecretStr

from opensearch_llm._adapters import (
    DEFAULT_MAX_RETRIES,
    AsyncHttpClient,
    ClientCache,
    OwnsServiceClients,
    SyncHttpClient,
)
from opensearch_llm.embeddings import (
    DEFAULT_EMBEDDING_MODEL,
    DEFAULT_MAX_CONCURRENCY,
    MODEL_STUDIO_MAX_INPUTS,
    SERVICE_OPTION_NAMES,
    AsyncEmbeddingClient,
    EmbeddingClient,
    check_embedding_settings,
)

__all__ = ["DEFAULT_EMBED_BATCH_SIZE", "OpenSearchEmbedding"]

#: Texts per call LlamaIndex hands over: enough for ``DEFAULT_MAX_CONCURRENCY`` requests of 10
#: (Model Studio's per-request limit).
DEFAULT_EMBED_BATCH_SIZE = MODEL_STUDIO_MAX_INPUTS * DEFAULT_MAX_CONCURRENCY


class ServiceFields(OwnsServiceClients, BaseModel):
    """The connection settings of ``OpenSearchEmbedding`` and ``OpenSearchRerank``.

    Also their core clients (made on first use, one async client per event loop) and closing
    them.
    """

    api_key: SecretStr | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="API key; default: OPENSEARCH_LLM_API_KEY, then DASHSCOPE_API_KEY.",
    )
    base_url: str | None = Field(
        default=None,
        description="Model Studio models: the compatible-mode base URL (default: "
        "OPENSEARCH_LLM_BASE_URL, else Singapore).",
    )
    region: str | None = Field(
        default=None, description="Model Studio region: singapore, virginia, beijing, hongkong."
    )
    host: str | None = Field(
        default=None,
        description="OpenSearch services (ops-*): the AI Search platform endpoint (default: "
        "OPENSEARCH_LLM_SEARCH_HOST).",
    )
    workspace: str | None = Field(
        default=None, description="OpenSearch services: the workspace (default 'default')."
    )
    max_concurrency: int = Field(
        default=DEFAULT_MAX_CONCURRENCY, gt=0, description="Requests in flight at once at most."
    )
    timeout: float | None = Field(default=None, description="Seconds for a whole response.")
    connect_timeout: float | None = Field(default=None, description="Seconds to connect.")
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=0, description="Retries (core).")
    default_headers: dict[str, str] | None = Field(
        default=None, exclude=True, repr=False, description="Headers sent with every request."
    )
    max_response_bytes: int | None = Field(
        default=None, gt=0, description="Bytes of a response before it is refused (64 MiB)."
    )
    max_connections: int | None = Field(
        default=None, gt=0, description="Connections open at once at most (256)."
    )
    http_client: SyncHttpClient = Field(
        default=None, exclude=True, repr=False, description="An httpx.Client to send with."
    )
    async_http_client: AsyncHttpClient = Field(
        default=None, exclude=True, repr=False, description="An httpx.AsyncClient to send with."
    )

    _clients: ClientCache[Any, Any] = PrivateAttr(default_factory=ClientCache)
    ASYNC_HTTP_CLIENT_FIELD: ClassVar[str] = "async_http_client"
    #: The fields the core clients are made from (subclasses add their model's).
    CLIENT_FIELDS: ClassVar[frozenset[str]] = frozenset(
        (*SERVICE_OPTION_NAMES, "http_client", "async_http_client")
    )


class OpenSearchEmbedding(ServiceFields, BaseEmbedding):
    """Text embeddings from Model Studio (``text-embedding-v4`` ...) or OpenSearch (``ops-*``).

    ``embed_batch_size`` texts (default 80) go to the core per call, which sends at most the
    model's limit per request (10 for v3/v4, 32 for OpenSearch services), ``max_concurrency``
    at once; blank and over-long texts are refused before anything is sent. Nodes are
    embedded as ``input_type="document"`` and queries as ``"query"`` where the service takes
    it. A bad setting fails at construction; a missing key on the first call.

    Example::

        from llama_index.core import Settings, VectorStoreIndex
        from llama_index_opensearch_llm import OpenSearchEmbedding

        Settings.embed_model = OpenSearchEmbedding(model_name="text-embedding-v4", dimensions=512)
        index = VectorStoreIndex.from_documents(documents)
    """

    model_name: str = Field(
        default=DEFAULT_EMBEDDING_MODEL,
        description="The model, e.g. 'text-embedding-v4', or an OpenSearch service id.",
    )
    embed_batch_size: int = Field(
        default=DEFAULT_EMBED_BATCH_SIZE,
        gt=0,
        le=2048,
        description="Texts per call to the core (split there to the service's limit).",
    )
    dimensions: int | None = Field(
        default=None,
        description="The vectors' size (v4: 2048 ... 64); default: the model's.",
    )

    CLIENT_FIELDS: ClassVar[frozenset[str]] = ServiceFields.CLIENT_FIELDS | {
        "model_name",
        "dimensions",
    }

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        check_embedding_settings(**self._plan_settings())

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex serialises this class under."""
        return "OpenSearchEmbedding"

    def _model_options(self) -> dict[str, Any]:
        return {"model": self.model_name, "dimensions": self.dimensions}

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._sync_client(EmbeddingClient).embed([query], input_type="query").vectors[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return (
            await self._async_client(AsyncEmbeddingClient).embed([query], input_type="query")
        ).vectors[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return (await self._aget_text_embeddings([text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._sync_client(EmbeddingClient).embed(texts, input_type="document").vectors

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return (
            await self._async_client(AsyncEmbeddingClient).embed(texts, input_type="document")
        ).vectors
