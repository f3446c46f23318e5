"""Look into a core client's connection pool, whichever HTTP library it sends with.

A sync client (and an async one given an ``httpx.AsyncClient``) pools with httpx; an async client
pools with aiohttp by default, once its first request has made the session.
"""

from __future__ import annotations

from typing import Any


def _sender(client: Any) -> Any:
    return client._transport.sender


def busy_connections(client: Any) -> list[Any]:
    """Connections checked out of the client's pool (an idle keep-alive one is not a leak)."""
    sender = _sender(client)
    http_client = getattr(sender, "http_client", None)
    if http_client is not None:
        pool = http_client._transport._pool
        return [c for c in pool.connections if not (c.is_idle() or c.is_closed())]
    session = sender.session
    if session is None or session.connector is None:
        return []
    return list(session.connector._acquired)


def pool_closed(client: Any) -> bool:
    """Whether the client's own pool is closed (an aiohttp pool not made yet counts as closed)."""
    sender = _sender(client)
    http_client = getattr(sender, "http_client", None)
    if http_client is not None:
        return bool(http_client.is_closed)
    return sender.session is None or sender.session.closed


def uses_aiohttp(client: Any) -> bool:
    """Whether the client sends with aiohttp (the async default)."""
    return not hasattr(_sender(client), "http_client")
