"""Count the connection pools the core opens and closes, to test the adapters' client reuse.

``count_pools(monkeypatch, sync_transport, async_transport)`` makes every ``httpx.Client`` (the
pool of a sync core client, when no httpx client is injected) send through ``sync_transport``,
and every pool an async core client makes for itself (an aiohttp session by default) an
``httpx.AsyncClient`` on ``async_transport``, and records them, so a test observes how many
pools an adapter opened and closed, in-process, without looking at its private attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from opensearch_llm import _transport_aiohttp
from opensearch_llm._config import ClientConfig
from opensearch_llm._transport_httpx import AsyncHttpxSender


@dataclass
class Pools:
    """The pools made while counting: httpx clients (sync) and async clients' own pools."""

    sync: list[httpx.Client] = field(default_factory=list)
    async_: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def opened(self) -> tuple[int, int]:
        """How many sync and async pools were made."""
        return len(self.sync), len(self.async_)

    @property
    def closed(self) -> tuple[int, int]:
        """How many sync and async pools were closed."""
        return sum(c.is_closed for c in self.sync), sum(c.is_closed for c in self.async_)


def count_pools(
    monkeypatch: pytest.MonkeyPatch,
    sync_transport: httpx.BaseTransport,
    async_transport: httpx.AsyncBaseTransport,
) -> Pools:
    """Record every pool made from now on (they send through the given transports)."""
    pools = Pools()
    real_init = httpx.Client.__init__

    def counted_init(client: httpx.Client, **kwargs: Any) -> None:
        kwargs.setdefault("transport", sync_transport)
        real_init(client, **kwargs)
        pools.sync.append(client)

    class CountedAsyncSender(AsyncHttpxSender):
        """Stands in for the aiohttp sender: its own pool, closed with the client."""

        def __init__(self, config: ClientConfig) -> None:
            super().__init__(config, httpx.AsyncClient(transport=async_transport))
            pools.async_.append(self.http_client)

        async def aclose(self) -> None:
            await self.http_client.aclose()

    # httpx.Client stays httpx's own class (isinstance checks hold); only its construction is
    # counted.
    monkeypatch.setattr(httpx.Client, "__init__", counted_init)
    monkeypatch.setattr(_transport_aiohttp, "AiohttpSender", CountedAsyncSender)
    return pools
