"""The online runner against the served emulator: every row once, resume, failures, limits."""

from __future__ import annotations

import asyncio
import csv
import functools
import gc
import io
import json
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from opensearch_llm import RequestValidationError
from opensearch_llm.batch import BatchSummary, arun, run
from opensearch_llm.batch._files import journal_path
from opensearch_llm.batch._formats import KNOWLEDGE_URL
from opensearch_llm.emulator import Emulator

from .support import KEY, client_options, id_counts, prompt_ids, results, write_prompts


def test_ten_thousand_rows_with_429s_and_resets_are_each_answered_or_reported_once(
    tmp_path: Path, served: Any
) -> None:
    rows = 10_000
    emulator = Emulator(fault_rate={"429": 0.05, "reset": 0.02}, seed=16, max_recorded=None)
    server = served(emulator)
    source, out = write_prompts(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl"

    summary = run(source, out, model="qwen-plus", **client_options(server))

    counts = id_counts(out)
    assert len(counts) == rows and set(counts.values()) == {1}  # every row, none twice
    assert summary.succeeded + summary.failed == rows
    assert summary.requests == emulator.request_count == rows + summary.retries
    assert summary.rate_limited > 0.03 * rows and summary.retries > summary.rate_limited
    sent = prompt_ids(emulator)
    assert sum(sent.values()) == emulator.request_count and len(sent) == rows
    answered = [line for line in results(out) if line["error"] is None]
    assert len(answered) == summary.succeeded
    assert summary.total_tokens == sum(
        line["response"]["body"]["usage"]["total_tokens"] for line in answered
    )


def test_a_rerun_sends_only_the_rows_missing_from_the_output(tmp_path: Path, served: Any) -> None:
    emulator = Emulator(max_recorded=None)
    server = served(emulator)
    source, out = write_prompts(tmp_path / "in.jsonl", 300), tmp_path / "out.jsonl"
    write_prompts(tmp_path / "first.jsonl", 120)
    run(tmp_path / "first.jsonl", out, model="qwen-plus", **client_options(server))
    emulator.reset()

    summary = run(source, out, model="qwen-plus", **client_options(server))

    assert summary.skipped == 120 and summary.succeeded == 180 and summary.rows == 300
    assert emulator.request_count == 180
    assert set(prompt_ids(emulator)) == {f"id-{n}" for n in range(120, 300)}
    assert set(id_counts(out).values()) == {1} and len(id_counts(out)) == 300
    emulator.reset()
    again = run(source, out, model="qwen-plus", **client_options(server))
    assert emulator.request_count == 0 and again.skipped == 300 and again.ok


def test_failed_rows_are_reported_by_code_and_only_retryable_ones_are_retried(
    tmp_path: Path, served: Any
) -> None:
    emulator = Emulator(max_recorded=None)
    server = served(emulator)
    source = tmp_path / "in.jsonl"
    lines = [
        {"custom_id": "ok", "prompt": "hello", "model": "qwen-plus"},
        {"custom_id": "blocked", "prompt": "x", "model": "fault/data-inspection-failed"},
        {"custom_id": "down", "prompt": "y", "model": "fault/503"},
        {"custom_id": "invalid", "prompt": "z", "model": "qwen-plus", "temperature": 7},
        {"custom_id": "no-model", "messages": [{"role": "user", "content": "hi"}]},
    ]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines) + "{broken\n")

    summary = run(source, tmp_path / "out.jsonl", max_retries=2, **client_options(server))

    by_id = {line["custom_id"]: line for line in results(tmp_path / "out.jsonl")}
    assert by_id["ok"]["response"]["status_code"] == 200
    assert by_id["blocked"]["error"]["code"] == "data_inspection_failed"
    assert by_id["blocked"]["response"]["status_code"] == 400
    assert by_id["down"]["error"]["code"] == "service_unavailable"
    assert by_id["invalid"]["error"]["code"] == "request_validation_error"
    assert "temperature" in by_id["invalid"]["error"]["message"]
    assert by_id["no-model"]["error"]["code"] == "request_validation_error"
    assert by_id["row-6"]["error"]["code"] == "request_validation_error"
    assert summary.failed == 5 and summary.succeeded == 1 and not summary.ok
    assert summary.failures == {
        "request_validation_error": 3,
        "data_inspection_failed": 1,
        "service_unavailable": 1,
    }
    # ok 1 + blocked 1 (never retried) + down 3 (two retries); the invalid rows are never sent
    assert emulator.request_count == summary.requests == 5 and summary.retries == 2


