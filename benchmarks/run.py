"""Run the benchmarks: ``python -m benchmarks.run [--suite S] [--smoke] [--rounds N]``.

Starts the emulator under uvicorn in its own process (pinned to the first CPU), then, round by
round, runs every measurement of every client in a fresh worker process (pinned to the other
CPUs), clients interleaved and rotated between rounds. Writes the Markdown report and the raw
records (JSON). ``--smoke`` is a seconds-long check that everything runs: it prints figures but
no verdicts (one tiny, noisy round judges no target) and writes no file. Never asserts on time.

Two suites: ``main`` (per-call and per-chunk overhead against raw httpx: RESULTS.md) and
``transport`` (throughput at high concurrency against raw aiohttp, time to first chunk through
a TLS proxy: TRANSPORT.md, ``benchmarks.transport_suite``). ``--suite all`` (the default) runs
both, main first, each with its own server.
"""

from __future__ import annotations

import argparse
import datetime
import json
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import machine, system
from benchmarks.clients import CLIENTS, ClientSpec
from benchmarks.report import render
from benchmarks.server import ServerProcess
from benchmarks.workload import FULL, SMOKE, Workload

HERE = Path(__file__).resolve().parent
KINDS = ("calls", "stream", "async")
SUITES = ("all", "main", "transport")
#: Fresh processes per client and round that only time the import (differences of tens of ms
#: between packages that import in seconds need several samples, taken side by side).
IMPORT_REPEATS = 3
WORKER_TIMEOUT = 600.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--suite",
        choices=SUITES,
        default="all",
        help="main (RESULTS.md), transport (TRANSPORT.md) or all (default)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny workload, one round, no files")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="rounds of each suite (default: main 5, transport 3; smoke 1)",
    )
    parser.add_argument(
        "--clients", default=None, help="comma-separated client keys (default: all installed)"
    )
    parser.add_argument("--out", type=Path, default=None, help="Markdown report path")
    parser.add_argument("--json", type=Path, default=None, help="raw records path")
    parser.add_argument(
        "--transport-out", type=Path, default=None, help="transport Markdown report path"
    )
    parser.add_argument(
        "--transport-json", type=Path, default=None, help="transport raw records path"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    return parser.parse_args(argv)


def select(keys: str | None) -> tuple[list[ClientSpec], list[str]]:
    """The clients to run, and notes on those skipped because a package is missing."""
    if keys is not None:
        from benchmarks.transport_clients import TRANSPORT_CLIENTS

        every = [spec.key for spec in CLIENTS]
        every += [spec.key for spec in TRANSPORT_CLIENTS if spec.key not in every]
        unknown = set(keys.split(",")) - set(every)
        if unknown:
            known = ", ".join(every)
            raise SystemExit(f"unknown client(s) {', '.join(sorted(unknown))}; known: {known}")
    wanted = [spec for spec in CLIENTS if keys is None or spec.key in keys.split(",")]
    chosen, notes = [], []
    for spec in wanted:
        missing = spec.missing()
        if missing:
            notes.append(f"{spec.label} skipped: cannot import {', '.join(missing)}.")
        else:
            chosen.append(spec)
    return chosen, notes


def schedule(
    specs: list[ClientSpec], round_index: int, kinds: tuple[str, ...] = KINDS
) -> list[tuple[ClientSpec | None, str]]:
    """One round's jobs: the server ceiling, each kind for every client, then the imports of
    every client (``IMPORT_REPEATS`` times, interleaved); order rotated between rounds.

    Smoke (kind ``all``) times the import in the ``all`` process: only the import-only clients
    get an import job, once.
    """
    shift = round_index % len(specs) if specs else 0
    order = specs[shift:] + specs[:shift]
    jobs: list[tuple[ClientSpec | None, str]] = [(None, "ceiling")]
    for kind in kinds:
        jobs += [(spec, kind) for spec in order if not spec.import_only]
    if kinds == ("all",):
        return jobs + [(spec, "import") for spec in order if spec.import_only]
    return jobs + [(spec, "import") for _ in range(IMPORT_REPEATS) for spec in order]


class Runner:
    """Runs worker processes against one server and collects their records."""

    #: Seconds a worker may take before it is killed (and reported as failed).
    timeout = WORKER_TIMEOUT

    def __init__(self, server: ServerProcess, work: Workload, cpus: list[int]) -> None:
        self.server = server
        self.work = work
        self.cpus = cpus
        self.records: list[dict[str, Any]] = []
        self.failures: list[str] = []
        #: Added to every job, and to every worker's environment.
        self.job_extra: dict[str, Any] = {}
        self.env_extra: dict[str, str] = {}

    def job(self, spec: ClientSpec | None, kind: str) -> dict[str, Any]:
        return {
            "client": spec.key if spec else "server",
            "kind": kind,
            "imports": list(spec.imports) if spec else [],
            "base_url": self.server.base_url,
            "server_pid": self.server.pid,
            "workload": self.work.to_json(),
            "cpus": self.cpus,
            **self.job_extra,
        }

    def run(
        self,
        spec: ClientSpec | None,
        kind: str,
        round_index: int,
        parameters: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        job = {**self.job(spec, kind), **(parameters or {})}
        command = [sys.executable, "-m", "benchmarks.worker", json.dumps(job)]
        shown = " ".join(f"{key}={value}" for key, value in (parameters or {}).items())
        where = f"{job['client']} {kind}{' ' + shown if shown else ''} (round {round_index + 1})"
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                cwd=HERE.parent,
                env={**system.child_environment(), **self.env_extra},
            )
        except subprocess.TimeoutExpired:
            self.failures.append(f"FAILED {where}: no answer in {self.timeout:.0f} s")
            return None
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            self.failures.append(f"FAILED {where}: {tail[0]}")
            return None
        return self.collect(json.loads(done.stdout), job, round_index)

    def collect(
        self, output: dict[str, Any], job: dict[str, Any], round_index: int
    ) -> dict[str, Any]:
        """Keep a worker's output as a record (the round, client and kind added)."""
        record = {**output, "client": job["client"], "kind": job["kind"], "round": round_index}
        self.records.append(record)
        return record


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def describe_record(record: dict[str, Any] | None) -> str:
    if record is None:
        return "FAILED"
    shown = {
        "call_s": ("call", 1e6, "µs"),
        "chunk_s": ("chunk", 1e6, "µs"),
        "ttfc_s": ("ttfc", 1e6, "µs"),
        "async_rps": ("async", 1, "req/s"),
        "server_rps": ("server", 1, "req/s"),
    }
    parts = [f"import {record.get('import_s', 0) * 1e3:.0f} ms"]
    for key, (name, factor, unit) in shown.items():
        if record.get(key) is not None:
            parts.append(f"{name} {record[key] * factor:,.1f} {unit}")
    return ", ".join(parts)


def our_cpu_seconds(server: ServerProcess) -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return used + (system.process_cpu_seconds(server.pid) or 0.0)


def run_round(
    runner: Runner, specs: list[ClientSpec], index: int, total: int, kinds: tuple[str, ...]
) -> dict[str, Any]:
    """Run one round; returns how busy other processes kept the CPUs meanwhile."""
    busy, ours, start = system.busy_cpu_seconds(), our_cpu_seconds(runner.server), time.time()
    for spec, kind in schedule(specs, index, kinds):
        record = runner.run(spec, kind, index)
        label = spec.label if spec else "server ceiling"
        progress(f"[round {index + 1}/{total}] {kind:7} {label:22} {describe_record(record)}")
    wall = time.time() - start
    busy_end = system.busy_cpu_seconds()
    foreign = None
    if busy is not None and busy_end is not None:
        theirs = (busy_end - busy) - (our_cpu_seconds(runner.server) - ours)
        foreign = max(theirs, 0.0) / wall
    return {"round": index, "seconds": wall, "foreign_cpus": foreign}


def prime(runner: Runner, specs: list[ClientSpec]) -> None:
    """Import every client once, unmeasured: compiled bytecode and the page cache are warm."""
    for spec in specs:
        runner.run(spec, "import", -1)
    runner.records.clear()


def stream_notes(records: list[dict[str, Any]], work: Workload) -> list[str]:
    notes = []
    seen: dict[str, set[int]] = {}
    for record in records:
        if "chunks_seen" in record:
            seen.setdefault(record["client"], set()).add(record["chunks_seen"])
            if not record.get("stream_text_ok"):
                notes.append(f"{record['client']}: a stream's text did not match the reply.")
    odd = {c: sorted(n) for c, n in seen.items() if n != {work.stream_chunks}}
    if odd:
        listed = "; ".join(f"{c}: {', '.join(map(str, n))}" for c, n in sorted(odd.items()))
        notes.append(
            f"Every stream is {work.stream_chunks} frames on the wire; some clients hand their "
            f"caller another number of chunks (per chunk figures still divide by the wire "
            f"frames): {listed}."
        )
    return sorted(set(notes))


def execute(args: argparse.Namespace) -> dict[str, Any]:
    work = SMOKE if args.smoke else FULL
    rounds = args.rounds or (1 if args.smoke else 5)
    specs, notes = select(args.clients)
    server_cpu, worker_cpus = (None, []) if args.no_pin else system.cpu_split()
    started, load_start = time.time(), system.load_average()
    with ServerProcess(cpu=server_cpu) as server:
        runner = Runner(server, work, worker_cpus)
        if not args.smoke:
            prime(runner, specs)
        # Smoke: one process per client does everything (a check that it runs, not figures).
        kinds = ("all",) if args.smoke else KINDS
        round_info = [run_round(runner, specs, i, rounds, kinds) for i in range(rounds)]
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "command": command_line(args),
        "machine": machine.describe(),
        "workload": json.loads(work.to_json()),
        "pinning": {"server": server_cpu, "workers": worker_cpus},
        "clients": [spec.key for spec in specs],
        "rounds_done": rounds,
        "rounds": round_info,
        "minutes": (time.time() - started) / 60,
        "load_start": load_start,
        "load_end": system.load_average(),
        "records": runner.records,
        "notes": notes + stream_notes(runner.records, work) + runner.failures,
        "failures": runner.failures,
        "smoke": args.smoke,
    }


