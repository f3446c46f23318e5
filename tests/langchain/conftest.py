"""Fixtures for the LangChain adapter's tests: the in-process emulator, and the live switch.

Offline (no ``OPENSEARCH_LLM_API_KEY`` / ``DASHSCOPE_API_KEY``) every test talks to the
emulator, in-process or served on 127.0.0.1 (the standard integration suite), and sockets to
anything but the loopback are blocked. With a key, the standard integration suite runs against
the live service instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from langchain_opensearch_llm import ChatOpenSearchLLM
from opensearch_llm.emulator import Emulator

LIVE = bool(os.environ.get("OPENSEARCH_LLM_API_KEY") or os.environ.get("DASHSCOPE_API_KEY"))
EMULATOR_BASE_URL = "http://emulator.local/compatible-mode/v1"
GATEWAY_BASE_URL = "http://emulator.local/api/v1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Offline: only loopback sockets for these tests."""
    if LIVE:
        return
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            # pytest-socket: any connection to another host fails the test.
            item.add_marker(pytest.mark.allow_hosts(["127.0.0.1", "::1"]))


@pytest.fixture
def emulator() -> Emulator:
    """A fresh emulator (any non-empty key is accepted)."""
    return Emulator()


@pytest.fixture
def http_clients(emulator: Emulator) -> Iterator[tuple[httpx.Client, httpx.AsyncClient]]:
    """Sync and async httpx clients on the emulator's in-process transports."""
    sync_client = httpx.Client(transport=emulator.transport())
    async_client = httpx.AsyncClient(transport=emulator.async_transport())
    yield sync_client, async_client
    sync_client.close()  # the async one holds nothing to release: in-process transport


@pytest.fixture
def make_llm(
    http_clients: tuple[httpx.Client, httpx.AsyncClient],
) -> Callable[..., ChatOpenSearchLLM]:
    """Build a ``ChatOpenSearchLLM`` that talks to the emulator."""

    def make(**params: Any) -> ChatOpenSearchLLM:
        settings: dict[str, Any] = {
            "api_key": "sk-test",
            "base_url": EMULATOR_BASE_URL,
            "http_client": http_clients[0],
            "http_async_client": http_clients[1],
            **params,
        }
        return ChatOpenSearchLLM(**settings)

    return make
