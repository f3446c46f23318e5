"""Shared helpers: constants, pool inspection, fast retries, memory readings."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest

KEY = "sk-reliability-0123456789"
APP = "reliability_app"
CHAT_MODEL = "qwen-plus"
#: Enough words for a stream of many frames (one per word).
QUESTION = "one two three four five six seven"
PASSAGE = "OpenSearch is a search engine"
CHAT_ANSWER = "You said: " + QUESTION
KNOWLEDGE_ANSWER = f"Answer to: {QUESTION} | Sources: {PASSAGE}"

#: What the load tests measured, printed in the terminal summary (name -> text).
LOAD_FIGURES: dict[str, str] = {}

HttpClient = httpx.Client | httpx.AsyncClient


def clear_environment(monkeypatch: pytest.MonkeyPatch, names: Iterable[str]) -> None:
    """Unset ``names`` for one test."""
    for name in names:
        monkeypatch.delenv(name, raising=False)


def fast_backoff(client: Any) -> Any:
    """A core client whose retries wait milliseconds (the retry policy itself is unchanged)."""
    transport = client._transport
    transport.config = dataclasses.replace(
        transport.config, backoff_initial=0.005, backoff_max=0.01
    )
    return client


def memory_kib(field: str = "VmRSS") -> int:
    """This process's resident set (``VmRSS``) or its peak (``VmHWM``), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} is not in /proc/self/status")