def command_line(args: argparse.Namespace) -> str:
    words = ["python", "-m", "benchmarks.run"]
    if args.suite != "all":
        words += ["--suite", args.suite]
    if args.smoke:
        words.append("--smoke")
    if args.rounds:
        words += ["--rounds", str(args.rounds)]
    if args.clients:
        words += ["--clients", args.clients]
    if args.no_pin:
        words.append("--no-pin")
    return shlex.join(words)


def write(run: dict[str, Any], markdown: str, out: Path | None, raw: Path | None) -> None:
    """The report to ``out`` (else standard output) and the records to ``raw`` (if given)."""
    if out is None:
        print(markdown)
    else:
        out.write_text(markdown)
        progress(f"wrote {out}")
    if raw is not None:
        raw.write_text(json.dumps(run, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    failed = False
    if args.suite in ("all", "main") and not select(args.clients)[0]:
        progress("main suite: none of the clients selected is in it")
    elif args.suite in ("all", "main"):
        run = execute(args)
        out = args.out or (None if args.smoke else HERE / "RESULTS.md")
        raw = args.json or (None if args.smoke else HERE / "results.json")
        write(run, render(run), out, raw)
        failed = failed or bool(run["failures"])
    if args.suite in ("all", "transport"):
        from benchmarks import transport_report, transport_suite

        run = transport_suite.execute(
            smoke=args.smoke,
            rounds=args.rounds,
            clients=args.clients,
            no_pin=args.no_pin,
            command=command_line(args),
        )
        out = args.transport_out or (None if args.smoke else HERE / "TRANSPORT.md")
        raw = args.transport_json or (None if args.smoke else HERE / "transport.json")
        write(run, transport_report.render(run), out, raw)
        failed = failed or bool(run["failures"])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
