"""How fast a batch goes: an adaptive concurrency window (AIMD) and rate limits per minute.

The window is TCP's congestion control applied to requests in flight: a 429 halves it
(multiplicative decrease, once per round of requests), each answered request widens it by
1/window (additive increase: one more request in flight per round), up to ``concurrency``.
The rate limits are aiolimiter's leaky buckets, one for requests and one for tokens per minute.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque

from aiolimiter import AsyncLimiter

from opensearch_llm._errors import RequestValidationError


class AdaptiveWindow:
    """At most ``limit`` requests in flight; the limit moves between 1 and ``maximum`` (AIMD)."""

    def __init__(self, maximum: int) -> None:
        if not isinstance(maximum, int) or isinstance(maximum, bool) or maximum < 1:
            raise RequestValidationError("concurrency", maximum, "an integer >= 1")
        self.maximum = maximum
        self.limit = float(maximum)
        self.in_flight = 0
        #: How many times the window was halved: a 429 to a request sent before the last
        #: halving belongs to the round already answered for, and does not halve it again.
        self.decreases = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def allowed(self) -> int:
        """Requests allowed in flight now."""
        return max(1, int(self.limit))

    async def acquire(self) -> int:
        """Wait for a place in the window; the round (``decreases``) the request is sent in."""
        while self.in_flight >= self.allowed:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                self._wake()
                raise
        self.in_flight += 1
        return self.decreases

    def release(self) -> None:
        """A request is over: its place goes to the next waiter."""
        self.in_flight -= 1
        self._wake()

    def answered(self) -> None:
        """A request succeeded: widen the window by 1/window (one more per round)."""
        if self.limit < self.maximum:
            self.limit = min(self.maximum, self.limit + 1 / self.limit)
            self._wake()

    def throttled(self, sent_in: int) -> None:
        """A request sent in round ``sent_in`` got a 429: halve the window, once per round."""
        if sent_in == self.decreases:
            self.limit = max(1.0, self.limit / 2)
            self.decreases += 1

    def _wake(self) -> None:
        free = self.allowed - self.in_flight
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1


class RateLimits:
    """Requests and tokens per minute (None: no limit), as aiolimiter leaky buckets.

    A bucket holds one second's worth (at least one request), so a run never bursts more than
    that above the rate. A request acquires its estimated tokens before it is sent; ``settle``
    acquires what its answer used beyond the estimate.
    """

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        self.requests = _bucket("requests_per_minute", requests_per_minute)
        self.tokens = _bucket("tokens_per_minute", tokens_per_minute)

    @property
    def counts_tokens(self) -> bool:
        """Whether tokens are limited (else requests need no estimate)."""
        return self.tokens is not None

    @property
    def limited(self) -> bool:
        """Whether any limit is set (else a request need not wait for one)."""
        return self.requests is not None or self.tokens is not None

    async def before_request(self, tokens: int) -> None:
        """Wait until one more request, of about ``tokens`` tokens, is within the limits."""
        if self.requests is not None:
            await self.requests.acquire()
        await self._take_tokens(tokens)

    async def settle(self, estimated: int, used: int) -> None:
        """Count the tokens an answer used beyond its estimate."""
        await self._take_tokens(used - estimated)

    async def _take_tokens(self, tokens: int) -> None:
        bucket = self.tokens
        while bucket is not None and tokens > 0:  # more than a bucket holds: in bucketfuls
            amount = min(tokens, bucket.max_rate)
            await bucket.acquire(amount)
            tokens -= math.ceil(amount)


def _bucket(name: str, per_minute: float | None) -> AsyncLimiter | None:
    if per_minute is None:
        return None
    if (
        isinstance(per_minute, bool)
        or not isinstance(per_minute, (int, float))
        or not (math.isfinite(per_minute) and per_minute > 0)
    ):
        raise RequestValidationError(name, per_minute, "a number > 0, or None for no limit")
    capacity = max(1.0, per_minute / 60)
    return AsyncLimiter(capacity, 60 * capacity / per_minute)
