"""The benchmark harness runs end to end (smoke mode: tiny workload, one process per client).

A benchmark is not a test: nothing here looks at a timing. This only proves that the server
starts, every installed client answers through the harness, and the report renders.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.clients import CLIENTS
from benchmarks.system import child_environment

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
    # The dev extra installs the reference integrations: every client runs, none is skipped.
    for spec in CLIENTS:
        if not spec.import_only:
            assert f"| {spec.label} |" in report, spec.label
    assert "FAILED" not in report and "skipped" not in report


def test_workers_cache_bytecode_even_where_the_shell_forbids_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Else an editable install (ours) would be compiled in every timed cold import, and
    # installed packages (compiled by pip) would not: an unfair import figure.
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("BENCH_PROBE", "kept")
    environment = child_environment()
    assert "PYTHONDONTWRITEBYTECODE" not in environment
    assert environment["BENCH_PROBE"] == "kept"


def test_every_client_gets_interleaved_import_only_processes_each_round() -> None:
    from benchmarks.run import IMPORT_REPEATS, schedule

    jobs = schedule(list(CLIENTS), round_index=1)
    imports = [spec.key for spec, kind in jobs if kind == "import" and spec is not None]
    assert len(imports) == IMPORT_REPEATS * len(CLIENTS)
    # Side by side: each pass over the clients ends before the next begins.
    passes = [imports[i : i + len(CLIENTS)] for i in range(0, len(imports), len(CLIENTS))]
    assert all(sorted(p) == sorted(spec.key for spec in CLIENTS) for p in passes)
    assert jobs[0] == (None, "ceiling")
