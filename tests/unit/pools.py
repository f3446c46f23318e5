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
    real_init, real_async_init = httpx.Client.__init__, httpx.AsyncClient.__init__

    def counted_init(client: httpx.Client, **kwargs: Any) -> None:
        kwargs.setdefault("transport", sync_transport)
        real_init(client, **kwargs)
        pools.sync.append(client)

    def counted_async_init(client: httpx.AsyncClient, **kwargs: Any) -> None:
        kwargs.setdefault("transport", async_transport)
        real_async_init(client, **kwargs)
        pools.async_.append(client)

    # The classes stay httpx's own (isinstance checks hold); only their construction is counted.
    monkeypatch.setattr(httpx.Client, "__init__", counted_init)
    monkeypatch.setattr(httpx.AsyncClient, "__init__", counted_async_init)
    return pools
