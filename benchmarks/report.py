"""The Markdown of a run: machine, targets, figures with ratios to raw httpx, the server ceiling."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from benchmarks.clients import BY_KEY
from benchmarks.stats import FLOOR, TARGETS, Rounds, Stat, Target

DASH, TIMES, MINUS = "\u2013", "\u00d7", "\u2212"

#: (metric, column title, ratio column?) of the main table, in order.
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("import_ms", "cold import (ms)", False),
    ("first_call_ms", "build + 1st call (ms)", False),
    ("call_us", "call (µs)", True),
    ("ttfc_us", "1st chunk (µs)", True),
    ("chunk_us", "per chunk (µs)", True),
    ("async_rps", "async c=64 (req/s)", True),
    ("rss_mb", "peak RSS (MB)", False),
)
#: The client's own CPU time (less sensitive than wall time to waiting; see the README).
CPU_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("call_cpu_us", "CPU per call (µs)", True),
    ("chunk_cpu_us", "CPU per chunk (µs)", True),
    ("client_busy_pct", "client CPU use, async (%)", False),
    ("server_busy_pct", "server CPU use, async (%)", False),
)
#: (framework, its floor, the reference integration, ours) for the added-cost breakdown.
FAMILIES = (
    ("LangChain", "lc-floor", "chatopenai", "lc-ours"),
    ("LlamaIndex", "li-floor", "openailike", "li-ours"),
)


def number(value: float | None) -> str:
    if value is None:
        return DASH
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def spread(stat: Stat | None) -> str:
    if stat is None:
        return DASH
    return f"{number(stat.median)} ({number(stat.low)}{DASH}{number(stat.high)})"


def table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _ratio(rounds: Rounds, client: str, metric: str) -> str:
    ours, floor = rounds.stat(client, metric), rounds.stat(FLOOR, metric)
    if ours is None or floor is None or not floor.median:
        return DASH
    return f"{ours.median / floor.median:.2f}{TIMES}"


def main_table(
    rounds: Rounds, clients: list[str], columns: tuple[tuple[str, str, bool], ...] = COLUMNS
) -> list[str]:
    header = ["client"]
    for _, title, with_ratio in columns:
        header += [title, f"{TIMES} httpx"] if with_ratio else [title]
    rows = []
    for client in clients:
        row = [BY_KEY[client].label]
        for metric, _, with_ratio in columns:
            row.append(spread(rounds.stat(client, metric)))
            if with_ratio:
                row.append(_ratio(rounds, client, metric))
        rows.append(row)
    return table(header, rows)


def _unit(target: Target) -> str:
    return TIMES if target.unit == "x" else f" {target.unit}"


#: The verdict column of a smoke run: one tiny, noisy round measures nothing worth a verdict.
SMOKE_VERDICT = "not judged (smoke run)"


def _target_row(target: Target, rounds: Rounds, judge: bool = True) -> list[str]:
    found, met = target.evaluate(rounds)
    unit = _unit(target)
    formula = target.formula.replace(" - ", f" {MINUS} ")
    limit = f"{'>=' if target.at_least else '<='} {target.limit:.2f}{unit}"
    if found is None:
        return [target.name, formula, limit, DASH, "not measured"]
    value = f"{found.median:.2f}{unit} ({found.low:.2f}{DASH}{found.high:.2f})"
    if not judge:
        return [target.name, formula, limit, value, SMOKE_VERDICT]
    margin = found.median - target.limit
    verdict = "**met**" if met else "**missed**"
    return [target.name, formula, limit, value, f"{verdict} ({margin:+.2f}{unit})"]


def targets_table(rounds: Rounds, judge: bool = True) -> list[str]:
    header = ["target", "measured as", "limit", f"median (min{DASH}max over rounds)", "verdict"]
    return table(header, (_target_row(target, rounds, judge) for target in TARGETS))


def _added(rounds: Rounds, client: str, base: str, metric: str) -> str:
    found = rounds.paired(metric, (client, base), lambda ours, theirs: ours - theirs)
    return number(found.median if found else None)


def breakdown_table(rounds: Rounds) -> list[str]:
    header = ["framework", "metric", f"framework's own (floor {MINUS} httpx)"]
    header += [f"reference's own (ref {MINUS} floor)", f"ours (ours {MINUS} floor)"]
    rows = []
    for name, floor, reference, ours in FAMILIES:
        present = all(rounds.stat(c, "call_us") for c in (floor, reference, ours, FLOOR))
        if not present:
            continue
        ref_label, our_label = BY_KEY[reference].label, BY_KEY[ours].label
        for metric, unit in (("call_us", "µs per call"), ("chunk_us", "µs per chunk")):
            rows.append(
                [
                    name,
                    unit,
                    _added(rounds, floor, FLOOR, metric),
                    f"{ref_label}: {_added(rounds, reference, floor, metric)}",
                    f"{our_label}: {_added(rounds, ours, floor, metric)}",
                ]
            )
    return table(header, rows)


def ceiling_lines(records: list[dict[str, Any]]) -> list[str]:
    ceilings = [r for r in records if r["kind"] == "ceiling" and "server_rps" in r]
    if not ceilings:
        return ["(not measured)"]
    stat = {key: Stat.of(r[key] for r in ceilings if r.get(key)) for key in ceilings[0]}
    lines = table(
        ["server alone (raw-socket load)", "per wall second", "per server CPU second"],
        [
            [
                "non-streamed requests",
                spread(stat["server_rps"]),
                spread(stat["server_rps_per_cpu"]),
            ],
            [
                "streamed chunks",
                spread(stat["server_chunks_per_s"]),
                spread(stat["server_chunks_per_cpu"]),
            ],
        ],
    )
    return [
        *lines,
        "",
        "The server's CPU use during each client's async run is in the table above: a server "
        "far from 100% busy is not what limits a client.",
    ]


def machine_lines(machine: dict[str, Any]) -> list[str]:
    versions = ", ".join(f"{name} {version}" for name, version in machine["versions"].items())
    return [
        f"- CPU: {machine['cpu']}, {machine['cpus']} cores ({machine['usable_cpus']} usable)",
        f"- Python: {machine['python']} on {machine['platform']}",
        f"- Packages: {versions}",
    ]


def load_lines(run: dict[str, Any]) -> list[str]:
    start, end = run["load_start"], run["load_end"]
    lines = [
        f"- Load average (1, 5, 15 min) at start: {_load(start)}; at the end: {_load(end)} "
        "(the end includes this run's own server and workers)."
    ]
    foreign = [r.get("foreign_cpus") for r in run["rounds"]]
    if all(f is not None for f in foreign):
        shown = ", ".join(f"{f:.2f}" for f in foreign)
        lines.append(
            "- CPUs kept busy by other processes during each round (from /proc/stat, ours "
            f"subtracted): {shown}."
        )
    return lines


def _load(load: list[float] | None) -> str:
    return "unknown" if load is None else ", ".join(f"{value:.2f}" for value in load)


def render(run: dict[str, Any]) -> str:
    records = run["records"]
    rounds = Rounds(records)
    clients = [c for c in run["clients"] if not BY_KEY[c].import_only]
    lines = [
        "# Benchmark results",
        "",
        f"Taken {run['date']} with `{run['command']}` ({run['rounds_done']} rounds, "
        f"{run['minutes']:.1f} min) with the `bench` extra installed (`pip install -e "
        "'.[bench]'`). How each figure is measured: `benchmarks/README.md`.",
        f"Figures: median over rounds (min{DASH}max); each round runs every client in a fresh "
        "process per measurement, clients interleaved. Ratios: medians over raw httpx's.",
        "",
        "## Machine",
        "",
        *machine_lines(run["machine"]),
        *load_lines(run),
        "",
        "## Targets (issue 8)",
        "",
        *targets_table(rounds, judge=not run.get("smoke")),
        "",
        "## Figures",
        "",
        *main_table(rounds, clients),
        "",
        *import_only_lines(rounds, run["clients"]),
        "## Client CPU time",
        "",
        "CPU seconds of the client process (`time.process_time`) per call and per chunk: "
        "insensitive to time spent waiting, a cross-check of the wall figures above.",
        "",
        *main_table(rounds, clients, CPU_COLUMNS),
        "",
        "## Who adds what (µs, medians of per-round differences)",
        "",
        *breakdown_table(rounds),
        "",
        "## Server ceiling",
        "",
        *ceiling_lines(records),
        "",
        *notes_lines(run),
    ]
    return "\n".join(lines) + "\n"


def import_only_lines(rounds: Rounds, clients: list[str]) -> list[str]:
    lines = []
    for client in clients:
        if BY_KEY[client].import_only:
            stat = rounds.stat(client, "import_ms")
            lines.append(f"- Cold import of {BY_KEY[client].label}: {spread(stat)} ms")
    return [*lines, ""] if lines else []


def notes_lines(run: dict[str, Any]) -> list[str]:
    notes = list(run.get("notes") or [])
    if not notes:
        return []
    return ["## Notes", "", *(f"- {note}" for note in notes)]
