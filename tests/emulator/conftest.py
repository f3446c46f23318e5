"""Fixtures for the emulator's tests: one emulator served on 127.0.0.1 for the session."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from emu_support import IN_PROCESS_ORIGIN, KEY, MODES, Caller

from opensearch_llm.emulator import Emulator, EmulatorServer, serve


@pytest.fixture(scope="session")
def shared_emulator() -> Emulator:
    return Emulator(api_key=KEY)


@pytest.fixture(scope="session")
def server(shared_emulator: Emulator) -> Iterator[EmulatorServer]:
    with serve(shared_emulator) as running:
        yield running


@pytest.fixture
def emulator(shared_emulator: Emulator) -> Emulator:
    """The served emulator, reset for this test."""
    shared_emulator.reset()
    return shared_emulator


@pytest.fixture(scope="session")
def clients(
    shared_emulator: Emulator, server: EmulatorServer
) -> Iterator[tuple[httpx.Client, httpx.AsyncClient, httpx.Client]]:
    """Clients for the whole session: creating one per test costs more than the tests."""
    sync_client = httpx.Client(transport=shared_emulator.transport(), base_url=IN_PROCESS_ORIGIN)
    async_client = httpx.AsyncClient(
        transport=shared_emulator.async_transport(), base_url=IN_PROCESS_ORIGIN
    )
    socket_client = httpx.Client(base_url=server.origin)
    yield sync_client, async_client, socket_client
    sync_client.close()
    asyncio.run(async_client.aclose())  # in-process: nothing is bound to an event loop
    socket_client.close()


@pytest.fixture(params=MODES)
def call(
    request: pytest.FixtureRequest,
    emulator: Emulator,
    server: EmulatorServer,
    clients: tuple[httpx.Client, httpx.AsyncClient, httpx.Client],
) -> Caller:
    """A caller in each mode: sync in-process, async in-process, real socket."""
    return Caller(request.param, emulator, server, *clients)


@pytest.fixture
def in_process(
    emulator: Emulator,
    server: EmulatorServer,
    clients: tuple[httpx.Client, httpx.AsyncClient, httpx.Client],
) -> Caller:
    """A sync in-process caller (for rules that do not depend on the transport)."""
    return Caller("sync", emulator, server, *clients)


@pytest.fixture(params=("sync", "async"))
def local(
    request: pytest.FixtureRequest,
    emulator: Emulator,
    server: EmulatorServer,
    clients: tuple[httpx.Client, httpx.AsyncClient, httpx.Client],
) -> Caller:
    """An in-process caller, sync and async."""
    return Caller(request.param, emulator, server, *clients)
