"""``_fanout``: what a failure or a Ctrl-C leaves of a call's requests, and the per-loop bound."""

from __future__ import annotations

import asyncio
import copy
import pickle
import signal
import threading
from collections.abc import Callable, Iterator

import pytest

from opensearch_llm._fanout import ConcurrencyLimit, arun_all, run_all

WAIT = 5.0  # seconds a blocked request waits at most: only reached when a test fails


class Requests:
    """Requests 0, 1, 2, ... that block until ``release``; 0 and 1 first wait for each other.

    With ``fail``, request 0 raises once request 1 is in flight.
    """

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.started: list[int] = []
        self.finished: list[int] = []
        self.release = threading.Event()
        self.both_running = threading.Barrier(3)  # requests 0 and 1, and the test's helper

    def send(self, item: int) -> int:
        self.started.append(item)
        if item < 2:
            self.both_running.wait(timeout=WAIT)
        if item == 0 and self.fail:
            raise ValueError("bad request")
        self.release.wait(timeout=WAIT)
        self.finished.append(item)
        return item

    def once_both_run(self, act: Callable[[], object]) -> None:
        """Call ``act`` in a thread of its own once requests 0 and 1 are in flight."""

        def helper() -> None:
            self.both_running.wait(timeout=WAIT)
            act()

        threading.Thread(target=helper, daemon=True).start()


@pytest.fixture
def requests() -> Iterator[Requests]:
    made = Requests()
    yield made
    made.release.set()


def test_a_failure_is_raised_without_waiting_for_the_requests_in_flight(
    requests: Requests,
) -> None:
    requests.fail = True
    requests.once_both_run(lambda: None)
    with pytest.raises(ValueError, match="bad request"):
        run_all(requests.send, list(range(6)), 2)
    assert requests.finished == []  # request 1 is still in flight
    requests.release.set()
    assert not {3, 4, 5} & set(requests.started)  # never started: cancelled


def test_ctrl_c_returns_at_once_and_cancels_what_has_not_started(requests: Requests) -> None:
    main = threading.get_ident()
    assert main == threading.main_thread().ident  # where Python runs its signal handlers
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        requests.once_both_run(lambda: signal.pthread_kill(main, signal.SIGINT))
        with pytest.raises(KeyboardInterrupt):
            run_all(requests.send, list(range(4)), 2)
        assert requests.finished == []  # the two in flight were not waited for
    finally:
        signal.signal(signal.SIGINT, previous)
    requests.release.set()
    assert sorted(requests.started) == [0, 1]  # 2 and 3 never start


def test_the_async_bound_is_per_event_loop_and_travels_without_its_semaphores() -> None:
    limit = ConcurrencyLimit(2)
    in_flight, most = [0], [0]

    async def send(item: int) -> int:
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        await asyncio.sleep(0.001)
        in_flight[0] -= 1
        return item

    async def calls() -> list[list[int]]:
        return list(await asyncio.gather(*(arun_all(send, range(5), limit) for _ in range(3))))

    assert asyncio.run(calls()) == [list(range(5))] * 3
    assert asyncio.run(calls()) == [list(range(5))] * 3  # a second loop gets its own semaphore
    assert most[0] == 2
    copied = pickle.loads(pickle.dumps(limit))
    assert copied.limit == 2 and asyncio.run(calls()) == [list(range(5))] * 3
    assert copy.copy(limit) is not limit and copy.copy(limit).limit == 2
