"""The Markdown of a transport-suite run (``TRANSPORT.md``): targets of issue 13, calls per
second and CPU per call at each concurrency level, concurrent streams, time to first chunk."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from benchmarks.report import (
    DASH,
    TIMES,
    _target_row,
    load_lines,
    machine_lines,
    notes_lines,
    number,
    spread,
    table,
)
from benchmarks.stats import Rounds, Target, ratio
from benchmarks.transport_clients import (
    AIOHTTP_FLOOR,
    CALLS,
    STREAMS,
    TRANSPORT_BY_KEY,
    TTFC,
)

#: Our reading of "CPU per call flat as concurrency grows": at most this much more at the
#: highest level than at the lowest.
FLAT_CPU_LIMIT = 1.5


def record_values(record: dict[str, Any]) -> Iterable[tuple[str, float]]:
    """(metric, value) of a transport record; metrics carry their level or path (``@64``)."""
    kind = record["kind"]
    if kind == CALLS and "rps" in record:
        at = f"@{record['concurrency']}"
        yield f"rps{at}", record["rps"]  # 0 when no call ended within the time limit
        if record.get("cpu_per_call_s") is not None:
            yield f"cpu_call_us{at}", record["cpu_per_call_s"] * 1e6
        if record.get("server_busy") is not None:
            yield f"server_pct{at}", record["server_busy"] * 100
        yield f"client_pct{at}", record["client_busy"] * 100
    elif kind == STREAMS and record.get("chunks"):
        yield "chunks_per_s", record["chunks_per_s"]
        yield "cpu_chunk_us", record["cpu_per_chunk_s"] * 1e6
        if record.get("server_busy") is not None:
            yield "stream_server_pct", record["server_busy"] * 100
    elif kind == TTFC and record.get("ttfc_s"):
        at, firsts = f"@{record['mode']}", record["ttfc_s"]
        yield f"ttfc_first_ms{at}", firsts[0] * 1e3
        yield f"ttfc_last_ms{at}", firsts[-1] * 1e3
        if len(firsts) > 1:
            yield f"ttfc_rest_ms{at}", statistics.median(firsts[1:]) * 1e3
        yield f"connections{at}", record["connections"]


class TransportRounds(Rounds):
    """Rounds of transport records, with each client's CPU-per-call growth per round
    (``cpu_growth``: CPU per call at the highest level over that at the lowest)."""

    def __init__(self, records: list[dict[str, Any]], levels: list[int]) -> None:
        super().__init__(records, record_values)
        low, high = f"cpu_call_us@{levels[0]}", f"cpu_call_us@{levels[-1]}"
        clients = {client for client, _ in self._values}
        for client in clients:
            lows, highs = self.by_round(client, low), self.by_round(client, high)
            for round_ in set(lows) & set(highs):
                self._values[(client, "cpu_growth")][round_] = highs[round_] / lows[round_]


def _same(value: float) -> float:
    return value


def targets(levels: list[int], streams: int) -> tuple[Target, ...]:
    low, mid, high = levels[0], levels[len(levels) // 2], levels[-1]
    over = "core / raw aiohttp"
    floor = AIOHTTP_FLOOR
    found: list[Target] = []
    for level in (low, high):
        for limit, name in ((0.5, ""), (0.8, " (stretch)")):
            found.append(
                Target(
                    f"core async calls/s, c={level}{name}",
                    over,
                    f"rps@{level}",
                    ("core", floor),
                    ratio,
                    limit,
                    at_least=True,
                )
            )
    found.append(
        Target(
            "core CPU per call flat as concurrency grows",
            f"core at c={high} / core at c={low}",
            "cpu_growth",
            ("core",),
            _same,
            FLAT_CPU_LIMIT,
        )
    )
    found.append(
        Target(
            f"core streamed chunks/s, {streams} streams",
            over,
            "chunks_per_s",
            ("core", floor),
            ratio,
            0.6,
            at_least=True,
        )
    )
    for key, call in (("lc-ours", "ChatOpenSearchLLM.ainvoke"), ("li-ours", "OpenSearchLLM.achat")):
        found.append(
            Target(
                f"{call} calls/s, c={mid}",
                f"{TRANSPORT_BY_KEY[key].label} / raw aiohttp",
                f"rps@{mid}",
                (key, floor),
                ratio,
                0.2,
                at_least=True,
            )
        )
    return tuple(found)


def _growth(rounds: Rounds, client: str) -> str:
    found = rounds.paired("cpu_growth", (client,), _same)
    if found is None:
        return DASH
    return f"{found.median:.2f}{TIMES} ({found.low:.2f}{DASH}{found.high:.2f})"


def _ratio(rounds: Rounds, client: str, metric: str) -> str:
    ours, floor = rounds.stat(client, metric), rounds.stat(AIOHTTP_FLOOR, metric)
    if ours is None or floor is None or not floor.median:
        return DASH
    return f"{ours.median / floor.median:.2f}{TIMES}"


def level_table(
    rounds: Rounds, clients: list[str], levels: list[int], metric: str, with_ratio: bool = True
) -> list[str]:
    header = ["client"]
    for level in levels:
        header += [f"c={level}", f"{TIMES} aiohttp"] if with_ratio else [f"c={level}"]
    rows = []
    for client in clients:
        row = [TRANSPORT_BY_KEY[client].label]
        for level in levels:
            row.append(spread(rounds.stat(client, f"{metric}@{level}")))
            if with_ratio:
                row.append(_ratio(rounds, client, f"{metric}@{level}"))
        rows.append(row)
    return table(header, rows)


def _problems(records: list[dict[str, Any]], client: str, kind: str) -> str:
    """Errors, and calls still running at the time limit, summed over rounds."""
    mine = [r for r in records if r["client"] == client and r["kind"] == kind]
    errors = sum(r.get("errors") or 0 for r in mine)
    cut = sum(r.get("unfinished") or 0 for r in mine)
    return f"{errors} / {cut}"


def calls_section(rounds: Rounds, run: dict[str, Any], clients: list[str]) -> list[str]:
    levels = run["workload"]["levels"]
    records = run["records"]
    callers = [c for c in clients if TRANSPORT_BY_KEY[c].calls]
    load = level_table(rounds, callers, levels, "server_pct", with_ratio=False)
    load[0] += " errors / in flight at the time limit (all rounds) |"
    load[1] += "---|"
    for index, client in enumerate(callers):
        load[2 + index] += f" {_problems(records, client, CALLS)} |"
    return [
        "### Calls per second",
        "",
        *level_table(rounds, callers, levels, "rps"),
        "",
        "### Client CPU per call (µs)",
        "",
        "The worker's CPU time (`time.process_time`) over the calls it completed.",
        "",
        *level_table(rounds, callers, levels, "cpu_call_us"),
        "",
        "### Server CPU use during the calls (%), and failures",
        "",
        *load,
    ]


def streams_section(rounds: Rounds, run: dict[str, Any], clients: list[str]) -> list[str]:
    streamers = [c for c in clients if TRANSPORT_BY_KEY[c].streams]
    rows = []
    for client in streamers:
        rows.append(
            [
                TRANSPORT_BY_KEY[client].label,
                spread(rounds.stat(client, "chunks_per_s")),
                _ratio(rounds, client, "chunks_per_s"),
                spread(rounds.stat(client, "cpu_chunk_us")),
                _ratio(rounds, client, "cpu_chunk_us"),
                spread(rounds.stat(client, "stream_server_pct")),
                _problems(run["records"], client, STREAMS),
            ]
        )
    header = ["client", "chunks/s", f"{TIMES} aiohttp", "CPU per chunk (µs)"]
    header += [f"{TIMES} aiohttp", "server CPU use (%)", "errors / in flight at the time limit"]
    return table(header, rows)


def ttfc_section(rounds: Rounds, run: dict[str, Any], clients: list[str]) -> list[str]:
    count = run["workload"]["ttfc_streams"]
    rows = []
    for mode in ("sync", "async"):
        for client in clients:
            if mode not in TRANSPORT_BY_KEY[client].ttfc:
                continue
            connections = rounds.stat(client, f"connections@{mode}")
            rows.append(
                [
                    TRANSPORT_BY_KEY[client].label,
                    mode,
                    spread(rounds.stat(client, f"ttfc_first_ms@{mode}")),
                    spread(rounds.stat(client, f"ttfc_last_ms@{mode}")),
                    spread(rounds.stat(client, f"ttfc_rest_ms@{mode}")),
                    number(connections.median) if connections else DASH,
                ]
            )
    header = ["client", "path", "1st stream (ms)", f"stream {count} (ms)"]
    header += [f"streams 2{DASH}{count}, median (ms)", f"connections for {count} streams"]
    return table(header, rows)


def render(run: dict[str, Any]) -> str:
    work = run["workload"]
    levels = work["levels"]
    rounds = TransportRounds(run["records"], levels)
    clients = run["clients"]
    delay = work["delay_ms"]
    lines = [
        "# Transport benchmark results",
        "",
        f"Taken {run['date']} with `{run['command']}` ({run['rounds_done']} rounds, "
        f"{run['minutes']:.1f} min) with the `bench` extra installed. How each figure is "
        "measured: `benchmarks/README.md` (the transport suite).",
        f"Figures: median over rounds (min{DASH}max); each round runs every client in a fresh "
        "process per measurement, clients interleaved. Ratios: medians over raw aiohttp's (the "
        "floor of async figures; raw httpx is a reference row). Ours (core, ChatOpenSearchLLM, "
        "OpenSearchLLM) run on their default transport (no HTTP client injected); the "
        "references on an injected httpx pool of 256 connections.",
        "",
        "## Machine",
        "",
        *machine_lines(run["machine"]),
        *load_lines(run),
        "",
        "## Targets (issue 13)",
        "",
        *table(
            ["target", "measured as", "limit", f"median (min{DASH}max over rounds)", "verdict"],
            (
                _target_row(t, rounds, judge=not run.get("smoke"))
                for t in targets(levels, work["stream_concurrency"])
            ),
        ),
        "",
        f'"Flat" is read as at most {FLAT_CPU_LIMIT:g}{TIMES} the CPU per call at c={levels[-1]} '
        f"that the same client uses at c={levels[0]}; the floor's own ratio, for comparison: "
        f"raw aiohttp {_growth(rounds, AIOHTTP_FLOOR)}, raw httpx {_growth(rounds, 'httpx')}.",
        "",
        f"## Non-streamed calls at concurrency {', '.join(map(str, levels))}",
        "",
        f"One client shared by c asyncio tasks (default event loop); per level at most "
        f"{work['calls']:,} calls or {work['call_seconds']:g} s, after {work['call_warmup']} "
        "warm-up calls.",
        "",
        *calls_section(rounds, run, clients),
        "",
        f"## {work['stream_concurrency']} concurrent streams",
        "",
        f"{work['stream_chunks']}-chunk streams, {work['stream_concurrency']} at a time, at most "
        f"{work['streams']} streams or {work['stream_seconds']:g} s: the chunks handed to the "
        "caller per second.",
        "",
        *streams_section(rounds, run, clients),
        "",
        f"## Time to first chunk through a TLS proxy ({delay:g} ms each way)",
        "",
        f"A fresh client makes {work['ttfc_streams']} streams one after the other through a "
        f"TLS-terminating proxy on 127.0.0.1 that delays each direction by {delay:g} ms (a round "
        f"trip: {2 * delay:g} ms); a new connection pays the TCP and TLS handshakes (a round trip "
        "each), a reused one neither. Connections: those the proxy accepted for the "
        f"{work['ttfc_streams']} streams.",
        "",
        *ttfc_section(rounds, run, clients),
        "",
        *notes_lines(run),
    ]
    return "\n".join(lines) + "\n"
