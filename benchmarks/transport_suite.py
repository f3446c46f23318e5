"""The transport suite's runner side: ``python -m benchmarks.run --suite transport``.

Starts the emulator (pinned to the first CPU) and the latency-injecting TLS proxy in front of it
(``benchmarks.tlsproxy``, on the same CPU: it works only while one client streams through it),
then, round by round, runs each measurement of each client in a fresh worker process pinned to
the other CPUs: calls at each concurrency level (every client at one level before the next),
concurrent streams, then the time to first chunk, clients rotated between rounds. Workers trust
the proxy's CA through ``SSL_CERT_FILE`` in their environment (read by httpx when a client is
made and by aiohttp's and our default TLS contexts).
"""

from __future__ import annotations

import datetime
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import machine, system
from benchmarks.run import Runner, our_cpu_seconds, progress
from benchmarks.server import ServerProcess
from benchmarks.tlsproxy import ProxyProcess
from benchmarks.transport_clients import (
    CALLS,
    STREAMS,
    TRANSPORT_CLIENTS,
    TTFC,
    TransportSpec,
)
from benchmarks.workload import TRANSPORT_FULL, TRANSPORT_SMOKE, TransportWorkload

#: A worker measures one thing for at most a minute or so: kill it well after that.
TRANSPORT_WORKER_TIMEOUT = 180.0
#: Transport rounds by default (each takes about 5 minutes on 2 cores).
DEFAULT_ROUNDS = 3

Job = tuple[TransportSpec, str, dict[str, Any]]


def select(keys: str | None) -> tuple[list[TransportSpec], list[str]]:
    """The suite's clients (``keys`` unknown here are ignored), and notes on skipped ones."""
    wanted = [s for s in TRANSPORT_CLIENTS if keys is None or s.key in keys.split(",")]
    chosen, notes = [], []
    for spec in wanted:
        missing = spec.missing()
        if missing:
            notes.append(f"{spec.label} skipped: cannot import {', '.join(missing)}.")
        else:
            chosen.append(spec)
    return chosen, notes


def schedule(specs: list[TransportSpec], round_index: int, work: TransportWorkload) -> list[Job]:
    """One round: each concurrency level for every client, streams, then time to first chunk
    (sync, then async), clients rotated between rounds."""
    shift = round_index % len(specs) if specs else 0
    order = specs[shift:] + specs[:shift]
    jobs: list[Job] = []
    for level in work.levels:
        jobs += [(spec, CALLS, {"concurrency": level}) for spec in order if spec.calls]
    jobs += [(spec, STREAMS, {}) for spec in order if spec.streams]
    for mode in ("sync", "async"):
        jobs += [(spec, TTFC, {"mode": mode}) for spec in order if mode in spec.ttfc]
    return jobs


class TransportRunner(Runner):
    """A runner whose workers answer several records (``{"records": [...]}``)."""

    timeout = TRANSPORT_WORKER_TIMEOUT

    def collect(
        self, output: dict[str, Any], job: dict[str, Any], round_index: int
    ) -> dict[str, Any]:
        records = [
            {**record, "client": job["client"], "round": round_index}
            for record in output.get("records", [])
        ]
        self.records += records
        return {"records": records}


def describe(result: dict[str, Any] | None) -> str:
    if result is None:
        return "FAILED"
    parts = []
    for record in result["records"]:
        trouble = ""
        if record.get("errors") or record.get("unfinished"):
            trouble = (
                f" ({record.get('errors') or 0} errors, "
                f"{record.get('unfinished') or 0} in flight at the time limit)"
            )
        if record["kind"] == CALLS:
            cpu = record.get("cpu_per_call_s") or 0.0
            parts.append(
                f"c={record['concurrency']}: {record['rps']:,.0f} calls/s, "
                f"{cpu * 1e6:,.0f} µs CPU/call{trouble}"
            )
        elif record["kind"] == STREAMS:
            parts.append(f"{record['chunks_per_s']:,.0f} chunks/s{trouble}")
        elif record.get("ttfc_s"):
            firsts = ", ".join(f"{value * 1e3:.0f}" for value in record["ttfc_s"])
            parts.append(
                f"{record['mode']} first chunks {firsts} ms, {record['connections']} connections"
            )
        else:
            parts.append(f"{record['kind']} {record.get('first_error')}")
    return "; ".join(parts)


