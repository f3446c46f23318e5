"""Embedding many passages: ours against LangChain's and LlamaIndex's OpenAI embedding classes.

``python -m benchmarks.embeddings`` embeds ``--texts`` passages (default 10,000 of ~200 words)
with every client below, each in a fresh process, against a fake Model Studio embeddings
endpoint in another process, and writes ``benchmarks/EMBEDDINGS.md``. ``--smoke`` runs a tiny
workload once and only prints.

The fake endpoint behaves as the service is documented to (docs/service-facts.md, "Embeddings
and rerank"): ``POST /compatible-mode/v1/embeddings``, at most 10 inputs per request (more: the
reported 400), strings only (token arrays: 400), float vectors whatever ``encoding_format``
asks, one vector of ``--dims`` values (10 significant digits, as the service prints them) per
input, after ``--latency`` seconds (the service's time, spent waiting, not computing). Its
answers are made once at start, so its CPU stays out of the way; it counts requests and the
most inputs one request carried.

Measured per client: wall time and the client process's CPU time (all its threads) for the
whole batch, after a warm-up call that opens connections and imports everything; divided by
the number of passages. A benchmark is not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REPORT = Path(__file__).resolve().parent / "EMBEDDINGS.md"
LIMIT = 10  # inputs per request, text-embedding-v3/v4
KEY = "sk-bench"
MODEL = "text-embedding-v4"

# --------------------------------------------------------------------------- the fake endpoint


def _vector(draw: random.Random, dims: int) -> list[float]:
    return [float(f"{draw.uniform(-0.08, 0.08):.10g}") for _ in range(dims)]


def answers(dims: int) -> dict[int, bytes]:
    """The response body for each number of inputs, made once."""
    draw = random.Random(7)
    vectors = [_vector(draw, dims) for _ in range(LIMIT)]
    bodies = {}
    for count in range(1, LIMIT + 1):
        data = [{"embedding": vectors[i], "index": i, "object": "embedding"} for i in range(count)]
        body = {"data": data, "model": MODEL, "object": "list", "id": "bench"}
        body["usage"] = {"prompt_tokens": 200 * count, "total_tokens": 200 * count}
        bodies[count] = json.dumps(body, separators=(",", ":")).encode()
    return bodies


def _error(message: str) -> bytes:
    error = {
        "message": message,
        "type": "InvalidParameter",
        "param": None,
        "code": "InvalidParameter",
    }
    return json.dumps({"error": error, "request_id": "bench"}).encode()


TOO_MANY = _error(
    "<400> InternalError.Algo.InvalidParameter: Value error, batch size is invalid, it should "
    f"not be larger than {LIMIT}.: input.contents"
)
NOT_TEXT = _error("contents is neither str nor list of str.: payload.input.contents")


class FakeEmbeddings:
    """The ASGI app of the fake endpoint (plus ``GET /stats`` and ``POST /reset``)."""

    def __init__(self, dims: int, latency: float) -> None:
        self.bodies = answers(dims)
        self.latency = latency
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.most_inputs = 0
        self.refused = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        status, body = self._answer(scope["path"], b"".join(chunks))
        if scope["path"].endswith("/embeddings") and status == 200:
            await asyncio.sleep(self.latency)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _answer(self, path: str, raw: bytes) -> tuple[int, bytes]:
        if path == "/stats":
            stats = {
                "requests": self.requests,
                "most_inputs": self.most_inputs,
                "refused": self.refused,
            }
            return 200, json.dumps(stats).encode()
        if path == "/reset":
            self.reset()
            return 200, b"{}"
        inputs = json.loads(raw).get("input")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        self.requests += 1
        self.most_inputs = max(self.most_inputs, len(inputs))
        if len(inputs) > LIMIT or not all(isinstance(text, str) for text in inputs):
            self.refused += 1
            return 400, TOO_MANY if len(inputs) > LIMIT else NOT_TEXT
        return 200, self.bodies[len(inputs)]


def serve_fake(dims: int, latency: float) -> None:
    """Serve the fake endpoint until standard input closes; print its port first."""
    import threading

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        FakeEmbeddings(dims, latency), log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    threading.Thread(
        target=lambda: (sys.stdin.read(), setattr(server, "should_exit", True)), daemon=True
    ).start()
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    server.run(sockets=[sock])


# --------------------------------------------------------------------------- the clients


def passages(count: int, words: int, seed: int = 11) -> list[str]:
    """``count`` passages of about ``words`` words each (distinct, deterministic)."""
    draw = random.Random(seed)
    vocabulary = [
        f"{draw.choice('bcdfghklmnprstvz')}{draw.choice('aeiou')}{n % 97}x" for n in range(5000)
    ]
    return [f"passage {n}: " + " ".join(draw.choices(vocabulary, k=words)) for n in range(count)]


#: A client: its sync embed function, and a maker of its async one (called in the event loop).
Pair = tuple[Callable[[list[str]], list[list[float]]], Callable[[], Callable[..., Any]]]


def _ours_core(base_url: str) -> Pair:
    from opensearch_llm import AsyncEmbeddingClient, EmbeddingClient

    sync = EmbeddingClient(KEY, base_url=base_url, model=MODEL)

    def make_async() -> Callable[..., Any]:
        client = AsyncEmbeddingClient(KEY, base_url=base_url, model=MODEL)

        async def embed(texts: list[str]) -> list[list[float]]:
            return (await client.embed(texts)).vectors

        return embed

    return (lambda texts: sync.embed(texts).vectors), make_async


def _ours_langchain(base_url: str) -> Pair:
    from langchain_opensearch_llm import OpenSearchEmbeddings

    model = OpenSearchEmbeddings(api_key=KEY, base_url=base_url, model=MODEL)
    return model.embed_documents, lambda: model.aembed_documents


def _openai_langchain(base_url: str) -> Pair:
    from langchain_openai import OpenAIEmbeddings

    # As users configure it for this service: strings, not token arrays; 10 per request.
    model = OpenAIEmbeddings(
        model=MODEL,
        api_key=KEY,  # type: ignore[arg-type]
        base_url=base_url,
        check_embedding_ctx_length=False,
        chunk_size=LIMIT,
    )
    return model.embed_documents, lambda: model.aembed_documents


def _ours_llama_index(base_url: str) -> Pair:
    from llama_index_opensearch_llm import OpenSearchEmbedding

    model = OpenSearchEmbedding(api_key=KEY, base_url=base_url, model_name=MODEL)
    return model.get_text_embedding_batch, lambda: model.aget_text_embedding_batch


def _openai_llama_index(base_url: str) -> Pair:
    from llama_index.embeddings.openai import OpenAIEmbedding

    model = OpenAIEmbedding(
        model_name=MODEL, api_key=KEY, api_base=base_url, embed_batch_size=LIMIT
    )
    return model.get_text_embedding_batch, lambda: model.aget_text_embedding_batch


@dataclass(frozen=True)
class Client:
    key: str
    label: str
    package: str
    make: Callable[[str], Pair]


CLIENTS = [
    Client(
        "core", "EmbeddingClient / AsyncEmbeddingClient (ours, core)", "opensearch_llm", _ours_core
    ),
    Client("lc-ours", "OpenSearchEmbeddings (ours, LangChain)", "langchain_core", _ours_langchain),
    Client(
        "lc-openai", "OpenAIEmbeddings (langchain-openai)", "langchain_openai", _openai_langchain
    ),
    Client(
        "li-ours", "OpenSearchEmbedding (ours, LlamaIndex)", "llama_index.core", _ours_llama_index
    ),
    Client(
        "li-openai",
        "OpenAIEmbedding (llama-index-embeddings-openai)",
        "llama_index.embeddings.openai",
        _openai_llama_index,
    ),
]
NOT_RUN = {
    "DashScopeEmbedding (llama-index-embeddings-dashscope)": "calls Model Studio's native "
    "text-embedding API through the dashscope SDK, not the compatible-mode endpoint measured "
    "here; its default embed_batch_size of 25 also exceeds the 10 texts v3/v4 take "
    "(docs/service-facts.md)",
}


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    return time.perf_counter() - start[0], time.process_time() - start[1]


def worker(key: str, mode: str, base_url: str, count: int, words: int) -> dict[str, Any]:
    """One client, one mode, in this process: wall and CPU seconds for ``count`` passages.

    A first call of 10 passages (not measured) imports what the call needs and opens a
    connection.
    """
    client = next(c for c in CLIENTS if c.key == key)
    texts = passages(count, words)
    sync, make_async = client.make(base_url)
    if mode == "sync":
        sync(texts[:LIMIT])
        start = _clock()
        vectors = sync(texts)
        wall, cpu = _since(start)
    else:
        (wall, cpu), vectors = asyncio.run(_timed(make_async, texts))
    assert len(vectors) == count and all(len(v) == len(vectors[0]) for v in vectors)
    return {"wall": wall, "cpu": cpu, "count": count}


async def _timed(make_async: Callable[[], Callable[..., Any]], texts: list[str]) -> Any:
    embed = make_async()
    await embed(texts[:LIMIT])
    start = _clock()
    vectors = await embed(texts)
    return _since(start), vectors


# --------------------------------------------------------------------------- the run


def _http(port: int, path: str) -> dict[str, Any]:
    import httpx

    return dict(httpx.post(f"http://127.0.0.1:{port}{path}").json())


def _available(client: Client) -> bool:
    import importlib.util

    return importlib.util.find_spec(client.package.split(".")[0]) is not None and _importable(
        client.package
    )


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every client and mode, ``args.rounds`` times each (interleaved), against one server."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.embeddings",
            "--serve",
            "--dims",
            str(args.dims),
            "--latency",
            str(args.latency),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert server.stdout is not None and server.stdin is not None
    port = json.loads(server.stdout.readline())["port"]
    base_url = f"http://127.0.0.1:{port}/compatible-mode/v1"
    chosen = [c for c in CLIENTS if (not args.clients or c.key in args.clients) and _available(c)]
    records: list[dict[str, Any]] = []
    try:
        for round_ in range(args.rounds):
            for client in chosen:
                for mode in ("sync", "async"):
                    _http(port, "/reset")
                    command = [
                        sys.executable,
                        "-m",
                        "benchmarks.embeddings",
                        "--worker",
                        client.key,
                        "--mode",
                        mode,
                        "--base-url",
                        base_url,
                        "--texts",
                        str(args.texts),
                        "--words",
                        str(args.words),
                    ]
                    done = subprocess.run(
                        command, capture_output=True, text=True, cwd=ROOT, timeout=3600
                    )
                    if done.returncode != 0:
                        raise RuntimeError(f"{client.key} {mode} failed:\n{done.stderr[-3000:]}")
                    result = json.loads(done.stdout.strip().splitlines()[-1])
                    stats = _http(port, "/stats")
                    records.append(
                        {"client": client.key, "mode": mode, "round": round_, **result, **stats}
                    )
                    print(_progress(records[-1]), file=sys.stderr)
    finally:
        server.stdin.close()
        server.wait(timeout=15)
    return records


def _progress(record: dict[str, Any]) -> str:
    return (
        f"round {record['round'] + 1} {record['client']:10} {record['mode']:5} "
        f"wall {record['wall']:7.2f} s  cpu {record['cpu']:6.2f} s  "
        f"requests {record['requests']}  most inputs {record['most_inputs']}"
    )


def report(records: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The Markdown report: medians per client and mode, as ratios to ours (the core)."""
    rows = {}
    for record in records:
        rows.setdefault((record["client"], record["mode"]), []).append(record)
    labels = {c.key: c.label for c in CLIENTS}
    lines = [
        "# Embedding many passages: ours against the OpenAI-compatible classes",
        "",
        f"{args.texts:,} passages of ~{args.words} words, {args.dims}-dimension float vectors, "
        f"{args.latency * 1000:g} ms of service time per request, fake Model Studio endpoint "
        "(10 inputs per request at most; `python -m benchmarks.embeddings`, see its docstring). "
        f"Median of {args.rounds} round(s), each client in a fresh process. Machine: "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average at the start {args.load:.2f}.",
        "",
        "| client | mode | wall s | wall ms / passage | CPU s | CPU µs / passage | wall vs ours "
        "| CPU vs ours | requests (1 warm-up) | most inputs per request |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    ours = {mode: _median(rows.get(("core", mode), []), "wall") for mode in ("sync", "async")}
    ours_cpu = {mode: _median(rows.get(("core", mode), []), "cpu") for mode in ("sync", "async")}
    for (key, mode), group in rows.items():
        wall, cpu = _median(group, "wall"), _median(group, "cpu")
        count = group[0]["count"]
        lines.append(
            f"| {labels[key]} | {mode} | {wall:.2f} | {wall / count * 1000:.2f} | {cpu:.2f} | "
            f"{cpu / count * 1e6:.0f} | {wall / ours[mode]:.2f}x | {cpu / ours_cpu[mode]:.2f}x | "
            f"{group[0]['requests']} | {max(r['most_inputs'] for r in group)} |"
        )
    lines += ["", "Not run:", ""]
    lines += [f"- {name}: {why}." for name, why in NOT_RUN.items()]
    lines += [
        "",
        "Ours sends the requests of one call side by side (8 at a time by default: threads for "
        "sync, tasks for async) and never more than 10 inputs per request; `OpenAIEmbeddings` "
        "sends its chunks one after another in both modes; LlamaIndex's `OpenAIEmbedding` sends "
        "them one after another in sync and all at once in async (`asyncio.gather`, no bound).",
    ]
    return "\n".join(lines) + "\n"


def _median(group: list[dict[str, Any]], key: str) -> float:
    return statistics.median(record[key] for record in group) if group else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--words", type=int, default=200)
    parser.add_argument("--dims", type=int, default=1024)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=lambda text: text.split(","), default=None)
    parser.add_argument(
        "--smoke", action="store_true", help="200 passages, one round, no report file"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="sync", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_fake(args.dims, args.latency)
        return
    if args.worker:
        print(json.dumps(worker(args.worker, args.mode, args.base_url, args.texts, args.words)))
        return
    if args.smoke:
        args.texts, args.rounds = 200, 1
    args.load = os.getloadavg()[0]
    text = report(measure(args), args)
    print(text)
    if not args.smoke:
        REPORT.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
