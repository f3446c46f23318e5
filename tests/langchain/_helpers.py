"""Run one test body in sync and async mode: ``await invoke(runnable, input, mode)``."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.runnables import Runnable

MODES = pytest.mark.parametrize("mode", ["sync", "async"])


async def invoke(runnable: Runnable[Any, Any], value: Any, mode: str, **kwargs: Any) -> Any:
    """``invoke`` or ``ainvoke``."""
    if mode == "sync":
        return runnable.invoke(value, **kwargs)
    return await runnable.ainvoke(value, **kwargs)


async def stream(runnable: Runnable[Any, Any], value: Any, mode: str, **kwargs: Any) -> list[Any]:
    """Every item of ``stream`` or ``astream``."""
    if mode == "sync":
        return list(runnable.stream(value, **kwargs))
    return [item async for item in runnable.astream(value, **kwargs)]


async def batch(runnable: Runnable[Any, Any], values: list[Any], mode: str) -> list[Any]:
    """``batch`` or ``abatch``."""
    if mode == "sync":
        return runnable.batch(values)
    return await runnable.abatch(values)


def merge(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    """The sum of streamed message chunks."""
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    return full
