"""The benchmark harness runs end to end (smoke mode: tiny workload, one process per client).

A benchmark is not a test: nothing here looks at a timing. This only proves that the server
starts, every installed client answers through the harness, and the report renders.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_run_renders_a_report() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = done.stdout
    for heading in ("## Machine", "## Targets (issue 8)", "## Figures", "## Server ceiling"):
        assert heading in report
    assert "| raw httpx |" in report
    assert "| ChatClient (core) |" in report
    assert "FAILED" not in report
