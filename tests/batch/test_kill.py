"""``opensearch-llm batch run`` killed with SIGKILL half-way, then run again: nothing lost or sent twice.

And the rewrite of the output that ``--retry-failed`` makes, killed at any point: nothing lost.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from opensearch_llm.batch._files import drop_lines
from opensearch_llm.batch._formats import retried_on_rerun
from opensearch_llm.emulator import Emulator

from .support import KEY, id_counts, results, write_prompts

ROWS = 4000
CONCURRENCY = 32


def _command(source: Path, out: Path, base_url: str) -> list[str]:
    return [
        sys.executable, "-m", "opensearch_llm.cli", "batch", "run", str(source), "--out", str(out),
        "--model", "qwen-plus", "--base-url", base_url, "--no-progress",
        "--concurrency", str(CONCURRENCY),
    ]  # fmt: skip


class OutcomeLog(Emulator):
    """An emulator that notes each chat request's row and HTTP status (0: connection reset)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.outcomes: list[tuple[str, int]] = []

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> Any:
        response = super().handle(method, path, headers, body)
        text = json.loads(body)["messages"][-1]["content"]
        self.outcomes.append(("id-" + text.rsplit(" ", 1)[1], response.status))
        return response


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DASHSCOPE_API_KEY",)}
    return {**env, "OPENSEARCH_LLM_API_KEY": KEY}


def _complete_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_a_run_killed_half_way_finishes_on_the_rerun_without_sending_a_finished_row_again(
    tmp_path: Path, served: Any
) -> None:
    emulator = OutcomeLog(fault_rate={"429": 0.05, "reset": 0.02}, seed=9, max_recorded=0)
    server = served(emulator)
    source, out = write_prompts(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl"
    command = _command(source, out, server.compatible_base_url)

    first = subprocess.Popen(
        command, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while _complete_lines(out) < ROWS // 2 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    first.kill()  # SIGKILL: no handler runs, the last line may be cut short
    first.communicate()
    assert first.returncode == -9, "the first run ended before it could be killed half-way"
    finished_before = {line["custom_id"] for line in _whole_lines(out)}
    before, emulator.outcomes = emulator.outcomes, []
    assert ROWS // 2 <= len(finished_before) < ROWS

    second = subprocess.run(
        command, env=_environment(), capture_output=True, text=True, timeout=120
    )

    assert second.returncode in (0, 1), second.stderr
    counts = id_counts(out)
    assert len(counts) == ROWS and set(counts.values()) == {1}  # every row once
    after = emulator.outcomes
    assert not {row for row, _ in after} & finished_before  # no finished row was sent again
    requests, retries = map(
        int, re.search(r"requests (\d+) \(retries (\d+)", second.stdout).groups()
    )
    # The rerun: requests = the rows left + its retries, as the emulator counted them.
    assert len(after) == requests == ROWS - len(finished_before) + retries
    # Both runs: requests = rows + retries, where the retries are the failed attempts that were
    # tried again, and the answers lost with the process (in flight when it died: at most the
    # concurrency), which the rerun asks again.
    answered_twice = {r for r, s in before if s == 200} & {r for r, s in after if s == 200}
    assert len(answered_twice) <= CONCURRENCY
    failed_attempts = sum(1 for _, status in before + after if status != 200)
    reported = sum(1 for line in results(out) if line["error"] is not None)
    assert len(before) + len(after) == ROWS + failed_attempts - reported + len(answered_twice)


def _whole_lines(path: Path) -> list[dict[str, Any]]:
    """The result lines written in full (a kill may cut the last one short)."""
    return [json.loads(raw) for raw in path.read_bytes().split(b"\n")[:-1]]


# --------------------------------------------------------------------------- the rewrite of --retry-failed

#: Runs ``drop_lines`` on a journal, pausing (for the kill) at one point: after ``lines`` lines
#: were copied, after the copy was synced to disk, or after it replaced the journal.
REWRITE = """
import os, sys, time
from opensearch_llm.batch import _files
from opensearch_llm.batch._formats import retried_on_rerun

path, point = sys.argv[1], sys.argv[2]

def pause():
    print("paused", flush=True)
    time.sleep(60)

def pausing(call, after=1):
    calls = [0]
    def wrapper(*args):
        result = call(*args)
        calls[0] += 1
        if calls[0] == after:
            pause()
        return result
    return wrapper

if point == "copying":
    _files._picked = pausing(_files._picked, after=500)
elif point == "synced":
    os.fsync = pausing(os.fsync)
else:
    os.replace = pausing(os.replace)
_files.drop_lines(path, retried_on_rerun)
"""


@pytest.mark.parametrize("point", ["copying", "synced", "replaced"])
def test_a_kill_during_the_rewrite_leaves_the_old_journal_or_the_new_one_whole(
    tmp_path: Path, point: str
) -> None:
    journal = tmp_path / "out.jsonl"
    lines = [_line(n, failed=n % 4 == 0) for n in range(2000)]
    journal.write_bytes(b"".join(lines))
    old = journal.read_bytes()
    new = b"".join(line for n, line in enumerate(lines) if n % 4)

    rewrite = subprocess.Popen(
        [sys.executable, "-c", REWRITE, str(journal), point], stdout=subprocess.PIPE, text=True
    )
    assert rewrite.stdout is not None and rewrite.stdout.readline() == "paused\n"
    rewrite.kill()
    rewrite.communicate()

    assert journal.read_bytes() == (new if point == "replaced" else old)
    # A rerun goes on from what the kill left: the same journal in the end, nothing lost.
    assert drop_lines(journal, retried_on_rerun) == (0 if point == "replaced" else 500)
    assert journal.read_bytes() == new and sorted(tmp_path.iterdir()) == [journal]


def _line(number: int, *, failed: bool) -> bytes:
    error = {"code": "service_unavailable", "message": "down", "type": "InternalServerError"}
    line = {"custom_id": f"id-{number}", "response": None, "error": error if failed else None}
    if not failed:
        line["response"] = {"status_code": 200, "request_id": f"r{number}", "body": {}}
    return json.dumps(line).encode() + b"\n"
