"""The adaptive window (AIMD) and the rate limits."""

from __future__ import annotations

import asyncio
import time

import pytest

from opensearch_llm import RequestValidationError
from opensearch_llm.batch._control import AdaptiveWindow, RateLimits


async def test_a_429_halves_the_window_once_per_round_and_successes_widen_it_by_one_per_round() -> (
    None
):
    window = AdaptiveWindow(16)
    rounds = [await window.acquire() for _ in range(16)]
    assert window.in_flight == 16 and set(rounds) == {0}
    for _ in range(16):
        window.release()
    window.throttled(rounds[0])
    window.throttled(rounds[1])  # the same round: no second halving
    assert window.allowed == 8 and window.decreases == 1
    sent_in = await window.acquire()
    window.release()
    window.throttled(sent_in)  # a request of the new round: halves again
    assert window.allowed == 4
    for _ in range(5):  # about a round of answers (1/window each): one more in flight
        window.answered()
    assert window.allowed == 5
    for _ in range(200):
        window.answered()
    assert window.allowed == 16  # never above the maximum


async def test_the_window_never_closes_below_one() -> None:
    window = AdaptiveWindow(2)
    for _ in range(10):
        window.throttled(window.decreases)
    assert window.allowed == 1 and window.limit == 1.0


async def test_requests_beyond_the_window_wait_until_one_ends_or_it_widens() -> None:
    window = AdaptiveWindow(4)
    window.throttled(0)  # allowed 2
    await window.acquire()
    await window.acquire()
    third = asyncio.ensure_future(window.acquire())
    await asyncio.sleep(0.01)
    assert not third.done()
    window.release()
    await asyncio.wait_for(third, 1)
    assert window.in_flight == 2
    fourth = asyncio.ensure_future(window.acquire())
    await asyncio.sleep(0.01)
    window.answered()  # 2 -> 2.5: still 2
    await asyncio.sleep(0.01)
    assert not fourth.done()
    window.answered()  # 2.5 -> 2.9
    window.answered()  # -> 3.24: room for one more
    await asyncio.wait_for(fourth, 1)
    assert window.in_flight == 3


async def test_a_cancelled_waiter_leaves_its_place_to_the_next() -> None:
    window = AdaptiveWindow(1)
    await window.acquire()
    first = asyncio.ensure_future(window.acquire())
    second = asyncio.ensure_future(window.acquire())
    await asyncio.sleep(0.01)
    first.cancel()
    window.release()
    await asyncio.wait_for(second, 1)
    assert first.cancelled() and window.in_flight == 1


async def test_the_request_limit_holds_its_rate() -> None:
    limits = RateLimits(requests_per_minute=1200, tokens_per_minute=None)  # 20 a second
    started = time.monotonic()
    stamps = []
    for _ in range(40):
        await limits.before_request(10)
        stamps.append(time.monotonic() - started)
    # A bucket of one second's worth (20) goes at once, then one every 50 ms.
    assert stamps[19] < 0.2
    assert 0.95 <= stamps[-1] <= 1.3


async def test_the_token_limit_counts_estimates_and_settles_what_answers_used() -> None:
    limits = RateLimits(requests_per_minute=None, tokens_per_minute=6000)  # 100 a second
    started = time.monotonic()
    await limits.before_request(100)  # the bucket's worth: at once
    await limits.settle(estimated=100, used=150)  # 50 more than estimated: waits for them
    await limits.before_request(20)
    assert 0.6 <= time.monotonic() - started <= 1.0


async def test_a_request_larger_than_the_bucket_takes_it_in_bucketfuls() -> None:
    limits = RateLimits(requests_per_minute=None, tokens_per_minute=6000)  # 100 a second
    started = time.monotonic()
    await limits.before_request(150)
    assert 0.45 <= time.monotonic() - started <= 0.8


@pytest.mark.parametrize("value", [0, -5, float("nan"), True, "600"])
def test_rate_limits_must_be_positive_numbers(value: object) -> None:
    with pytest.raises(RequestValidationError, match="requests_per_minute"):
        RateLimits(value, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, 1.5, True])
def test_concurrency_must_be_a_positive_integer(value: object) -> None:
    with pytest.raises(RequestValidationError, match="concurrency"):
        AdaptiveWindow(value)  # type: ignore[arg-type]