def run_rounds(
    runner: TransportRunner,
    specs: list[TransportSpec],
    rounds: int,
    smoke: bool,
    extra_pids: list[int],
) -> list[dict[str, Any]]:
    info = []
    for index in range(rounds):
        busy, start = system.busy_cpu_seconds(), time.time()
        ours = our_cpu_seconds(runner.server) + _cpu(extra_pids)
        jobs: list[Job] = (
            [(spec, "all", {}) for spec in specs] if smoke else schedule(specs, index, runner.work)  # type: ignore[arg-type]
        )
        for spec, kind, parameters in jobs:
            result = runner.run(spec, kind, index, parameters)
            shown = " ".join(str(value) for value in parameters.values())
            progress(
                f"[transport {index + 1}/{rounds}] {kind:8} {shown:6} {spec.label:20} "
                f"{describe(result)}"
            )
        wall = time.time() - start
        busy_end, foreign = system.busy_cpu_seconds(), None
        if busy is not None and busy_end is not None:
            mine = our_cpu_seconds(runner.server) + _cpu(extra_pids) - ours
            foreign = max((busy_end - busy) - mine, 0.0) / wall
        info.append({"round": index, "seconds": wall, "foreign_cpus": foreign})
    return info


def _cpu(pids: list[int]) -> float:
    return sum(system.process_cpu_seconds(pid) or 0.0 for pid in pids)


def notes(records: list[dict[str, Any]], work: TransportWorkload) -> list[str]:
    """What a reader must know: errors, wrong answers, odd chunk counts.

    (Calls still running at a time limit are in the report's tables: a slow client's normal.)
    """
    found = []
    errors: dict[tuple[str, str], int] = {}
    for record in records:
        where = record["kind"] + (f" c={record['concurrency']}" if record["kind"] == CALLS else "")
        where += f" {record['mode']}" if record["kind"] == TTFC else ""
        key = (record["client"], where)
        errors[key] = errors.get(key, 0) + (record.get("errors") or 0)
        if record.get("errors") and record.get("first_error"):
            found.append(f"{record['client']} {where}: first error: {record['first_error']}")
        if record["kind"] == CALLS and record.get("reply_ok") is False:
            found.append(f"{record['client']} {where}: the reply was not the emulator's.")
        if record.get("stream_text_ok") is False:
            found.append(f"{record['client']} {where}: a stream's text did not match the reply.")
        if record["kind"] == STREAMS and record.get("chunks_per_stream") not in (
            None,
            work.stream_chunks,
        ):
            found.append(
                f"{record['client']}: {record['chunks_per_stream']:g} chunks per stream handed "
                f"to the caller ({work.stream_chunks} frames on the wire)."
            )
    for (client, where), count in sorted(errors.items()):
        if count:
            found.append(f"{client} {where}: {count} errors (all rounds).")
    return sorted(set(found))


def execute(
    *,
    smoke: bool,
    rounds: int | None,
    clients: str | None,
    no_pin: bool,
    command: str,
) -> dict[str, Any]:
    work = TRANSPORT_SMOKE if smoke else TRANSPORT_FULL
    rounds = rounds or (1 if smoke else DEFAULT_ROUNDS)
    specs, skipped = select(clients)
    server_cpu, worker_cpus = (None, []) if no_pin else system.cpu_split()
    started, load_start = time.time(), system.load_average()
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as scratch:
        ca_file = str(Path(scratch) / "ca.pem")
        with (
            ServerProcess(cpu=server_cpu) as server,
            ProxyProcess(server.port, work.delay_ms, ca_file, cpu=server_cpu) as proxy,
        ):
            runner = TransportRunner(server, work, worker_cpus)  # type: ignore[arg-type]
            runner.job_extra = {
                "suite": "transport",
                "tls_base_url": proxy.base_url,
                "control_port": proxy.control_port,
            }
            runner.env_extra = {"SSL_CERT_FILE": ca_file}
            round_info = run_rounds(runner, specs, rounds, smoke, [proxy.pid])
    return {
        "suite": "transport",
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "command": command,
        "machine": machine.describe(),
        "workload": json.loads(work.to_json()),
        "pinning": {"server": server_cpu, "proxy": server_cpu, "workers": worker_cpus},
        "clients": [spec.key for spec in specs],
        "rounds_done": rounds,
        "rounds": round_info,
        "minutes": (time.time() - started) / 60,
        "load_start": load_start,
        "load_end": system.load_average(),
        "records": runner.records,
        "notes": skipped + notes(runner.records, work) + runner.failures,
        "failures": runner.failures,
        "smoke": smoke,
    }
