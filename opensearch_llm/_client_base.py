"""What every client owns: its transport, made at construction, and closing it.

``SyncClientBase`` and ``AsyncClientBase`` are the mixins the public clients (chat,
knowledge-llm) are made of: ``close()``/``with`` and ``aclose()``/``async with``. The HTTP library
loads with the first client, not with the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typing_extensions import Self

if TYPE_CHECKING:
    import httpx

    from opensearch_llm._config import ClientConfig
    from opensearch_llm._transport import AsyncTransport, SyncTransport


class _PoolStaysBehind:
    """Pickling (Ray, multiprocessing) without the connection pool: the copy makes its own.

    An injected ``http_client`` stays behind too. ``copy.copy`` shares the pool, as before.
    """

    _config: ClientConfig

    def _connect(self, config: ClientConfig, http_client: None) -> None:
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "_transport"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self._connect(self._config, None)

    def __copy__(self) -> Self:
        clone = object.__new__(type(self))
        vars(clone).update(vars(self))
        return clone


class SyncClientBase(_PoolStaysBehind):
    """Closing for clients that own a ``SyncTransport``: ``close()`` and ``with``."""

    _transport: SyncTransport

    def _connect(self, config: ClientConfig, http_client: httpx.Client | None) -> None:
        # The HTTP library loads with the first client, not with the package.
        from opensearch_llm._transport import SyncTransport

        self._transport = SyncTransport(config, http_client)

    def close(self) -> None:
        """Close the connection pool (unless the ``http_client`` was passed in)."""
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncClientBase(_PoolStaysBehind):
    """Closing for clients that own an ``AsyncTransport``: ``aclose()`` and ``async with``."""

    _transport: AsyncTransport

    def _connect(self, config: ClientConfig, http_client: httpx.AsyncClient | None) -> None:
        # The HTTP library loads with the first client, not with the package.
        from opensearch_llm._transport import AsyncTransport

        self._transport = AsyncTransport(config, http_client)

    async def aclose(self) -> None:
        """Close the connection pool (unless the ``http_client`` was passed in)."""
        await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
