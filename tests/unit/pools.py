"""Count the connection pools the core opens and closes, to test the adapters' client reuse.

``count_pools(monkeypatch, sync_transport, async_transport)`` makes every ``httpx.Client`` /
``httpx.AsyncClient`` created afterwards (the pools a core client makes when no httpx client
is injected) send through the given transports, and records them, so a test observes how
many pools an adapter opened and closed without looking at its private attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest


@dataclass
class Pools:
    """The httpx clients made while counting, sync and async."""

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
    """Record every httpx client made from now on (they send through the given transports)."""
    pools = Pools()
    real_client, real_async_client = httpx.Client, httpx.AsyncClient

    class CountedClient(real_client):  # type: ignore[misc,valid-type]
        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("transport", sync_transport)
            super().__init__(**kwargs)
            pools.sync.append(self)

    class CountedAsyncClient(real_async_client):  # type: ignore[misc,valid-type]
        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("transport", async_transport)
            super().__init__(**kwargs)
            pools.async_.append(self)

    monkeypatch.setattr(httpx, "Client", CountedClient)
    monkeypatch.setattr(httpx, "AsyncClient", CountedAsyncClient)
    return pools
