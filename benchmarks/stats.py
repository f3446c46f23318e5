"""From the workers' records to per-round figures, medians with their range, and the targets."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

FLOOR = "httpx"

#: metric -> (the worker kind that measures it, the field, the factor to the unit shown).
METRICS: dict[str, tuple[str, str, float]] = {
    "import_ms": ("import", "import_s", 1e3),
    "first_call_ms": ("calls", "first_call_s", 1e3),
    "call_us": ("calls", "call_s", 1e6),
    "ttfc_us": ("stream", "ttfc_s", 1e6),
    "chunk_us": ("stream", "chunk_s", 1e6),
    "async_rps": ("async", "async_rps", 1.0),
    "server_busy_pct": ("async", "server_busy", 100.0),
    "client_busy_pct": ("async", "client_busy", 100.0),
    "call_cpu_us": ("calls", "call_cpu_s", 1e6),
    "chunk_cpu_us": ("stream", "chunk_cpu_s", 1e6),
    "rss_mb": ("calls", "rss_mb", 1.0),
}


def _measures(record_kind: str, metric_kind: str) -> bool:
    # A smoke run's "all" process measures everything.
    return record_kind in (metric_kind, "all")


@dataclass(frozen=True)
class Stat:
    median: float
    low: float
    high: float
    count: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Stat | None:
        found = sorted(values)
        if not found:
            return None
        return cls(statistics.median(found), found[0], found[-1], len(found))


def metric_values(record: dict[str, Any]) -> Iterable[tuple[str, float]]:
    """(metric, value in its unit) of every ``METRICS`` figure a record holds."""
    for metric, (kind, field, factor) in METRICS.items():
        value = record.get(field)
        if value is not None and _measures(record["kind"], kind):
            yield metric, value * factor


class Rounds:
    """Per client and metric: the value of each round (the median when a round has several).

    ``extract`` gives a record's (metric, value) pairs (default: the ``METRICS`` figures).
    """

    def __init__(
        self,
        records: list[dict[str, Any]],
        extract: Callable[[dict[str, Any]], Iterable[tuple[str, float]]] = metric_values,
    ) -> None:
        grouped: dict[tuple[str, str, int], list[float]] = defaultdict(list)
        for record in records:
            for metric, value in extract(record):
                grouped[(record["client"], metric, record["round"])].append(value)
        self._values: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
        for (client, metric, round_), values in grouped.items():
            self._values[(client, metric)][round_] = statistics.median(values)
        self._samples = grouped

    def by_round(self, client: str, metric: str) -> dict[int, float]:
        return self._values.get((client, metric), {})

    def stat(self, client: str, metric: str) -> Stat | None:
        return Stat.of(self.by_round(client, metric).values())

    def samples(self, client: str, metric: str) -> int:
        return sum(len(v) for (c, m, _), v in self._samples.items() if (c, m) == (client, metric))

    def paired(
        self, metric: str, clients: tuple[str, ...], combine: Callable[..., float]
    ) -> Stat | None:
        """``combine(*values)`` per round over the rounds where every client has a value."""
        series = [self.by_round(client, metric) for client in clients]
        rounds = set.intersection(*(set(s) for s in series)) if series else set()
        return Stat.of(combine(*(s[r] for s in series)) for r in sorted(rounds))


@dataclass(frozen=True)
class Target:
    """A target (issue 8, issue 13), computed per round: value ``<=`` (or ``>=``) ``limit``."""

    name: str
    formula: str
    metric: str
    clients: tuple[str, ...]
    combine: Callable[..., float]
    limit: float
    at_least: bool = False
    unit: str = "x"

    def evaluate(self, rounds: Rounds) -> tuple[Stat | None, bool | None]:
        found = rounds.paired(self.metric, self.clients, self.combine)
        if found is None:
            return None, None
        met = found.median >= self.limit if self.at_least else found.median <= self.limit
        return found, met


def ratio(value: float, floor: float) -> float:
    return value / floor


def added_share(ours: float, theirs: float, floor: float) -> float:
    """Our added cost as a share of theirs (added = client minus the raw httpx floor)."""
    return (ours - floor) / (theirs - floor)


def difference(ours: float, base: float) -> float:
    return ours - base


TARGETS: tuple[Target, ...] = (
    Target("core per call", "core / raw httpx", "call_us", ("core", FLOOR), ratio, 1.2),
    Target("core per chunk", "core / raw httpx", "chunk_us", ("core", FLOOR), ratio, 1.5),
    Target(
        "ChatOpenSearchLLM per call",
        "(ours - httpx) / (ChatOpenAI - httpx)",
        "call_us",
        ("lc-ours", "chatopenai", FLOOR),
        added_share,
        0.5,
    ),
    Target(
        "ChatOpenSearchLLM per chunk",
        "(ours - httpx) / (ChatOpenAI - httpx)",
        "chunk_us",
        ("lc-ours", "chatopenai", FLOOR),
        added_share,
        1 / 3,
    ),
    Target(
        "OpenSearchLLM per call",
        "(ours - httpx) / (OpenAILike - httpx)",
        "call_us",
        ("li-ours", "openailike", FLOOR),
        added_share,
        0.5,
    ),
    Target(
        "OpenSearchLLM per chunk",
        "(ours - httpx) / (OpenAILike - httpx)",
        "chunk_us",
        ("li-ours", "openailike", FLOOR),
        added_share,
        1 / 3,
    ),
    Target(
        "import langchain_opensearch_llm",
        "adapter - langchain-core alone",
        "import_ms",
        ("lc-ours", "lc-framework"),
        difference,
        60.0,
        unit="ms",
    ),
    Target(
        "import llama_index_opensearch_llm",
        "adapter - llama-index-core alone",
        "import_ms",
        ("li-ours", "li-framework"),
        difference,
        60.0,
        unit="ms",
    ),
    Target(
        "core async throughput (c=64)",
        "core / raw httpx",
        "async_rps",
        ("core", FLOOR),
        ratio,
        1.0,
        at_least=True,
    ),
)
