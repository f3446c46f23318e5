"""What the embedding and rerank clients share: settings, sending a call's requests, closing.

A client is made from a plan (``_embeddings.EmbeddingPlan``, ``_rerank.RerankPlan``: the checked
model, where requests go, how a call becomes requests and how each answer is parsed) and the
connection options every client takes. ``SyncServiceClient`` sends a call's requests in
threads, ``AsyncServiceClient`` as tasks of the running event loop, at most ``max_concurrency``
at once (``_fanout``); the transport retries and raises typed errors, as for chat.
``OwnsServiceClients`` is the framework classes' side: their core clients, made from their
fields, in both frameworks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeAlias, TypeVar

from opensearch_llm._client_base import AsyncClientBase, SyncClientBase
from opensearch_llm._client_cache import OwnsClients
from opensearch_llm._config import ClientConfig, ConnectionOptions, make_config, resolve_api_key
from opensearch_llm._fanout import ConcurrencyLimit, arun_all, run_all
from opensearch_llm._services import (
    ENDPOINT_OPTION_NAMES,
    SERVICE_OPTION_NAMES,
    Endpoint,
    check_positive,
)

if TYPE_CHECKING:
    import httpx
    from pydantic import SecretStr

    HttpxClient: TypeAlias = httpx.Client
    HttpxAsyncClient: TypeAlias = httpx.AsyncClient
else:  # httpx loads with the first client, not with the package
    HttpxClient = HttpxAsyncClient = Any

BatchT = TypeVar("BatchT")
CoreClientT = TypeVar("CoreClientT")
BatchT_co = TypeVar("BatchT_co", covariant=True)
#: An injected HTTP client: ``httpx.Client`` for sync clients, ``httpx.AsyncClient`` for async.
HttpClientT = TypeVar("HttpClientT")
#: One request of a call: the positions of its texts (or documents), and its JSON body.
Request = tuple[range, bytes]


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class ServicePlan(Protocol[BatchT_co]):
    """What a client needs of its plan: the model's name, where to send, how to parse."""

    @property
    def model(self) -> _Named: ...

    @property
    def endpoint(self) -> Endpoint: ...

    @property
    def url(self) -> str: ...

    def parser(self, positions: range) -> Callable[[Any, Mapping[str, str]], BatchT_co]: ...


class ServiceClient(Generic[BatchT, HttpClientT]):
    """An embedding or rerank client's plan, connection and bound on requests in flight."""

    _plan: ServicePlan[BatchT]
    _config: ClientConfig

    def __init__(
        self,
        plan: ServicePlan[BatchT],
        api_key: str | SecretStr | None,
        max_concurrency: int,
        http_client: HttpClientT | None,
        options: ConnectionOptions,
    ) -> None:
        self._plan = plan
        limit = check_positive("max_concurrency", max_concurrency) or 1
        self._concurrency = ConcurrencyLimit(limit)
        self._config = make_config(resolve_api_key(api_key), plan.endpoint.base, **options)
        self._connect(self._config, http_client)

    if TYPE_CHECKING:  # SyncClientBase's or AsyncClientBase's

        def _connect(self, config: ClientConfig, http_client: HttpClientT | None) -> None: ...

    @property
    def model(self) -> str:
        """The model (or OpenSearch service id)."""
        return self._plan.model.name

    @property
    def url(self) -> str:
        """Where requests go."""
        return self._plan.url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, url={self.url!r})"


class SyncServiceClient(ServiceClient[BatchT, HttpxClient], SyncClientBase):
    """Sends a call's requests in threads, ``max_concurrency`` at once; results in order."""

    def _send_all(self, requests: Sequence[Request]) -> list[BatchT]:
        return run_all(self._post, requests, self._concurrency.limit)

    def _post(self, request: Request) -> BatchT:
        positions, body = request
        return self._transport.post_json(self._plan.url, body, None, self._plan.parser(positions))


class AsyncServiceClient(ServiceClient[BatchT, HttpxAsyncClient], AsyncClientBase):
    """Sends a call's requests as tasks, ``max_concurrency`` at once; results in order.

    The bound holds per event loop, across all of the client's calls in that loop.
    """

    async def _send_all(self, requests: Sequence[Request]) -> list[BatchT]:
        return await arun_all(self._post, requests, self._concurrency)

    async def _post(self, request: Request) -> BatchT:
        positions, body = request
        return await self._transport.post_json(
            self._plan.url, body, None, self._plan.parser(positions)
        )


class OwnsServiceClients(OwnsClients):
    """A framework class's embedding or rerank core clients, made from its fields; closing.

    For a pydantic model with the fields ``SERVICE_OPTION_NAMES`` names, ``http_client`` and
    the field ``ASYNC_HTTP_CLIENT_FIELD`` names (the frameworks name it differently), a
    ``_clients`` cache, and ``_model_options()``: the model's own keyword arguments.
    """

    #: The field of the injected ``httpx.AsyncClient``.
    ASYNC_HTTP_CLIENT_FIELD: ClassVar[str]
    if TYPE_CHECKING:  # a field of the framework class (annotated here, pydantic would take it)
        http_client: Any

    def _model_options(self) -> dict[str, Any]:
        """The core client's keyword arguments that are the model's (``model``, ...)."""
        raise NotImplementedError

    def _plan_settings(self) -> dict[str, Any]:
        """What the core checks at construction: the model's options and the endpoint."""
        endpoint = {name: getattr(self, name) for name in ENDPOINT_OPTION_NAMES}
        return {**self._model_options(), **endpoint}

    def _options(self) -> dict[str, Any]:
        """The core client's keyword arguments."""
        shared = {name: getattr(self, name) for name in SERVICE_OPTION_NAMES}
        return {**shared, **self._model_options()}

    def _sync_client(self, make: Callable[..., CoreClientT]) -> CoreClientT:
        """The sync core client, made by ``make`` (the client class) on first use."""
        client: CoreClientT = self._clients.sync(
            lambda: make(http_client=self.http_client, **self._options())
        )
        return client

    def _async_client(self, make: Callable[..., CoreClientT]) -> CoreClientT:
        """The running event loop's async core client, made by ``make`` on first use there."""
        client: CoreClientT = self._clients.async_(
            lambda: make(http_client=getattr(self, self.ASYNC_HTTP_CLIENT_FIELD), **self._options())
        )
        return client

    def close(self) -> None:
        """Close the sync connection pool (an injected ``http_client`` is left open)."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close this event loop's connection pool (an injected client is left open)."""
        await self._clients.aclose()
