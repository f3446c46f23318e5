"""Fixtures for the LlamaIndex adapter tests: no test reaches the network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from li_support import AsyncCalls, Calls, ScriptedService, SyncCalls
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Event loops need a unix socketpair; nothing else may open a socket.
    disable_socket(allow_unix_socket=True)
    for name in ("OPENSEARCH_LLM_API_KEY", "DASHSCOPE_API_KEY", "OPENSEARCH_LLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    yield
    enable_socket()


@pytest.fixture(params=["sync", "async"])
def calls(request: pytest.FixtureRequest) -> Calls:
    """The same operations through the sync methods or through their async twins."""
    return SyncCalls() if request.param == "sync" else AsyncCalls()


@pytest.fixture
def service() -> ScriptedService:
    """A fake endpoint that answers with hand-made wire dicts, in order."""
    return ScriptedService()
