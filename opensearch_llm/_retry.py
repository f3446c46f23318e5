"""Which failures are retried, and how long to wait. Pure; the transports apply it.

tenacity runs the attempts after a first failure. Retried: 429 (Alibaba's
``insufficient_quota`` 429 is a per-minute throttle), 500, 502, 503, 504 and connection errors.
Never 400, 401, 403, 404, and never a stream after its first byte (the transports only retry
the opening of a stream).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

from opensearch_llm._config import DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX
from opensearch_llm._errors import (
    APIConnectionError,
    APIStatusError,
    ContentFilterError,
    ContextWindowExceededError,
    InternalServerError,
    RateLimitError,
)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def is_retryable(error: BaseException) -> bool:
    """Whether a failed request may be sent again."""
    if isinstance(error, APIConnectionError):
        return True
    if isinstance(error, (ContentFilterError, ContextWindowExceededError)):
        return False
    if isinstance(error, APIStatusError):
        # An error body under HTTP 200 is judged by the class its code maps to.
        return error.status in RETRY_STATUSES or (
            error.status < 400 and isinstance(error, (RateLimitError, InternalServerError))
        )
    return False


def backoff_delay(
    attempt: int,
    retry_after: float | None = None,
    *,
    initial: float = DEFAULT_BACKOFF_INITIAL,
    maximum: float = DEFAULT_BACKOFF_MAX,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds before retry number ``attempt`` (from 1): ``Retry-After``, else jittered 2^n."""
    if retry_after is not None:
        return max(0.0, retry_after)
    ceiling = min(maximum, initial * 2.0 ** (attempt - 1))
    return ceiling * (0.5 + rand() / 2)


def parse_retry_after(headers: Any, now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), else None."""
    if headers is None:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def retry_allowed(error: BaseException, max_retry_after: float) -> bool:
    """Retryable, and not asking for a wait longer than ``max_retry_after``."""
    if not is_retryable(error):
        return False
    retry_after = getattr(error, "retry_after", None)
    return retry_after is None or retry_after <= max_retry_after
