"""Batch API mode: the client, a whole run (upload, create, poll, download), resume, the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from opensearch_llm import NotFoundError, RequestValidationError
from opensearch_llm.batch import BatchAPIClient, run
from opensearch_llm.batch._api import BatchFailedError, batch_progress
from opensearch_llm.cli import main
from opensearch_llm.emulator import Emulator, batch_store
from opensearch_llm.emulator._batches import parse_multipart

from .support import KEY, id_counts, results, write_prompts

BASE_URL = "http://emulator.local/compatible-mode/v1"


def _api(emulator: Emulator, **options: Any) -> BatchAPIClient:
    http_client = httpx.Client(transport=emulator.transport())
    return BatchAPIClient(KEY, base_url=BASE_URL, http_client=http_client, **options)


def _options(emulator: Emulator) -> dict[str, Any]:
    return {
        "via": "batch-api",
        "api_key": KEY,
        "base_url": BASE_URL,
        "http_client": httpx.Client(transport=emulator.transport()),
        "poll_seconds": 0.02,
        "progress": False,
    }


@pytest.fixture
def emulator() -> Emulator:
    emulator = Emulator(max_recorded=None)
    batch_store(emulator).completion_delay = 0.1
    return emulator


def test_a_file_goes_up_a_batch_is_made_and_its_results_come_down(
    tmp_path: Path, emulator: Emulator
) -> None:
    source = tmp_path / "requests.jsonl"
    lines = [
        {"custom_id": str(n), "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "qwen-plus" if n != 2 else "fault/500", "messages": [{"role": "user", "content": f"q{n}"}]}}
        for n in range(4)
    ]  # fmt: skip
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with _api(emulator) as api:
        uploaded = api.upload(source)
        assert uploaded["purpose"] == "batch" and uploaded["bytes"] == source.stat().st_size
        batch = api.create(uploaded["id"], metadata={"ds_name": "test"})
        assert batch["status"] == "validating" and batch["metadata"] == {"ds_name": "test"}
        import time

        time.sleep(0.15)
        batch = api.retrieve(batch["id"])
        assert batch["status"] == "completed" and batch_progress(batch) == (4, 4)
        answered = list(api.file_lines(batch["output_file_id"]))
        failed = list(api.file_lines(batch["error_file_id"]))
    assert sorted(line["custom_id"] for line in answered) == ["0", "1", "3"]
    assert failed[0]["custom_id"] == "2" and failed[0]["error"]["code"] == "internal_error"
    assert answered[0]["response"]["body"]["choices"][0]["message"]["content"] == "You said: q0"
    sent = emulator.requests
    assert sent[0].headers["content-type"].startswith("multipart/form-data")
    assert sent[0].headers["authorization"] == "<redacted>"


@pytest.mark.parametrize("output", ["out.jsonl", "out.csv"])
def test_run_via_the_batch_api_writes_the_same_result_file(
    tmp_path: Path, emulator: Emulator, output: str
) -> None:
    source = write_prompts(tmp_path / "in.jsonl", 30)
    with open(source, "a") as handle:
        handle.write('{"custom_id": "bad", "prompt": ""}\n')
        # One model per batch file: this row fails at the service, not for its model.
        handle.write('{"custom_id": "fails", "prompt": "x", "temperature": 7}\n')

    summary = run(source, tmp_path / output, model="qwen-plus", **_options(emulator))

    journal = tmp_path / "out.jsonl" if output.endswith("jsonl") else tmp_path / (output + ".jsonl")
    assert len(id_counts(journal)) == 32 and set(id_counts(journal).values()) == {1}
    assert summary.succeeded == 30 and summary.failed == 2 and summary.batch_id
    assert summary.failures == {"request_validation_error": 1, "invalid_parameter_error": 1}
    assert summary.total_tokens == 30 * 6 and summary.status == "completed"
    by_id = {line["custom_id"]: line for line in results(journal)}
    assert by_id["fails"]["error"] == {
        "code": "invalid_parameter_error",
        "message": "Range of temperature should be [0.0, 2.0)",
    }
    assert not (tmp_path / (output + ".batch.json")).exists()  # forgotten once downloaded
    uploaded = batch_store(emulator).files["file-batch-1"].content.decode().splitlines()
    assert len(uploaded) == 31 and json.loads(uploaded[0])["url"] == "/v1/chat/completions"


def test_a_rerun_after_an_interrupted_poll_goes_on_with_the_same_batch(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, out = write_prompts(tmp_path / "in.jsonl", 10), tmp_path / "out.jsonl"
    monkeypatch.setattr(BatchAPIClient, "retrieve", _interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(source, out, model="qwen-plus", **_options(emulator))
    assert (tmp_path / "out.jsonl.batch.json").exists()
    monkeypatch.undo()

    summary = run(source, out, model="qwen-plus", **_options(emulator))

    assert len(batch_store(emulator).batches) == 1  # not sent twice
    assert summary.succeeded == 10 and len(id_counts(out)) == 10
    emulator.reset()
    again = run(source, out, model="qwen-plus", **_options(emulator))
    assert again.skipped == 10 and again.batch_id is None and emulator.request_count == 0


def test_a_batch_the_service_refuses_raises_with_its_line_errors(
    tmp_path: Path, emulator: Emulator
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"custom_id": "a", "prompt": "x"}\n{"custom_id": "a", "prompt": "y"}\n')
    with pytest.raises(
        BatchFailedError, match="line 2: invalid_request: custom_id must be a unique"
    ):
        run(source, tmp_path / "out.jsonl", model="qwen-plus", **_options(emulator))


def test_uploads_and_polls_are_retried_as_the_core_retries(
    tmp_path: Path, emulator: Emulator
) -> None:
    source = write_prompts(tmp_path / "in.jsonl", 3)
    emulator.script_faults(["503", None, "reset", None, "502"])  # upload, create, polls...
    options = {**_options(emulator), "max_retries": 3}
    summary = run(source, tmp_path / "out.jsonl", model="qwen-plus", **options)
    assert summary.succeeded == 3
    uploads = [r for r in emulator.requests if r.path.endswith("/files")]
    assert len(uploads) == 2  # the 503, then the file again, whole
    sent = [parse_multipart(r.headers["content-type"], r.body)["file"] for r in uploads]
    assert sent[0] == sent[1] and len(sent[0][1].splitlines()) == 3


def test_cancel_keeps_what_was_done_and_status_shows_it(emulator: Emulator, tmp_path: Path) -> None:
    batch_store(emulator).completion_delay = 60
    source = tmp_path / "in.jsonl"
    lines = [
        {
            "custom_id": str(n),
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]},
        }
        for n in range(5)
    ]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with _api(emulator) as api:
        batch = api.create(api.upload(source)["id"])
        cancelled = api.cancel(batch["id"])
        assert cancelled["status"] == "cancelling"
        import time

        time.sleep(0.01)
        final = api.retrieve(batch["id"])
        assert final["status"] == "cancelled" and batch_progress(final) == (0, 5)
        assert list(api.file_lines(final["output_file_id"])) == []
        with pytest.raises(NotFoundError):
            api.retrieve("batch_missing")
        with pytest.raises(RequestValidationError):
            api.retrieve("../files")


def test_the_client_shows_no_secret() -> None:
    api = BatchAPIClient(KEY, base_url=BASE_URL)
    assert KEY not in repr(api) and KEY not in str(vars(api).get("_config"))
    api.close()


def test_the_cli_runs_shows_cancels_and_downloads_batches(
    tmp_path: Path, served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = Emulator()
    batch_store(emulator).completion_delay = 0.1
    server = served(emulator)
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", KEY)
    source = write_prompts(tmp_path / "in.jsonl", 5)
    base = ["--base-url", server.compatible_base_url]

    out, err = io.StringIO(), io.StringIO()
    code = main(["batch", "run", str(source), "--out", str(tmp_path / "a.jsonl"), "--model", "qwen-plus",
                 "--via", "batch-api", "--poll", "0.05", "--no-progress", *base], out, err)  # fmt: skip
    assert code == 0, err.getvalue()
    assert "5 answered" in out.getvalue() and "batch batch_2" in out.getvalue()

    out = io.StringIO()
    assert main(["batch", "status", "batch_2", *base], out, err) == 0
    assert json.loads(out.getvalue())["status"] == "completed"

    out = io.StringIO()
    assert (
        main(["batch", "download", "batch_2", "--out", str(tmp_path / "b.jsonl"), *base], out, err)
        == 0
    )
    assert id_counts(tmp_path / "b.jsonl") == id_counts(tmp_path / "a.jsonl")

    batch_store(emulator).completion_delay = 60
    with httpx.Client() as raw:  # a batch still running
        file_id = raw.post(server.compatible_base_url + "/files", headers={"Authorization": f"Bearer {KEY}"},
                           files={"file": ("x.jsonl", source.read_bytes())}, data={"purpose": "batch"}).json()["id"]  # fmt: skip
    request = {
        "custom_id": "r",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "qwen-plus", "messages": [{"role": "user", "content": "x"}]},
    }
    (tmp_path / "r.jsonl").write_text(json.dumps(request) + "\n")
    with BatchAPIClient(KEY, base_url=server.compatible_base_url) as api:
        running = api.create(api.upload(tmp_path / "r.jsonl")["id"])["id"]
    assert file_id
    err = io.StringIO()
    assert (
        main(
            ["batch", "download", running, "--out", str(tmp_path / "c.jsonl"), *base],
            io.StringIO(),
            err,
        )
        == 2
    )
    assert "not finished" in err.getvalue()
    out = io.StringIO()
    assert main(["batch", "cancel", running, *base], out, err) == 0
    assert json.loads(out.getvalue())["status"] == "cancelling"


def test_the_cli_exit_status_says_whether_rows_failed(
    tmp_path: Path, served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = served(Emulator())
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", KEY)
    source = write_prompts(tmp_path / "in.jsonl", 4)
    base = ["--base-url", server.compatible_base_url, "--no-progress", "--model", "qwen-plus"]
    out = io.StringIO()
    assert (
        main(
            ["batch", "run", str(source), "--out", str(tmp_path / "ok.jsonl"), *base],
            out,
            io.StringIO(),
        )
        == 0
    )
    assert "4 answered, 0 failed" in out.getvalue()
    with open(source, "a") as handle:
        handle.write('{"custom_id": "x", "prompt": "y", "model": "fault/400"}\n')
    out = io.StringIO()
    assert (
        main(
            ["batch", "run", str(source), "--out", str(tmp_path / "ok.jsonl"), *base],
            out,
            io.StringIO(),
        )
        == 1
    )
    assert "1 failed; 4 skipped" in out.getvalue()


def test_the_cli_without_a_key_answers_from_the_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENSEARCH_LLM_API_KEY", "DASHSCOPE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    source = write_prompts(tmp_path / "in.jsonl", 3)
    for via in ("online", "batch-api"):
        out, err = io.StringIO(), io.StringIO()
        target = tmp_path / f"{via}.jsonl"
        code = main(["batch", "run", str(source), "--out", str(target), "--model", "qwen-plus", "--via", via, "--no-progress"], out, err)  # fmt: skip
        assert code == 0 and "emulator" in err.getvalue() and len(id_counts(target)) == 3


# --------------------------------------------------------------------------- reruns, endpoints


def _interrupted(*args: Any, **kwargs: Any) -> Any:
    raise KeyboardInterrupt


def test_a_failed_batch_is_forgotten_so_a_rerun_with_the_input_mended_sends_it_again(
    tmp_path: Path, emulator: Emulator
) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text('{"custom_id": "a", "prompt": "x"}\n{"custom_id": "a", "prompt": "y"}\n')
    with pytest.raises(BatchFailedError):
        run(source, out, model="qwen-plus", **_options(emulator))
    assert not (tmp_path / "out.jsonl.batch.json").exists()
    source.write_text('{"custom_id": "a", "prompt": "x"}\n{"custom_id": "b", "prompt": "y"}\n')

    summary = run(source, out, model="qwen-plus", **_options(emulator))

    assert summary.succeeded == 2 and summary.ok and len(batch_store(emulator).batches) == 2


def test_a_remembered_batch_the_service_no_longer_has_is_forgotten_and_the_rows_sent(
    tmp_path: Path, emulator: Emulator
) -> None:
    source, out = write_prompts(tmp_path / "in.jsonl", 3), tmp_path / "out.jsonl"
    state = tmp_path / "out.jsonl.batch.json"
    state.write_text(json.dumps({"batch_id": "batch_gone"}))

    summary = run(source, out, model="qwen-plus", **_options(emulator))

    assert summary.succeeded == 3 and summary.batch_id != "batch_gone" and not state.exists()


@pytest.mark.parametrize("output", ["out.jsonl", "out.csv"])
def test_the_batch_is_remembered_beside_the_output_as_out_batch_json(
    tmp_path: Path, emulator: Emulator, output: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_prompts(tmp_path / "in.jsonl", 2)
    monkeypatch.setattr(BatchAPIClient, "retrieve", _interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(source, tmp_path / output, model="qwen-plus", **_options(emulator))
    assert [p.name for p in tmp_path.glob("*.batch.json")] == [output + ".batch.json"]


def _embedding_line(custom_id: str, model: str = "text-embedding-v4") -> dict[str, Any]:
    body = {"model": model, "input": [f"text {custom_id}"], "dimensions": 64}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/embeddings", "body": body}


def test_embedding_rows_go_through_a_batch_whose_endpoint_is_theirs(
    tmp_path: Path, emulator: Emulator
) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(_embedding_line(str(n))) + "\n" for n in range(3)))

    summary = run(source, out, **_options(emulator))

    assert summary.succeeded == 3 and summary.ok
    (batch,) = batch_store(emulator).batches.values()
    assert batch.endpoint == "/v1/embeddings"
    vectors = [line["response"]["body"]["data"][0]["embedding"] for line in results(out)]
    assert [len(vector) for vector in vectors] == [64, 64, 64]


@pytest.mark.parametrize(
    ("second", "named"),
    [
        (_embedding_line("e"), "url"),
        ({"custom_id": "m", "prompt": "x", "model": "qwen-max"}, "model"),
    ],
    ids=["url", "model"],
)
def test_rows_for_two_endpoints_or_models_are_refused_before_anything_is_sent(
    tmp_path: Path, emulator: Emulator, second: dict[str, Any], named: str
) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [{"custom_id": "c", "prompt": "x"}, {"custom_id": "bad", "prompt": ""}, second]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(RequestValidationError) as caught:
        run(source, out, model="qwen-plus", **_options(emulator))
    assert caught.value.field.endswith(named)
    assert "row c" in str(caught.value) and f"row {second['custom_id']}" in str(caught.value)
    assert emulator.request_count == 0 and (not out.exists() or out.read_text() == "")


@pytest.mark.parametrize(
    ("line", "field", "says"),
    [
        ({"custom_id": "ask", "question": "What is Havenask?"}, "url", "knowledge-llm"),
        (
            {"custom_id": "ask", "url": "/v3/openapi/apps/shop/actions/knowledge-llm", "body": {}},
            "url",
            "knowledge-llm",
        ),
        ({"custom_id": "ask", "prompt": "Hi"}, "model", "--model"),
    ],
)
def test_rows_the_batch_api_cannot_run_are_refused_before_anything_is_sent(
    tmp_path: Path, emulator: Emulator, line: dict[str, Any], field: str, says: str
) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(json.dumps(line) + "\n")
    with pytest.raises(RequestValidationError) as caught:
        run(source, out, **_options(emulator))  # no model= for the rows that name none
    assert caught.value.field == f"row ask: {field}" and says in str(caught.value)
    assert emulator.request_count == 0 and (not out.exists() or out.read_text() == "")


# --------------------------------------------------------------------------- final statuses


def _cancelled_on_first_poll(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> None:
    batch_store(emulator).completion_delay = 60
    original = BatchAPIClient.retrieve

    def cancel_then_retrieve(api: BatchAPIClient, batch_id: str) -> dict[str, Any]:
        api.cancel(batch_id)
        return original(api, batch_id)

    monkeypatch.setattr(BatchAPIClient, "retrieve", cancel_then_retrieve)


def test_a_cancelled_batch_is_not_reported_as_success(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cancelled_on_first_poll(monkeypatch, emulator)
    source = write_prompts(tmp_path / "in.jsonl", 4)

    summary = run(source, tmp_path / "out.jsonl", model="qwen-plus", **_options(emulator))

    assert summary.status == "cancelled" and not summary.ok
    assert summary.succeeded + summary.failed < summary.rows
    assert "cancelled" in str(summary)
    assert not (tmp_path / "out.jsonl.batch.json").exists()  # a rerun sends the rest


def test_the_cli_exits_non_zero_and_says_so_when_the_batch_was_cancelled(
    tmp_path: Path, served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = Emulator()
    server = served(emulator)
    _cancelled_on_first_poll(monkeypatch, emulator)
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", KEY)
    source = write_prompts(tmp_path / "in.jsonl", 3)
    out, err = io.StringIO(), io.StringIO()
    code = main(["batch", "run", str(source), "--out", str(tmp_path / "a.jsonl"), "--model", "qwen-plus", "--via", "batch-api",
                 "--poll", "0.02", "--no-progress", "--base-url", server.compatible_base_url], out, err)  # fmt: skip
    assert code == 1 and "cancelled" in out.getvalue()


def test_a_completed_batch_that_is_missing_rows_is_not_ok() -> None:
    from opensearch_llm.batch import BatchSummary

    summary = BatchSummary("out.jsonl", rows=3, succeeded=2, status="completed")
    assert not summary.ok
    assert BatchSummary("out.jsonl", rows=3, succeeded=1, skipped=2, status="completed").ok


# --------------------------------------------------------------------------- errors that are ours


@pytest.mark.parametrize(
    ("errors", "shown"),
    [
        ({"data": [{"line": 2, "code": "c", "message": "m"}]}, "line 2: c: m"),
        ([{"code": "c", "message": "m"}], "c: m"),
        ("the file is not JSON Lines", "the file is not JSON Lines"),
        ({"data": ["plain text", 3]}, "plain text; 3"),
        ({"message": "refused"}, "refused"),
        (None, "no reason given"),
    ],
)
def test_a_failed_batch_says_why_whatever_shape_its_errors_have(errors: Any, shown: str) -> None:
    error = BatchFailedError({"id": "batch_1", "status": "failed", "errors": errors})
    assert str(error) == f"Batch batch_1 failed: {shown}"


def _mock_api(handler: Any, **options: Any) -> BatchAPIClient:
    http_client = httpx.Client(transport=httpx.MockTransport(handler))
    return BatchAPIClient(KEY, base_url=BASE_URL, http_client=http_client, max_retries=0, **options)


def test_answers_that_are_not_the_documented_json_are_decode_errors() -> None:
    from opensearch_llm import ResponseDecodeError

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/content"):
            return httpx.Response(200, content=b'{"custom_id": "a"}\n<html>oops</html>\n')
        return httpx.Response(200, json=["not", "an", "object"])

    with _mock_api(handler) as api:
        with pytest.raises(ResponseDecodeError):
            api.retrieve("batch_1")
        lines = api.file_lines("file-batch_output-1")
        assert next(lines) == {"custom_id": "a"}
        with pytest.raises(ResponseDecodeError, match="line 2"):
            next(lines)


def test_answers_over_max_response_bytes_are_refused() -> None:
    from opensearch_llm import ResponseTooLargeError

    big = {"id": "batch_1", "status": "completed", "metadata": {"x": "y" * 500}}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/content"):
            return httpx.Response(200, content=json.dumps(big).encode() + b"\n")
        return httpx.Response(200, json=big)

    with _mock_api(handler, max_response_bytes=200) as api:
        with pytest.raises(ResponseTooLargeError):
            api.retrieve("batch_1")
        with pytest.raises(ResponseTooLargeError):
            list(api.file_lines("file-batch_output-1"))
    with _mock_api(handler, max_response_bytes=2000) as api:
        assert api.retrieve("batch_1") == big


def test_a_client_never_closed_releases_its_pool_when_collected() -> None:
    import gc

    api = BatchAPIClient(KEY, base_url=BASE_URL)
    pool = api._http
    del api
    gc.collect()
    assert pool.is_closed


@pytest.mark.parametrize(
    ("via", "option", "where"),
    [
        ("batch-api", {"concurrency": 4}, "online"),
        ("batch-api", {"requests_per_minute": 60}, "online"),
        ("online", {"poll_seconds": 1}, "batch-api"),
        ("online", {"completion_window": "48h"}, "batch-api"),
    ],
)
def test_an_option_of_the_other_mode_is_refused_naming_where_it_applies(
    tmp_path: Path, via: str, option: dict[str, Any], where: str
) -> None:
    source, out = write_prompts(tmp_path / "in.jsonl", 1), tmp_path / "out.jsonl"
    with pytest.raises(RequestValidationError) as caught:
        run(source, out, via=via, api_key=KEY, base_url=BASE_URL, **option)
    assert caught.value.field == next(iter(option)) and where in str(caught.value)
    assert not out.exists()


# --------------------------------------------------------------------------- the CLI's endpoint


@pytest.mark.parametrize("command", [["run", "IN", "--out", "OUT"], ["status", "batch_1"]])
def test_the_cli_with_an_endpoint_in_the_environment_but_no_key_is_an_error_not_the_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    for name in ("OPENSEARCH_LLM_API_KEY", "DASHSCOPE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENSEARCH_LLM_BASE_URL", "http://127.0.0.1:9/compatible-mode/v1")
    source = write_prompts(tmp_path / "in.jsonl", 2)
    argv = [
        str(source) if a == "IN" else str(tmp_path / "o.jsonl") if a == "OUT" else a
        for a in command
    ]
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["batch", *argv, "--no-progress"] if command[0] == "run" else ["batch", *argv], out, err
    )
    assert code == 2 and "emulator" not in err.getvalue()
    assert "no API key for http://127.0.0.1:9" in err.getvalue()
    assert not (tmp_path / "o.jsonl").exists()
