"""Fixtures for the knowledge-llm tests: no test reaches the network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_socket import _remove_restrictions, disable_socket, enable_socket, socket_allow_hosts

from .support import Caller

ENV_VARS = (
    "OPENSEARCH_LLM_API_KEY",
    "DASHSCOPE_API_KEY",
    "OPENSEARCH_LLM_BASE_URL",
    "OPENSEARCH_LLM_KNOWLEDGE_HOST",
)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Event loops need a unix socketpair; nothing else may open a socket (local_sockets: 127.0.0.1).
    disable_socket(allow_unix_socket=True)
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    yield
    _remove_restrictions()  # also undoes socket_allow_hosts (enable_socket alone does not)


@pytest.fixture
def local_sockets() -> None:
    """Sockets to 127.0.0.1 only, for the emulator served by uvicorn."""
    enable_socket()
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)


@pytest.fixture(params=["sync", "async"])
def caller(request: pytest.FixtureRequest) -> Caller:
    """The same test body against ``KnowledgeClient`` and ``AsyncKnowledgeClient``."""
    return Caller(request.param)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """``sync`` or ``async``: one test body through the sync API, then through the async one."""
    return str(request.param)
