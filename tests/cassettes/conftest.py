"""Cassette replays: no socket may open and no key may come from the environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_socket import _remove_restrictions, disable_socket

ENV_VARS = (
    "OPENSEARCH_LLM_API_KEY",
    "DASHSCOPE_API_KEY",
    "OPENSEARCH_LLM_BASE_URL",
    "OPENSEARCH_LLM_KNOWLEDGE_HOST",
    "OPENSEARCH_LLM_APP",
)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # vcrpy answers every request from the cassette; a socket opening would mean one escaped.
    # Event loops need a unix socketpair.
    disable_socket(allow_unix_socket=True)
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    yield
    _remove_restrictions()
