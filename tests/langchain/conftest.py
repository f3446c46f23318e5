"""Fixtures for the LangChain adapter's tests: the in-process emulator, and the live switch.

Offline (no ``OPENSEARCH_LLM_API_KEY`` / ``DASHSCOPE_API_KEY``) every test talks to the
emulator through in-process httpx transports, and sockets to anything but the loopback are
blocked. With a key, the standard integration suite runs against the live service instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_opensearch_llm import ChatOpenSearchLLM
from opensearch_llm.emulator import Emulator

LIVE = bool(os.environ.get("OPENSEARCH_LLM_API_KEY") or os.environ.get("DASHSCOPE_API_KEY"))
EMULATOR_BASE_URL = "http://emulator.local/compatible-mode/v1"
GATEWAY_BASE_URL = "http://emulator.local/api/v1"

# Standard integration tests that need a real model's judgement: the emulator answers
# deterministically ("You said: ..."), so the test's assertion about what a model would
# understand or choose cannot hold. They run against the live service when a key is set.
# Our own tests cover the adapter's part of each offline (test_chat_models.py).
_ARGS = "the emulator fills tool arguments with schema samples, not values read from the prompt"
OFFLINE_SKIPS: dict[str, str] = {
    "test_tool_calling": f"asserts args == {{'input': 3}} taken from the question; {_ARGS}",
    "test_tool_calling_async": f"asserts args == {{'input': 3}} taken from the question; {_ARGS}",
    "test_unicode_tool_call_integration": (
        f"asserts the customer name from the prompt ('你好啊集团') is in the arguments; {_ARGS}"
    ),
    "test_agent_loop": (
        "needs a model that decides by itself to call get_weather for a weather question "
        "(no tool_choice); the emulator calls tools only when the message names them"
    ),
    "test_json_mode": (
        "asserts the JSON has the 'setup'/'punchline' keys asked for in prose; the emulator's "
        "JSON mode answers {'reply': ...}"
    ),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Offline: only loopback sockets for these tests, and skip what needs a real model."""
    if LIVE:
        return
    here = Path(__file__).parent
    for item in items:
        if here not in item.path.parents:
            continue
        # pytest-socket: any connection to another host fails the test.
        item.add_marker(pytest.mark.allow_hosts(["127.0.0.1", "::1"]))
        cls = getattr(item, "cls", None)
        if cls is None or not issubclass(cls, ChatModelIntegrationTests):
            continue
        reason = OFFLINE_SKIPS.get(getattr(item, "originalname", item.name))
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"offline (no API key): {reason}"))


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
