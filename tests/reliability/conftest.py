"""Fixtures for the reliability suite: one emulator served on 127.0.0.1, and nothing else reachable.

Every test here talks to the emulator over real sockets on the loopback (or in-process), so
the connection pools the clients keep can be inspected for leaks. The load figures the load
tests measure are printed in the terminal summary.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import httpx._transports.default as httpx_transports
import pytest
from pytest_socket import _remove_restrictions, socket_allow_hosts

from opensearch_llm.emulator import Emulator, EmulatorServer, serve
from tests.reliability.support import LOAD_FIGURES, clear_environment

#: Environment variables a test must not pick up from the machine it runs on.
ENV_VARS = (
    "OPENSEARCH_LLM_API_KEY",
    "DASHSCOPE_API_KEY",
    "OPENSEARCH_LLM_BASE_URL",
    "OPENSEARCH_LLM_KNOWLEDGE_HOST",
    "OPENSEARCH_LLM_APP",
)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Offline: sockets may connect to the loopback only (and unix sockets, for event loops).
    clear_environment(monkeypatch, ENV_VARS)
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    yield
    _remove_restrictions()


@pytest.fixture(scope="session", autouse=True)
def _one_certificate_store() -> Iterator[None]:
    # Every client here talks plain HTTP to 127.0.0.1, yet each new httpx client loads the CA
    # bundle (about 50 ms on 2 busy cores, times a thousand clients). Load the default one once;
    # any other SSL setting, and everything else about clients, is unchanged.
    original = httpx_transports.create_ssl_context  # type: ignore[attr-defined]
    default = original()

    def create_ssl_context(
        verify: Any = True, cert: Any = None, trust_env: bool = True
    ) -> ssl.SSLContext:
        if verify is True and cert is None and trust_env:
            return default  # type: ignore[no-any-return]
        return original(verify=verify, cert=cert, trust_env=trust_env)  # type: ignore[no-any-return]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx_transports, "create_ssl_context", create_ssl_context)
        yield


@pytest.fixture(scope="session")
def shared_emulator() -> Emulator:
    """One emulator for the session; any non-empty key is accepted."""
    return Emulator()


@pytest.fixture(scope="session")
def server(shared_emulator: Emulator) -> Iterator[EmulatorServer]:
    """The emulator on a real socket (uvicorn in a background thread)."""
    with serve(shared_emulator) as running:
        yield running


@pytest.fixture
def emulator(shared_emulator: Emulator, server: EmulatorServer) -> Iterator[Emulator]:
    """The served emulator, with an empty request log and no scripted faults."""
    shared_emulator.reset()
    yield shared_emulator
    shared_emulator.reset()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what the load tests measured."""
    if not LOAD_FIGURES:
        return
    terminalreporter.section("reliability: load figures")
    for name, value in LOAD_FIGURES.items():
        terminalreporter.write_line(f"{name}: {value}")
