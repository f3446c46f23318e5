"""Where the core's time goes, against the raw httpx floor: ``python -m benchmarks.profiling``.

Two views of the same paths (a non-streamed call; a 500-chunk stream), against the emulator
served by uvicorn in its own process:

1. cProfile of N calls and M streams by the core ``ChatClient`` and by raw httpx, internal
   time grouped by component (our modules one by one, tenacity, httpx, httpcore, h11, json,
   socket I/O, the rest), in µs per call or per chunk, and the difference;
2. timeit of each step the core adds, one at a time and without a profiler's overhead.

Writes Markdown (``--out``, default stdout). Profiles inflate small functions; read the
groups' shares and the timeit figures together. ``--client KEY`` profiles any one client of
``benchmarks.clients`` instead (its top functions), e.g. to see where an adapter's time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import timeit
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from benchmarks.clients import BY_KEY, CLIENTS, BenchClient, CoreClient, RawHttpx
from benchmarks.report import MINUS
from benchmarks.server import ServerProcess
from benchmarks.system import cpu_split, pin_to
from benchmarks.workload import FULL, Target

#: (substring of a profiled function's file or name, component), first match wins.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("opensearch_llm/", "opensearch_llm."),  # refined to the module below
    ("tenacity", "tenacity"),
    ("httpx/", "httpx"),
    ("httpcore/", "httpcore"),
    ("h11/", "h11"),
    ("anyio", "anyio"),
    ("json", "json"),
    ("_socket.socket", "socket I/O"),
    ("select", "socket I/O"),
    ("typing", "typing"),
    ("pydantic", "pydantic"),
)


def component(function: tuple[str, int, str]) -> str:
    filename, _, name = function
    where = f"{filename} {name}"
    for needle, group in COMPONENTS:
        if needle in where:
            if group == "opensearch_llm.":
                return "opensearch_llm." + Path(filename).stem
            return group
    return "other (stdlib, builtins)"


def profiled(run: Callable[[], object], repeat: int) -> dict[Any, Any]:
    """cProfile's raw table of ``repeat`` runs: function -> (calls, primitive, tottime, cumtime)."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeat):
        run()
    profiler.disable()
    return pstats.Stats(profiler).stats  # type: ignore[attr-defined, no-any-return]


def by_component(stats: dict[Any, Any], repeat: int) -> dict[str, tuple[float, float]]:
    """Per component: (internal seconds, function calls), per repetition."""
    groups: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for function, (calls, _, internal, _, _) in stats.items():
        group = groups[component(function)]
        group[0] += internal / repeat
        group[1] += calls / repeat
    return {name: (time, calls) for name, (time, calls) in groups.items()}


def top_functions(stats: dict[Any, Any], repeat: int, count: int) -> list[tuple[str, float, float]]:
    """Our own functions (opensearch_llm, tenacity): (name, seconds, calls) per repetition."""
    ours = [
        (_short(function), row[2] / repeat, row[0] / repeat)
        for function, row in stats.items()
        if "opensearch_llm/" in function[0] or "tenacity" in function[0]
    ]
    return sorted(ours, key=lambda item: -item[1])[:count]


def comparison_table(
    floor: dict[str, tuple[float, float]], core: dict[str, tuple[float, float]], scale: float
) -> list[str]:
    """Internal µs and function calls per component, raw httpx against the core."""

    def added(name: str) -> float:
        return core.get(name, (0.0, 0.0))[0] - floor.get(name, (0.0, 0.0))[0]

    header = (
        f"| component | raw httpx (µs) | core (µs) | core {MINUS} raw (µs) "
        "| raw httpx (calls) | core (calls) |"
    )
    lines = [header, "|---|---|---|---|---|---|"]
    rows = [*sorted(set(floor) | set(core), key=lambda name: -added(name)), "**total**"]
    totals = {
        "**total**": (
            tuple(map(sum, zip(*floor.values(), strict=False))),
            tuple(map(sum, zip(*core.values(), strict=False))),
        )
    }
    for name in rows:
        raw, ours = totals.get(name, (floor.get(name, (0.0, 0.0)), core.get(name, (0.0, 0.0))))
        lines.append(
            f"| {name} | {raw[0] * scale:.1f} | {ours[0] * scale:.1f} | "
            f"{(ours[0] - raw[0]) * scale:+.1f} | {raw[1] * scale / 1e6:.1f} | "
            f"{ours[1] * scale / 1e6:.1f} |"
        )
    return lines


def timeit_us(statement: Callable[[], object], number: int = 2000) -> float:
    """Best of 5 timeit runs, µs per execution."""
    return min(timeit.repeat(statement, number=number, repeat=5)) / number * 1e6


