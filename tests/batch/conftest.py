"""Fixtures for the batch tests: emulators served on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from opensearch_llm.emulator import Emulator, EmulatorServer, serve


@pytest.fixture
def served() -> Iterator[Any]:
    """Serve emulators made in the test: ``server = served(Emulator(...))``."""
    stack: list[Any] = []

    def start(emulator: Emulator) -> EmulatorServer:
        context = serve(emulator)
        stack.append(context)
        return context.__enter__()

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)
