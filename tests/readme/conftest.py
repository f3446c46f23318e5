"""README tests: sockets only to 127.0.0.1, and no key or endpoint from the environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_socket import _remove_restrictions, socket_allow_hosts

ENV_VARS = (
    "OPENSEARCH_LLM_API_KEY",
    "DASHSCOPE_API_KEY",
    "OPENSEARCH_LLM_BASE_URL",
    "OPENSEARCH_LLM_KNOWLEDGE_HOST",
    "OPENSEARCH_LLM_APP",
)


@pytest.fixture(autouse=True)
def _local_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    yield
    _remove_restrictions()