def call_steps(target: Target) -> list[tuple[str, float]]:
    """The steps the core adds to a non-streamed call, each alone (µs).

    Uses the core's pure functions (private, so this may need updating when they move).
    """
    import httpx
    import tenacity

    from opensearch_llm._bodies import decode_json, decode_response, encode_json, request_id_of
    from opensearch_llm._chat_wire import build_chat_request, normalise_completion

    messages: Any = target.messages(long=False)
    request = build_chat_request(target.model, messages, {}, stream=False)
    body = json.dumps(_sample_completion()).encode()
    headers = httpx.Headers({"content-type": "application/json", "x-request-id": "abc"})
    retrying: dict[str, Any] = {
        "stop": tenacity.stop_after_attempt(3),
        "retry": tenacity.retry_if_exception(lambda error: False),
        "wait": lambda state: 0.0,
        "reraise": True,
    }
    steps: list[tuple[str, Callable[[], object]]] = [
        (
            "build_chat_request (validate + profile)",
            lambda: build_chat_request(target.model, messages, {}, stream=False),
        ),
        ("encode_json", lambda: encode_json(request.payload)),
        ("json.dumps (what raw httpx does)", lambda: json.dumps(request.payload)),
        ("httpx.Timeout(...) made per call", lambda: httpx.Timeout(10.0, read=600.0)),
        (
            "tenacity.Retrying(...) around a no-op (the core: only after a failed attempt)",
            lambda: tenacity.Retrying(**retrying)(lambda: None),
        ),
        (
            "decode_response (decode_json + error checks)",
            lambda: decode_response(200, body, headers),
        ),
        ("json.loads (what raw httpx does)", lambda: json.loads(body)),
        ("decode_json (pydantic-core, what the core does)", lambda: decode_json(body)),
        (
            "decode_json + normalise_completion + request_id_of",
            lambda: _normalised(decode_json(body), headers, normalise_completion, request_id_of),
        ),
    ]
    return [(name, timeit_us(step)) for name, step in steps]


def _normalised(body: Any, headers: Any, normalise: Any, request_id: Any) -> object:
    return normalise(body, request_id(body, headers))


def _sample_completion() -> dict[str, Any]:
    message = {"role": "assistant", "content": "You said: Recommend one science fiction book"}
    return {
        "id": "chatcmpl-e0000000-0000-4000-8000-000000000002",
        "object": "chat.completion",
        "created": 1,
        "model": "qwen-plus",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }


def chunk_steps(stream_body: bytes, chunks: int) -> list[tuple[str, float]]:
    """Per chunk: the core's decoding steps over a whole recorded stream body, each alone (µs)."""
    from opensearch_llm._accumulate import StreamAccumulator
    from opensearch_llm._bodies import parse_event_data
    from opensearch_llm._chat_stream import ChatChunkDecoder
    from opensearch_llm._chat_wire import chunk_from_frame
    from opensearch_llm._framing import Framer

    events = Framer().feed(stream_body)
    values = [parse_event_data(event.data)[0] for event in events]
    frames = [v[0] for v in values if v]

    def accumulate() -> None:
        accumulator = StreamAccumulator()
        for frame in frames:
            accumulator.add(frame)

    steps = [
        ("whole ChatChunkDecoder.feed", lambda: list(ChatChunkDecoder().feed(stream_body))),
        ("Framer.feed (lines to frames)", lambda: Framer().feed(stream_body)),
        (
            "parse_event_data (decode_json + [DONE])",
            lambda: [parse_event_data(e.data) for e in events],
        ),
        ("chunk_from_frame (error/envelope checks)", lambda: [chunk_from_frame(f) for f in frames]),
        ("StreamAccumulator.add", accumulate),
        ("raw: splitlines + json.loads", lambda: _raw_parse(stream_body)),
    ]
    return [(name, timeit_us(step, number=20) / chunks) for name, step in steps]


def _raw_parse(body: bytes) -> None:
    for line in body.decode().splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            json.loads(line[6:])


def recorded_stream(target: Target) -> bytes:
    import httpx

    raw = RawHttpx(target)
    response = httpx.post(target.url, json=raw.stream_body, headers=raw.headers)
    raw.close()
    return response.content


def steps_table(title: str, steps: Iterable[tuple[str, float]]) -> list[str]:
    return [f"| {title} | µs |", "|---|---|", *(f"| {name} | {us:.2f} |" for name, us in steps)]


def warm(*clients: BenchClient) -> None:
    for client in clients:
        for _ in range(20):
            client.call()
        for _ in range(3):
            list(client.stream())


