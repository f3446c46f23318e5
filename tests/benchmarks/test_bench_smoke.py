"""The benchmark harness runs end to end (smoke mode: tiny workload, one process per client).

A benchmark is not a test: nothing here looks at a timing. This only proves that the server
(and the transport suite's TLS proxy) starts, every installed client answers through the
harness, and both reports render.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.clients import CLIENTS
from benchmarks.system import child_environment
from benchmarks.transport_clients import CALLS, STREAMS, TRANSPORT_CLIENTS, TTFC

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """The smoke run of both suites: its standard output, and the transport suite's records."""
    raw = tmp_path_factory.mktemp("bench") / "transport.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--transport-json", str(raw)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, json.loads(raw.read_text())


def test_smoke_run_renders_a_report(smoke: tuple[str, dict[str, Any]]) -> None:
    report = smoke[0].split("# Transport benchmark results")[0]
    for heading in ("## Machine", "## Targets (issue 8)", "## Figures", "## Server ceiling"):
        assert heading in report
    # The dev extra installs the reference integrations: every client runs, none is skipped.
    for spec in CLIENTS:
        if not spec.import_only:
            assert f"| {spec.label} |" in report, spec.label
    assert "FAILED" not in report and "skipped" not in report
    assert_figures_without_verdicts(report)


def assert_figures_without_verdicts(report: str) -> None:
    """A smoke run's targets table shows the measured figures, and no met or missed."""
    assert "**met**" not in report and "**missed**" not in report
    rows = [line for line in report.splitlines() if line.endswith("| not judged (smoke run) |")]
    values = [row.split("|")[-3].strip() for row in rows]  # the median (min-max) column
    assert values and all(value[0].isdigit() or value[0] == "-" for value in values), rows


def test_smoke_run_renders_the_transport_report(smoke: tuple[str, dict[str, Any]]) -> None:
    report = "# Transport benchmark results" + smoke[0].split("# Transport benchmark results")[1]
    for heading in (
        "## Targets (issue 13)",
        "### Calls per second",
        "### Client CPU per call (µs)",
        "concurrent streams",
        "## Time to first chunk through a TLS proxy",
    ):
        assert heading in report, heading
    for spec in TRANSPORT_CLIENTS:
        assert f"| {spec.label} |" in report, spec.label
    assert "FAILED" not in report and "skipped" not in report
    assert "not measured" not in report  # every target has its figures
    assert_figures_without_verdicts(report)


def test_every_transport_client_answered_every_measurement(
    smoke: tuple[str, dict[str, Any]],
) -> None:
    run = smoke[1]
    assert run["failures"] == []
    assert sorted(run["clients"]) == sorted(spec.key for spec in TRANSPORT_CLIENTS)
    for spec in TRANSPORT_CLIENTS:
        mine = [r for r in run["records"] if r["client"] == spec.key]
        expected = {(CALLS, level) for level in run["workload"]["levels"]}
        expected |= {(STREAMS, None)} if spec.streams else set()
        expected |= {(TTFC, mode) for mode in spec.ttfc}
        found = {(r["kind"], r.get("concurrency") or r.get("mode")) for r in mine}
        found = {(k, None) if k == STREAMS else (k, v) for k, v in found}
        assert found == expected, spec.key
        for record in mine:
            where = (spec.key, record["kind"], record.get("concurrency"), record.get("mode"))
            assert record["errors"] == 0, (where, record.get("first_error"))
            if record["kind"] == CALLS:
                assert record["ok"] > 0 and record["reply_ok"], where
            elif record["kind"] == STREAMS:
                assert record["chunks"] > 0 and record["stream_text_ok"], where
            else:  # through the TLS proxy: the worker trusted its certificate
                assert len(record["ttfc_s"]) == run["workload"]["ttfc_streams"], where
                assert record["stream_text_ok"] and record["connections"] >= 1, where


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


def test_the_transport_round_runs_every_level_of_every_client_then_streams_then_ttfc() -> None:
    from benchmarks.transport_suite import schedule
    from benchmarks.workload import TRANSPORT_FULL

    jobs = schedule(list(TRANSPORT_CLIENTS), 1, TRANSPORT_FULL)
    calls = [(spec.key, p["concurrency"]) for spec, kind, p in jobs if kind == CALLS]
    assert len(calls) == len(TRANSPORT_CLIENTS) * len(TRANSPORT_FULL.levels)
    # Side by side: every client at one level before any client at the next.
    levels = [level for _, level in calls]
    assert levels == sorted(levels)
    kinds = [kind for _, kind, _ in jobs]
    assert kinds == sorted(kinds, key=[CALLS, STREAMS, TTFC].index)


def test_every_client_gets_interleaved_import_only_processes_each_round() -> None:
    from benchmarks.run import IMPORT_REPEATS, schedule

    jobs = schedule(list(CLIENTS), round_index=1)
    imports = [spec.key for spec, kind in jobs if kind == "import" and spec is not None]
    assert len(imports) == IMPORT_REPEATS * len(CLIENTS)
    # Side by side: each pass over the clients ends before the next begins.
    passes = [imports[i : i + len(CLIENTS)] for i in range(0, len(imports), len(CLIENTS))]
    assert all(sorted(p) == sorted(spec.key for spec in CLIENTS) for p in passes)
    assert jobs[0] == (None, "ceiling")
