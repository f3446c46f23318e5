"""``OpenSearchEmbeddings``: LangChain ``Embeddings`` on the ``opensearch_llm`` embedding clients.

The core splits texts to the service's per-request limit, sends the requests side by side,
retries, and raises typed errors (re-raised here as the adapter's LangChain-flavoured classes).
Also the settings both this class and ``OpenSearchRerank`` take.
"""

from __future__ import annotations

from typing import Any, ClassVar

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator
from typing_extensions import Self

from langchain_opensearch_llm._errors import langchain_errors
from opensearch_llm import MissingAPIKeyError
from opensearch_llm._adapters import (
    DEFAULT_MAX_RETRIES,
    AsyncHttpClient,
    ClientCache,
    OwnsServiceClients,
    SyncHttpClient,
    resolve_api_key,
)
from opensearch_llm.embeddings import (
    DEFAULT_EMBEDDING_MODEL,
    DEFAULT_MAX_CONCURRENCY,
    SERVICE_OPTION_NAMES,
    AsyncEmbeddingClient,
    EmbeddingClient,
    check_embedding_settings,
)

__all__ = ["OpenSearchEmbeddings"]


def _api_key_from_env() -> SecretStr | None:
    """The key the core would use: ``OPENSEARCH_LLM_API_KEY``, then ``DASHSCOPE_API_KEY``."""
    try:
        return resolve_api_key(None)
    except MissingAPIKeyError:
        return None


class ServiceSettings(OwnsServiceClients, BaseModel):
    """The connection settings of ``OpenSearchEmbeddings`` and ``OpenSearchRerank``."""

    # The input of a failed validation would show the key: never print it. A misspelt setting
    # is an error, not silently a default.
    model_config = ConfigDict(
        populate_by_name=True,
        arbitrary_types_allowed=True,
        hide_input_in_errors=True,
        extra="forbid",
    )

    api_key: SecretStr | None = Field(default_factory=_api_key_from_env, repr=False)
    """API key; default: ``OPENSEARCH_LLM_API_KEY``, then ``DASHSCOPE_API_KEY`` (a missing key
    is reported on the first call)."""
    base_url: str | None = None
    """Model Studio models: the compatible-mode base URL (default: ``OPENSEARCH_LLM_BASE_URL``,
    else Singapore). Exclusive with ``region``."""
    region: str | None = None
    """Model Studio region: singapore, virginia, beijing or hongkong."""
    host: str | None = None
    """OpenSearch services (``ops-*``): the AI Search platform endpoint (default:
    ``OPENSEARCH_LLM_SEARCH_HOST``)."""
    workspace: str | None = None
    """OpenSearch services: the workspace (default ``default``)."""
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    """Requests of one call sent at once at most."""
    timeout: float | None = None
    """Seconds to wait for a whole response (core default 600)."""
    connect_timeout: float | None = None
    """Seconds to wait for a connection (core default 10)."""
    max_retries: int = DEFAULT_MAX_RETRIES
    """Retries of 429, 5xx and connection errors."""
    default_headers: dict[str, str] | None = Field(default=None, repr=False, exclude=True)
    """Headers sent with every request (not shown in a repr, not serialized)."""
    max_response_bytes: int | None = None
    """Bytes of a response before it is refused (core default 64 MiB)."""
    max_connections: int | None = None
    """Connections open at once at most (core default 256)."""
    http_client: SyncHttpClient = Field(default=None, exclude=True, repr=False)
    """An ``httpx.Client`` to send through (e.g. one on the emulator's transport)."""
    http_async_client: AsyncHttpClient = Field(default=None, exclude=True, repr=False)
    """An ``httpx.AsyncClient`` to send through, for the async methods."""

    _clients: ClientCache[Any, Any] = PrivateAttr(default_factory=ClientCache)
    ASYNC_HTTP_CLIENT_FIELD: ClassVar[str] = "http_async_client"
    #: The fields the core clients are made from (subclasses add their model's).
    CLIENT_FIELDS: ClassVar[frozenset[str]] = frozenset(
        (*SERVICE_OPTION_NAMES, "http_client", "http_async_client")
    )


class OpenSearchEmbeddings(ServiceSettings, Embeddings):
    """Text embeddings from Model Studio (``text-embedding-v4`` ...) or OpenSearch (``ops-*``).

    Any number of texts: the core sends at most the model's limit per request (10 for v3/v4,
    32 for OpenSearch services), ``max_concurrency`` requests at once, and returns the vectors
    in order; blank and over-long texts are refused before anything is sent. Documents are
    embedded as ``input_type="document"`` and queries as ``"query"`` where the service takes
    it (OpenSearch's); ``dimensions`` must be one the model offers.

    Example:
        .. code-block:: python

            from langchain_core.vectorstores import InMemoryVectorStore
            from langchain_opensearch_llm import OpenSearchEmbeddings

            embeddings = OpenSearchEmbeddings(model="text-embedding-v4", dimensions=512)
            store = InMemoryVectorStore.from_texts(passages, embeddings)
            store.similarity_search("What is OpenSearch?", k=2)
    """

    model: str = DEFAULT_EMBEDDING_MODEL
    """The model, e.g. ``text-embedding-v4``, or an OpenSearch service id."""
    dimensions: int | None = None
    """The vectors' size (v4: 2048, 1536, 1024, 768, 512, 256, 128, 64); default: the model's."""
    batch_size: int | None = None
    """Texts per request at most; default and largest: the model's limit."""

    CLIENT_FIELDS: ClassVar[frozenset[str]] = ServiceSettings.CLIENT_FIELDS | {
        "model",
        "dimensions",
        "batch_size",
    }

    @model_validator(mode="after")
    def _check_settings(self) -> Self:
        """Fail at construction on a bad setting; a missing key is reported on the first call."""
        check_embedding_settings(**self._plan_settings())
        return self

    def _model_options(self) -> dict[str, Any]:
        return {"model": self.model, "dimensions": self.dimensions, "batch_size": self.batch_size}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order (``input_type="document"``)."""
        with langchain_errors():
            return self._sync_client(EmbeddingClient).embed(texts, input_type="document").vectors

    def embed_query(self, text: str) -> list[float]:
        """The vector of a search query (``input_type="query"``)."""
        with langchain_errors():
            return self._sync_client(EmbeddingClient).embed([text], input_type="query").vectors[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order (``input_type="document"``)."""
        with langchain_errors():
            result = await self._async_client(AsyncEmbeddingClient).embed(
                texts, input_type="document"
            )
        return result.vectors

    async def aembed_query(self, text: str) -> list[float]:
        """The vector of a search query (``input_type="query"``)."""
        with langchain_errors():
            result = await self._async_client(AsyncEmbeddingClient).embed(
                [text], input_type="query"
            )
        return result.vectors[0]
