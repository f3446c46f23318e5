"""The server process: the emulator served by uvicorn on 127.0.0.1, pinned to one CPU.

``python -m benchmarks.server [--cpu N]`` prints ``{"port": ..., "pid": ...}`` on one line and
serves until its standard input closes. ``ServerProcess`` starts and stops it from the runner.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from types import TracebackType

from benchmarks.system import pin_to


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    args = parser.parse_args()
    if args.cpu is not None:
        pin_to({args.cpu})
    from opensearch_llm.emulator import Emulator, serve

    # Keep no request log: thousands of 500-word bodies would only grow the server's memory.
    with serve(Emulator(max_recorded=0), host="127.0.0.1", port=0) as server:
        print(json.dumps({"port": server.port, "pid": os.getpid()}), flush=True)
        sys.stdin.read()  # until the runner closes our standard input


@dataclass
class ServerProcess:
    """``with ServerProcess(cpu) as server:`` a running server; ``server.base_url``, ``.pid``."""

    cpu: int | None = None
    port: int = 0
    pid: int = 0
    _process: subprocess.Popen[str] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/compatible-mode/v1"

    def __enter__(self) -> ServerProcess:
        command = [sys.executable, "-m", "benchmarks.server"]
        if self.cpu is not None:
            command += ["--cpu", str(self.cpu)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the benchmark server did not start")
        started = json.loads(line)
        self.port, self.pid = started["port"], started["pid"]
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stop_child(self._process)


def stop_child(process: subprocess.Popen[str] | None) -> None:
    """Stop a child that exits when its stdin closes; kill it after 15 s."""
    if process is None:
        return
    assert process.stdin is not None
    process.stdin.close()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


if __name__ == "__main__":
    main()
