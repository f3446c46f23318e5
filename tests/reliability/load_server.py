"""The emulator in a process of its own, for the load tests (so it does not share our GIL)."""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Iterator, Mapping
from multiprocessing.connection import Connection

from opensearch_llm.emulator import Emulator, serve

_START_TIMEOUT = 60.0


def serve_until_told(conn: Connection, fault_rate: Mapping[str, float] | None, seed: int) -> None:
    """Serve an emulator on 127.0.0.1, send its origin, and stop when anything is received."""
    emulator = Emulator(fault_rate=fault_rate, seed=seed, max_recorded=100)
    with serve(emulator) as server:
        conn.send(server.origin)
        conn.recv()
        conn.send(emulator.request_count)


class LoadServer:
    """A running emulator process: its origin, and how many requests it answered."""

    def __init__(self, origin: str, conn: Connection) -> None:
        self.origin = origin
        self._conn = conn
        self.stopped = False
        self.request_count = 0

    def stop(self) -> None:
        """Stop serving; ``request_count`` is then the number of requests answered."""
        if self.stopped:
            return
        self.stopped = True
        self._conn.send("stop")
        if self._conn.poll(_START_TIMEOUT):
            self.request_count = self._conn.recv()


@contextlib.contextmanager
def load_server(
    fault_rate: Mapping[str, float] | None = None, seed: int = 7
) -> Iterator[LoadServer]:
    """An emulator served by a child process (spawned: no state is inherited)."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(
        target=serve_until_told, args=(theirs, dict(fault_rate or {}), seed), daemon=True
    )
    process.start()
    running: LoadServer | None = None
    try:
        if not ours.poll(_START_TIMEOUT):
            raise RuntimeError("the emulator process did not start")
        running = LoadServer(ours.recv(), ours)
        yield running
    finally:
        if running is not None:
            running.stop()
        process.join(_START_TIMEOUT)
        if process.is_alive():
            process.terminate()  # only the process started here, by its handle
            process.join()
