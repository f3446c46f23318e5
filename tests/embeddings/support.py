"""Helpers: clients on the in-process emulator, and one test body run sync or async."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import httpx

from opensearch_llm.embeddings import AsyncEmbeddingClient, EmbeddingClient
from opensearch_llm.emulator import Emulator
from opensearch_llm.rerank import AsyncRerankClient, RerankClient

KEY = "sk-embed-SECRET-0123456789"
BASE_URL = "http://emulator.local/compatible-mode/v1"
HOST = "http://search.emulator.local"
PASSAGES = [
    "OpenSearch is a distributed search service of Alibaba Cloud.",
    "Havenask is the search engine behind OpenSearch.",
    "Model Studio serves the Qwen models through an OpenAI compatible API.",
]


def fast(client: Any) -> Any:
    """``client`` with millisecond retry backoff (the retry policy is unchanged)."""
    client._transport.config = replace(
        client._transport.config, backoff_initial=0.001, backoff_max=0.002
    )
    return client


def cosine(a: list[float], b: list[float]) -> float:
    """The cosine similarity of two vectors."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = (sum(x * x for x in a) * sum(y * y for y in b)) ** 0.5
    return dot / norm


@dataclass
class Modes:
    """Makes sync or async clients and awaits their calls alike."""

    mode: str

    @property
    def sync(self) -> bool:
        return self.mode == "sync"

    def http(self, emulator: Emulator | None = None, handler: Any = None) -> Any:
        """An httpx client on the emulator's in-process transport, or on a mock handler."""
        if handler is not None:
            transport: Any = httpx.MockTransport(handler)
        elif self.sync:
            transport = (emulator or Emulator()).transport()
        else:
            transport = (emulator or Emulator()).async_transport()
        return (
            httpx.Client(transport=transport)
            if self.sync
            else httpx.AsyncClient(transport=transport)
        )

    def embedder(
        self, emulator: Emulator | None = None, handler: Any = None, **options: Any
    ) -> Any:
        """An ``EmbeddingClient`` or ``AsyncEmbeddingClient`` on the emulator (or ``handler``)."""
        return fast(self._make(EmbeddingClient, AsyncEmbeddingClient, emulator, handler, options))

    def reranker(
        self, emulator: Emulator | None = None, handler: Any = None, **options: Any
    ) -> Any:
        """A ``RerankClient`` or ``AsyncRerankClient`` on the emulator (or ``handler``)."""
        return fast(self._make(RerankClient, AsyncRerankClient, emulator, handler, options))

    def _make(
        self,
        sync: type,
        asynchronous: type,
        emulator: Emulator | None,
        handler: Any,
        options: dict[str, Any],
    ) -> Any:
        options.setdefault("api_key", KEY)
        model = str(options.get("model", ""))
        if model.startswith("ops-"):
            options.setdefault("host", HOST)
        else:
            options.setdefault("base_url", BASE_URL)
        cls = sync if self.sync else asynchronous
        return cls(http_client=self.http(emulator, handler), **options)

    async def call(self, client: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        """``client.method(...)``, awaited when the client is async."""
        result = getattr(client, method)(*args, **kwargs)
        return result if self.sync else await result