def component_sections(target: Target, calls: int, streams: int) -> list[str]:
    raw, core = RawHttpx(target), CoreClient(target)
    warm(raw, core)
    chunks = FULL.stream_chunks
    lines = [
        "## Per non-streamed call (µs per call)",
        "",
        *comparison_table(
            by_component(profiled(raw.call, calls), calls),
            by_component(profiled(core.call, calls), calls),
            1e6,
        ),
        "",
        "## Per streamed chunk (µs per chunk: whole streams divided by their chunks)",
        "",
        *comparison_table(
            by_component(profiled(lambda: list(raw.stream()), streams), streams),
            by_component(profiled(lambda: list(core.stream()), streams), streams),
            1e6 / chunks,
        ),
        "",
        "## Our functions by internal time (µs per call)",
        "",
        "| function | µs | calls |",
        "|---|---|---|",
        *(
            f"| `{name}` | {seconds * 1e6:.1f} | {count:g} |"
            for name, seconds, count in top_functions(profiled(core.call, calls), calls, 15)
        ),
    ]
    raw.close()
    core.close()
    return lines


def report(target: Target, calls: int, streams: int) -> list[str]:
    return [
        "# Profile: the core against raw httpx",
        "",
        f"cProfile, internal time per component (wall clock; the profiler inflates small "
        f"functions) and function calls (exact); {calls} calls and {streams} streams of "
        f"{FULL.stream_chunks} chunks (`python -m benchmarks.profiling`).",
        "",
        *component_sections(target, calls, streams),
        "",
        "## Steps alone (timeit, best of 5)",
        "",
        *steps_table("per call", call_steps(target)),
        "",
        *steps_table("per chunk", chunk_steps(recorded_stream(target), FULL.stream_chunks)),
        "",
        *counts_report(target, installed_clients()),
    ]


def _short(function: tuple[str, int, str]) -> str:
    path = Path(function[0])
    return f"{path.parent.name}/{path.name}:{function[1]} {function[2]}"


def ranked_table(stats: dict[Any, Any], column: int, repeat: int, scale: float) -> list[str]:
    """The 25 functions first by ``column`` (2: internal, 3: cumulative time) of ``stats``."""
    ranked = sorted(stats.items(), key=lambda item: -item[1][column])[:25]
    lines = ["| function | µs | calls |", "|---|---|---|"]
    for function, row in ranked:
        lines.append(
            f"| `{_short(function)}` | {row[column] / repeat * scale:.1f} | "
            f"{row[0] / repeat * scale / 1e6:.3g} |"
        )
    return lines


def client_report(key: str, target: Target, calls: int, streams: int) -> list[str]:
    """Any client's call and stream: the top functions by internal and by cumulative time."""
    client = BY_KEY[key].factory(target)  # type: ignore[misc]
    warm(client)
    lines = [f"# Profile of {BY_KEY[key].label}", ""]
    runs: tuple[tuple[str, Callable[[], object], int, float], ...] = (
        ("call (µs per call)", client.call, calls, 1e6),
        ("stream (µs per chunk)", lambda: list(client.stream()), streams, 1e6 / FULL.stream_chunks),
    )
    for what, run, repeat, scale in runs:
        stats = profiled(run, repeat)
        for column, title in ((2, "internal"), (3, "cumulative")):
            lines += [f"## {what}: top functions by {title} time", ""]
            lines += [*ranked_table(stats, column, repeat, scale), ""]
    client.close()
    return lines


def installed_clients() -> list[str]:
    return [spec.key for spec in CLIENTS if spec.factory and not spec.missing()]


def function_calls(stats: dict[Any, Any], repeat: int) -> float:
    return float(sum(row[0] for row in stats.values())) / repeat


def counts_report(target: Target, keys: list[str]) -> list[str]:
    """Python function calls per call and per chunk of every client: exact, whatever the load."""
    lines = [
        "## Function calls per call and per chunk, every client (cProfile counts: exact)",
        "",
        "| client | per call | per chunk |",
        "|---|---|---|",
    ]
    for key in keys:
        client = BY_KEY[key].factory(target)  # type: ignore[misc]
        warm(client)
        per_call = function_calls(profiled(client.call, 50), 50)
        per_stream = function_calls(profiled(lambda: list(client.stream()), 3), 3)  # noqa: B023
        lines.append(
            f"| {BY_KEY[key].label} | {per_call:,.0f} | {per_stream / FULL.stream_chunks:,.1f} |"
        )
        client.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=40)
    parser.add_argument("--client", default=None, help="profile this client alone (a key)")
    parser.add_argument(
        "--counts", action="store_true", help="function calls per call/chunk of every client"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    server_cpu, worker_cpus = cpu_split()
    pin_to(set(worker_cpus))
    with ServerProcess(cpu=server_cpu) as server:
        target = Target(server.base_url, FULL.words)
        if args.counts:
            lines = counts_report(target, installed_clients())
        elif args.client:
            lines = client_report(args.client, target, args.calls, args.streams)
        else:
            lines = report(target, args.calls, args.streams)
        text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
