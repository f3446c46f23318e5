"""Which options belong to which way of sending a file: online, or through the Batch API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opensearch_llm._errors import RequestValidationError

#: Options of a Batch API run only; those of an online run only are ``ONLINE_OPTIONS``.
BATCH_API_OPTIONS = ("completion_window", "poll_seconds")
ONLINE_OPTIONS = (
    "concurrency",
    "requests_per_minute",
    "tokens_per_minute",
    "max_connections",
    "retry_failed",
    "app",
    "knowledge_host",
)


def refuse_options(options: Mapping[str, Any], names: Iterable[str], where: str) -> None:
    """Refuse the first of ``names`` in ``options``: it applies only ``where``."""
    for name in names:
        if name in options:
            raise RequestValidationError(name, options[name], f"only with {where}")