def test_rows_for_other_endpoints_are_reported_not_sent(tmp_path: Path, served: Any) -> None:
    emulator = Emulator()
    server = served(emulator)
    source = tmp_path / "in.jsonl"
    line = {
        "custom_id": "e",
        "method": "POST",
        "url": "/v1/embeddings",
        "body": {"model": "text-embedding-v4", "input": ["a"]},
    }
    source.write_text(json.dumps(line) + "\n")
    summary = run(source, tmp_path / "out.jsonl", **client_options(server))
    assert summary.failures == {"request_validation_error": 1} and emulator.request_count == 0
    assert "batch-api" in results(tmp_path / "out.jsonl")[0]["error"]["message"]


def test_429s_narrow_the_window_and_the_rows_still_finish(
    tmp_path: Path, served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import opensearch_llm.batch._runner as runner

    emulator = Emulator()
    server = served(emulator)
    emulator.script_faults(["429"] * 6)
    allowed: list[int] = []

    class Watched(runner.AdaptiveWindow):
        async def acquire(self) -> int:
            sent_in = await super().acquire()
            allowed.append(self.allowed)
            return sent_in

    monkeypatch.setattr(runner, "AdaptiveWindow", Watched)
    source = write_prompts(tmp_path / "in.jsonl", 200)
    summary = run(
        source, tmp_path / "out.jsonl", model="qwen-plus", concurrency=16, **client_options(server)
    )
    assert summary.ok and summary.rate_limited == 6 and summary.retries == 6
    assert allowed[0] == 16 and min(allowed) <= 8  # halved on the 429s
    assert allowed[-1] > min(allowed)  # and widening again on answers


@pytest.mark.parametrize("mode", ["sync", "async", "sync-in-a-running-loop"])
def test_run_and_arun_return_the_same_summary(tmp_path: Path, served: Any, mode: str) -> None:
    server = served(Emulator())
    source, out = write_prompts(tmp_path / "in.jsonl", 50), tmp_path / "out.jsonl"
    options = {"model": "qwen-plus", **client_options(server)}
    if mode == "sync":
        summary = run(source, out, **options)
    elif mode == "async":
        summary = asyncio.run(arun(source, out, **options))
    else:

        async def inside_a_loop() -> BatchSummary:  # as in Jupyter: a loop already runs
            return run(source, out, **options)

        summary = asyncio.run(inside_a_loop())
    assert isinstance(summary, BatchSummary) and summary.succeeded == 50 and summary.ok
    assert summary.total_tokens == 50 * 6 and summary.seconds > 0
    assert "50 answered" in str(summary)


def test_the_progress_bar_shows_rows_failures_and_tokens(
    tmp_path: Path, served: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    server = served(Emulator())
    source = write_prompts(tmp_path / "in.jsonl", 20)
    options = {**client_options(server), "progress": True}
    run(source, tmp_path / "out.jsonl", model="qwen-plus", **options)
    shown = capsys.readouterr().err
    assert "20/20" in shown and "failed=0" in shown and "tokens=" in shown and "row/s" in shown


def test_bad_options_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    source = write_prompts(tmp_path / "in.jsonl", 1)
    out = tmp_path / "out.jsonl"
    for options in (
        {"concurrency": 0},
        {"requests_per_minute": -1},
        {"max_retries": -1},
        {"via": "carrier-pigeon"},
    ):
        with pytest.raises(RequestValidationError):
            run(source, out, api_key=KEY, **options)
    assert not out.exists()


def test_memory_stays_flat_in_the_number_of_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import opensearch_llm._bodies as bodies
    import opensearch_llm.batch._runner as runner

    # pydantic-core keeps up to 16,384 short strings it decoded (a bounded cache that fills with
    # request ids): left out, so that what is measured is the runner's own memory.
    monkeypatch.setattr(
        bodies, "from_json", functools.partial(bodies.from_json, cache_strings=False)
    )
    held: dict[int, int] = {}
    written = [0]
    original_write = runner.ResultWriter.write_soon

    def write(self: Any, line: Any) -> None:
        original_write(self, line)
        written[0] += 1
        if written[0] in (200, 600, 1000):
            gc.collect()
            held[written[0]] = tracemalloc.get_traced_memory()[0]

    monkeypatch.setattr(runner.ResultWriter, "write_soon", write)
    source = write_prompts(tmp_path / "in.jsonl", 1000, system="x" * 2000)
    emulator = Emulator(max_recorded=0)

    async def job() -> None:
        http_client = httpx.AsyncClient(transport=emulator.async_transport())
        await arun(source, tmp_path / "out.jsonl", model="qwen-plus", api_key=KEY,
                   base_url="http://emulator.local/compatible-mode/v1", http_client=http_client, progress=False)  # fmt: skip
        await http_client.aclose()

    tracemalloc.start()
    try:
        asyncio.run(job())
    finally:
        tracemalloc.stop()
    # Memory held after 200, 600 and 1,000 rows of 2 KB prompts: keeping the rows, their
    # results or even their ids would add 80 bytes to 4 KB a row; it stays within 32.
    assert list(held) == [200, 600, 1000]
    assert held[1000] - held[200] < 800 * 32, held


def test_the_input_is_read_as_rows_are_sent_not_ahead(
    tmp_path: Path, served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import opensearch_llm.batch._runner as runner

    server = served(Emulator(max_recorded=0))
    source = write_prompts(tmp_path / "in.jsonl", 2000)
    written, ahead = [0], []
    original_read, original_write = runner.read_rows, runner.ResultWriter.write_soon

    def read(path: Any, model: Any = None) -> Any:
        for taken, row in enumerate(original_read(path, model), 1):
            ahead.append(taken - written[0])
            yield row

    def write(self: Any, line: Any) -> None:
        written[0] += 1
        original_write(self, line)

    monkeypatch.setattr(runner, "read_rows", read)
    monkeypatch.setattr(runner.ResultWriter, "write_soon", write)
    run(source, tmp_path / "out.jsonl", model="qwen-plus", concurrency=8, **client_options(server))
    assert len(ahead) == 2000 and max(ahead) <= 8 + 1  # rows in flight, and the one being taken


def test_a_row_the_client_cannot_take_fails_alone_and_every_other_row_is_answered(
    tmp_path: Path, served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opensearch_llm.chat import AsyncChatClient

    server = served(Emulator())
    source = write_prompts(tmp_path / "in.jsonl", 40)
    with open(source, "a") as handle:
        handle.write(
            json.dumps({"custom_id": "bad-extra", "prompt": "x", "extra_body": "x"}) + "\n"
        )
    write_prompts(tmp_path / "more.jsonl", 40, start=40)
    with open(source, "a") as handle:
        handle.write((tmp_path / "more.jsonl").read_text())
    original = AsyncChatClient.create

    async def create(self: Any, **arguments: Any) -> Any:
        if arguments["messages"][-1]["content"] == "question 7":
            raise KeyError("a bug")  # not one of our errors: that row fails, not the run
        return await original(self, **arguments)

    monkeypatch.setattr(AsyncChatClient, "create", create)

    summary = run(source, tmp_path / "out.jsonl", model="qwen-plus", **client_options(server))

    by_id = {line["custom_id"]: line for line in results(tmp_path / "out.jsonl")}
    assert len(by_id) == 81 and set(id_counts(tmp_path / "out.jsonl").values()) == {1}
    assert by_id["bad-extra"]["error"]["code"] == "request_validation_error"
    assert "extra_body" in by_id["bad-extra"]["error"]["message"]
    assert by_id["id-7"]["error"]["code"] == "unexpected_error"
    assert (
        by_id["id-7"]["error"]["type"] == "KeyError"
        and "a bug" in by_id["id-7"]["error"]["message"]
    )
    assert summary.succeeded == 79 and summary.failed == 2
    assert summary.failures == {"request_validation_error": 1, "unexpected_error": 1}


def test_a_failure_that_stops_the_run_stops_every_worker_and_keeps_what_was_written(
    tmp_path: Path, served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import opensearch_llm.batch._runner as runner

    emulator = Emulator()
    server = served(emulator)
    source, out = write_prompts(tmp_path / "in.jsonl", 200), tmp_path / "out.csv"
    original_write = runner.ResultWriter.write_soon
    written = [0]

    def write(self: Any, line: Any) -> None:
        if written[0] == 20:
            raise OSError(28, "No space left on device")
        original_write(self, line)
        written[0] += 1

    monkeypatch.setattr(runner.ResultWriter, "write_soon", write)

    async def job() -> tuple[set[Any], int]:
        with pytest.raises(OSError, match="No space"):
            await arun(source, out, model="qwen-plus", concurrency=8, **client_options(server))
        others = asyncio.all_tasks() - {asyncio.current_task()}
        sent = emulator.request_count
        await asyncio.sleep(0.2)
        return others, emulator.request_count - sent

    others, sent_after = asyncio.run(job())

    assert others == set() and sent_after == 0  # no worker goes on after the run stopped
    assert len(results(tmp_path / "out.csv.jsonl")) == 20  # what completed is kept
    assert len(out.read_text().splitlines()) == 21  # and the table written from it


def test_the_files_are_counted_read_and_written_off_the_event_loop(
    tmp_path: Path, served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import opensearch_llm.batch._runner as runner

    server = served(Emulator())
    source = write_prompts(tmp_path / "in.jsonl", 5)
    on_loop: dict[str, bool] = {}

    def watched(name: str, call: Any) -> Any:
        def call_off_loop(*args: Any, **kwargs: Any) -> Any:
            try:
                asyncio.get_running_loop()
                on_loop[name] = True
            except RuntimeError:
                on_loop[name] = False
            return call(*args, **kwargs)

        return call_off_loop

    monkeypatch.setattr(runner, "count_rows", watched("count_rows", runner.count_rows))
    monkeypatch.setattr(runner, "finished_ids", watched("finished_ids", runner.finished_ids))
    close = runner.ResultWriter.close
    monkeypatch.setattr(runner.ResultWriter, "close", watched("close", close))
    summary = asyncio.run(
        arun(source, tmp_path / "out.csv", model="qwen-plus", **client_options(server))
    )
    assert summary.succeeded == 5
    assert on_loop == {"count_rows": False, "finished_ids": False, "close": False}


# --------------------------------------------------------------------------- retry_failed


def _knowledge_ids(emulator: Emulator) -> Counter[str]:
    """How many knowledge-llm requests the emulator received for each row (by its question)."""
    return Counter(
        request.json["question"]
        for request in emulator.requests
        if request.path.endswith("/knowledge-llm") and isinstance(request.json, dict)
    )


@pytest.mark.parametrize("output", ["out.jsonl", "out.csv"])
def test_a_rerun_with_retry_failed_sends_the_failed_rows_again_and_only_them(
    tmp_path: Path, served: Any, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    monkeypatch.delenv("OPENSEARCH_LLM_APP", raising=False)
    emulator = Emulator(max_recorded=None)
    server = served(emulator)
    source, out = write_prompts(tmp_path / "in.jsonl", 100), tmp_path / output
    with open(source, "a") as handle:
        blocked = {"custom_id": "id-blocked", "prompt": "question blocked"}
        handle.write(json.dumps({**blocked, "model": "fault/data-inspection-failed"}) + "\n")
        handle.write(json.dumps({"custom_id": "k", "question": "k", "content": ["p"]}) + "\n")
    options = {
        "model": "qwen-plus",
        "max_retries": 0,
        "knowledge_host": server.origin,
        **client_options(server),
    }
    emulator.script_faults(["503"] * 20)  # the first 20 requests fail; no retries
    first = run(source, out, **options)  # the knowledge row has no application: it fails too
    assert first.failures == {
        "service_unavailable": 20,
        "data_inspection_failed": 1,
        "request_validation_error": 1,
    }
    failed = {line["custom_id"] for line in results(journal_path(out)) if line["error"]}
    emulator.reset()

    again = run(source, out, retry_failed=True, app="emulator-app", **options)

    # The failed rows, and only them, are sent again; not the one the service refused as such.
    assert set(prompt_ids(emulator)) == failed - {"id-blocked", "k"}
    assert set(prompt_ids(emulator).values()) == {1} and _knowledge_ids(emulator) == {"k": 1}
    assert again.retried_failed == 21 and again.skipped == 102 - 21 and again.succeeded == 21
    assert "21 failed before, sent again" in str(again)
    lines = {line["custom_id"]: line for line in results(journal_path(out))}
    assert set(id_counts(journal_path(out)).values()) == {1} and len(lines) == 102
    assert [i for i, line in lines.items() if line["error"]] == ["id-blocked"]
    if output == "out.csv":  # the table is written again from the journal
        with open(out, newline="") as handle:
            table = list(csv.DictReader(handle))
        assert len(table) == 102 and {r["custom_id"] for r in table} == set(lines)
        assert sum(1 for r in table if r["error_code"]) == 1
    emulator.reset()
    last = run(source, out, retry_failed=True, **options)  # nothing left worth sending
    assert emulator.request_count == 0 and last.retried_failed == 0 and last.skipped == 102


def test_without_retry_failed_a_rerun_sends_no_failed_row_again(
    tmp_path: Path, served: Any
) -> None:
    emulator = Emulator()
    server = served(emulator)
    source, out = write_prompts(tmp_path / "in.jsonl", 10), tmp_path / "out.jsonl"
    emulator.script_faults(["503"] * 3)
    run(source, out, model="qwen-plus", max_retries=0, **client_options(server))
    before = out.read_bytes()
    emulator.reset()
    again = run(source, out, model="qwen-plus", **client_options(server))
    assert emulator.request_count == 0 and again.skipped == 10 and again.failed == 0
    assert out.read_bytes() == before  # the failed rows' lines stay as they were


def test_retry_failed_keeps_the_failed_lines_of_rows_no_longer_in_the_input(
    tmp_path: Path, served: Any
) -> None:
    emulator = Emulator()
    server = served(emulator)
    source, out = write_prompts(tmp_path / "in.jsonl", 3), tmp_path / "out.jsonl"
    emulator.script_faults(["503"] * 3)
    run(source, out, model="qwen-plus", max_retries=0, **client_options(server))
    write_prompts(source, 1)  # the input is cut to its first row
    emulator.reset()
    again = run(source, out, model="qwen-plus", retry_failed=True, **client_options(server))
    assert again.retried_failed == 1 and emulator.request_count == 1
    lines = {line["custom_id"]: line for line in results(out)}
    assert lines["id-0"]["error"] is None  # sent again, answered
    assert lines["id-1"]["error"] and lines["id-2"]["error"]  # not in the input: kept as they were


def test_clients_are_closed_when_a_run_stops_before_its_first_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opensearch_llm.chat import AsyncChatClient

    closed: list[object] = []
    original = AsyncChatClient.aclose

    async def counted(client: AsyncChatClient) -> None:
        closed.append(client)
        await original(client)

    monkeypatch.setattr(AsyncChatClient, "aclose", counted)
    with pytest.raises(RequestValidationError, match="input"):
        run(tmp_path / "missing.jsonl", tmp_path / "out.jsonl", api_key=KEY, progress=False)
    assert len(closed) == 1


def test_knowledge_rows_are_signed_with_an_access_key_when_auth_says_so(
    tmp_path: Path, served: Any
) -> None:
    from opensearch_llm.knowledge import AccessKeyCredentials

    emulator = Emulator(max_recorded=None)
    server = served(emulator)
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(json.dumps({"custom_id": "k", "question": "q", "content": ["p"]}) + "\n")
    secret = "access-key-secret-0123456789"
    run(
        source,
        out,
        app="emulator-app",
        knowledge_host=server.origin,
        auth=AccessKeyCredentials("access-id", secret),
        **client_options(server),
    )
    # The emulator takes Bearer keys only (and records no Authorization header): a signed
    # request is refused, where the same row with the API key is answered.
    (line,) = results(out)
    assert line["response"]["status_code"] == 401 and secret not in out.read_text()
    out.unlink()
    assert run(
        source, out, app="emulator-app", knowledge_host=server.origin, **client_options(server)
    ).ok


# --------------------------------------------------------------------------- knowledge-llm rows


def _mixed_file(path: Path) -> Path:
    """Chat and knowledge-llm rows, answered or failing in every way a knowledge row can."""
    other_app = "/v3/openapi/apps/other_app/actions/knowledge-llm"
    lines = [
        {"custom_id": "chat", "prompt": "question chat"},
        {"custom_id": "plain", "question": "plain", "content": ["p1", "p2"]},
        {"custom_id": "url", "url": KNOWLEDGE_URL, "body": {"question": "url", "content": ["p"]}},
        {"custom_id": "other", "url": other_app, "body": {"question": "other", "options": {"stream": True}}},
        {"custom_id": "prompt", "url": KNOWLEDGE_URL, "body": {"question": "prompt", "prompt": "Say hi"}},
        {"custom_id": "moderated", "question": "[restricted] moderated", "csi_level": "loose"},
        {"custom_id": "invalid", "question": "invalid", "content": "not a list"},
        {"custom_id": "bad-app", "url": "/v3/openapi/apps/no app/actions/knowledge-llm", "body": {"question": "x"}},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_a_mixed_file_of_chat_and_knowledge_rows_is_answered_with_errors_as_lines(
    tmp_path: Path, served: Any
) -> None:
    emulator = Emulator(max_recorded=None)
    server = served(emulator)
    source, out = _mixed_file(tmp_path / "in.jsonl"), tmp_path / "out.csv"

    summary = run(
        source, out, model="qwen-plus", app="my_app", knowledge_host=server.origin,
        **client_options(server),
    )  # fmt: skip

    lines = {line["custom_id"]: line for line in results(journal_path(out))}
    assert set(id_counts(journal_path(out)).values()) == {1} and len(lines) == 8
    answers = {i: line["response"]["body"] for i, line in lines.items() if not line["error"]}
    assert set(answers) == {"chat", "plain", "url", "other", "prompt"}
    assert answers["plain"]["result"]["data"][0]["answer"] == "Answer to: plain | Sources: p1 | p2"
    assert answers["prompt"]["result"]["data"][0]["answer"] == "Answer to: Say hi"
    assert lines["plain"]["response"]["request_id"] == answers["plain"]["request_id"]
    assert lines["moderated"]["error"]["code"] == "data_inspection_failed"
    assert lines["invalid"]["error"]["code"] == "request_validation_error"
    assert "content" in lines["invalid"]["error"]["message"]
    assert lines["bad-app"]["error"]["code"] == "request_validation_error"
    paths = Counter(r.path for r in emulator.requests if r.path.endswith("knowledge-llm"))
    assert paths == {  # the run's application, unless the row names one; never streamed
        "/v3/openapi/apps/my_app/actions/knowledge-llm": 4,
        "/v3/openapi/apps/other_app/actions/knowledge-llm": 1,
    }
    assert not any(r.json.get("options", {}).get("stream") for r in emulator.requests)
    assert summary.succeeded == 5 and summary.failed == 3 and summary.requests == 6
    with open(out, newline="") as handle:
        table = {row["custom_id"]: row for row in csv.DictReader(handle)}
    assert table["chat"]["content"] == "You said: question chat"
    assert table["url"]["content"] == "Answer to: url | Sources: p"
    assert table["moderated"]["content"] == "" and table["moderated"]["error_code"]


def test_knowledge_rows_are_retried_and_resumed_as_chat_rows_are(
    tmp_path: Path, served: Any
) -> None:
    emulator = Emulator(max_recorded=None)
    server = served(emulator)
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [{"custom_id": f"k-{n}", "question": f"k-{n}"} for n in range(60)]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines[:40]))
    options = {"app": "a", "knowledge_host": server.origin, **client_options(server)}
    emulator.script_faults(["429", "503", "reset", "knowledge-errors"])

    first = run(source, out, **options)

    assert first.ok and first.succeeded == 40 and first.rate_limited == 1
    # knowledge-errors: an internal_error in errors[] under HTTP 200, retried as a 500 is
    assert first.retries == 4 and emulator.request_count == first.requests == 44
    emulator.reset()
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    again = run(source, out, **options)
    assert again.skipped == 40 and again.succeeded == 20
    assert set(_knowledge_ids(emulator)) == {f"k-{n}" for n in range(40, 60)}
    assert set(id_counts(out).values()) == {1} and len(id_counts(out)) == 60


def test_knowledge_rows_without_a_host_or_an_application_fail_naming_what_to_set(
    tmp_path: Path, served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENSEARCH_LLM_KNOWLEDGE_HOST", "OPENSEARCH_LLM_APP"):
        monkeypatch.delenv(name, raising=False)
    emulator = Emulator()
    server = served(emulator)
    source, out = _mixed_file(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    summary = run(source, out, model="qwen-plus", **client_options(server))
    lines = {line["custom_id"]: line for line in results(out)}
    assert lines["chat"]["error"] is None and summary.succeeded == 1 and emulator.request_count == 1
    message = lines["other"]["error"]["message"]  # its url names its application
    assert "knowledge_host" in message and "OPENSEARCH_LLM_KNOWLEDGE_HOST" in message

    monkeypatch.setenv("OPENSEARCH_LLM_KNOWLEDGE_HOST", server.origin)
    out.unlink()
    run(source, out, model="qwen-plus", **client_options(server))
    lines = {line["custom_id"]: line for line in results(out)}
    assert lines["other"]["error"] is None
    message = lines["plain"]["error"]["message"]
    assert "app=" in message and "OPENSEARCH_LLM_APP" in message and "--app" in message


def test_the_cli_answers_knowledge_rows_and_retries_failed_ones_from_the_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opensearch_llm.cli import main

    for name in ("OPENSEARCH_LLM_API_KEY", "DASHSCOPE_API_KEY", "OPENSEARCH_LLM_KNOWLEDGE_HOST"):
        monkeypatch.delenv(name, raising=False)
    source, out = _mixed_file(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    command = ["batch", "run", str(source), "--out", str(out), "--model", "qwen-plus", "--no-progress"]  # fmt: skip
    stdout, err = io.StringIO(), io.StringIO()
    assert main(command, stdout, err) == 1  # three knowledge rows fail
    assert "5 answered, 3 failed" in stdout.getvalue() and "emulator" in err.getvalue()
    mended = source.read_text().replace('"content": "not a list"', '"content": ["c"]')
    source.write_text(mended)  # a row mended in the input goes through when sent again
    stdout = io.StringIO()
    assert main([*command, "--retry-failed", "--app", "app2"], stdout, io.StringIO()) == 1
    # invalid and bad-app were refused by our checks: sent again; moderated, by the service: not
    assert "2 failed before, sent again" in stdout.getvalue()
    lines = {line["custom_id"]: line for line in results(out)}
    assert len(results(out)) == 8 and lines["invalid"]["error"] is None
    assert [i for i, line in lines.items() if line["error"]] == ["moderated", "bad-app"]


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--via", "batch-api", "--retry-failed"], "--retry-failed applies to online runs only"),
        (["--via", "batch-api", "--app", "a"], "--app applies to online runs only"),
        (["--via", "batch-api", "--rpm", "5"], "--rpm applies to online runs only"),
        (["--knowledge-host", "http://127.0.0.1:9"], "no API key for http://127.0.0.1:9"),
    ],
)
def test_the_cli_refuses_knowledge_and_retry_options_where_they_do_not_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str], said: str
) -> None:
    from opensearch_llm.cli import main

    for name in ("OPENSEARCH_LLM_API_KEY", "DASHSCOPE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    source, out = write_prompts(tmp_path / "in.jsonl", 1), tmp_path / "out.jsonl"
    err = io.StringIO()
    code = main(["batch", "run", str(source), "--out", str(out), *extra], io.StringIO(), err)
    assert code == 2 and said in err.getvalue() and not out.exists()


def test_a_knowledge_host_in_the_environment_does_not_stop_a_run_the_emulator_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opensearch_llm.cli import main

    for name in ("OPENSEARCH_LLM_API_KEY", "DASHSCOPE_API_KEY", "OPENSEARCH_LLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENSEARCH_LLM_KNOWLEDGE_HOST", "https://my-instance.example.com")
    source, out = write_prompts(tmp_path / "in.jsonl", 2), tmp_path / "out.jsonl"
    err = io.StringIO()
    command = ["batch", "run", str(source), "--out", str(out), "--model", "qwen-plus", "--no-progress"]  # fmt: skip
    assert main(command, io.StringIO(), err) == 0
    assert (
        "emulator" in err.getvalue()
        and "OPENSEARCH_LLM_KNOWLEDGE_HOST left alone" in err.getvalue()
    )
    assert len(results(out)) == 2


def test_retry_failed_and_knowledge_options_are_refused_with_the_batch_api(tmp_path: Path) -> None:
    source, out = write_prompts(tmp_path / "in.jsonl", 1), tmp_path / "out.jsonl"
    for option in ({"retry_failed": True}, {"app": "a"}, {"knowledge_host": "http://h"}):
        with pytest.raises(RequestValidationError) as caught:
            run(source, out, via="batch-api", api_key=KEY, **option)
        assert caught.value.field == next(iter(option)) and "via='online'" in str(caught.value)
    assert not out.exists()


def test_idle_workers_wake_when_the_last_row_finishes_not_on_a_timer() -> None:
    from opensearch_llm.batch._formats import Row
    from opensearch_llm.batch._runner import _Queue

    async def scenario() -> tuple[bool, bool, Any]:
        queue = _Queue(iter([Row("a", "/v1/chat/completions", {})]))
        taken = await queue.next()
        idle = asyncio.ensure_future(queue.next())  # input read, one row in flight: it waits
        for _ in range(3):
            await asyncio.sleep(0)
        waiting = not idle.done()
        queue.finished()  # the row in flight is done: nothing is left
        for _ in range(3):
            await asyncio.sleep(0)  # a few passes of the loop, no time to wait out
        return waiting, idle.done() and idle.result() is None, taken

    waiting, woken, taken = asyncio.run(scenario())
    assert taken is not None and waiting and woken
