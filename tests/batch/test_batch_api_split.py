"""Batch API mode with more rows than one batch file holds: split, resumed at any step, written once.

The per-file limits are made small (``BATCH_FILE_LIMITS`` of ``_api``) so that 25 rows make three
batch files; the emulator keeps the service's limits.
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from opensearch_llm import RequestValidationError
from opensearch_llm.batch import BatchAPIClient, run
from opensearch_llm.batch import _api as api_module
from opensearch_llm.batch._api import BatchFailedError
from opensearch_llm.batch._formats import Row
from opensearch_llm.batch._limits import BATCH_FILE_LIMITS, FileLimits
from opensearch_llm.cli import main
from opensearch_llm.emulator import Emulator, batch_store

from .support import KEY, id_counts, write_prompts

BASE_URL = "http://emulator.local/compatible-mode/v1"
ROWS = 25
#: What a clean run of ROWS rows sends, the batches finishing at once: three files up and
#: three batches made, then each batch polled and its output downloaded.
CALLS = ["upload", "create"] * 3 + ["retrieve", "content"] * 3
#: The client's methods the tests replace, to put back before a rerun.
ORIGINAL = {name: BatchAPIClient.__dict__[name] for name in ("_send", "create", "file_lines", "retrieve")}  # fmt: skip


@pytest.fixture
def emulator() -> Emulator:
    emulator = Emulator(max_recorded=None)
    batch_store(emulator).completion_delay = 0
    return emulator


@pytest.fixture
def small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch files of at most 10 lines (the service's bytes per file and per line)."""
    monkeypatch.setattr(api_module, "BATCH_FILE_LIMITS", FileLimits(10, 500_000_000, 6_000_000))


def _options(emulator: Emulator) -> dict[str, Any]:
    return {
        "via": "batch-api",
        "model": "qwen-plus",
        "api_key": KEY,
        "base_url": BASE_URL,
        "http_client": httpx.Client(transport=emulator.transport()),
        "poll_seconds": 0.01,
        "progress": False,
    }


def _restore(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client as it was (the small files stay)."""
    for name, method in ORIGINAL.items():
        monkeypatch.setattr(BatchAPIClient, name, method)


def _request_file(source: Path) -> bytes:
    """The Batch API lines of the rows of ``source``."""
    rows = [row for row in api_module.read_rows(source, "qwen-plus") if isinstance(row, Row)]
    return b"".join(api_module.request_bytes(row, BATCH_FILE_LIMITS) for row in rows)


def _ids(content: bytes) -> list[str]:
    return [json.loads(line)["custom_id"] for line in content.splitlines() if line.strip()]


def _uploaded(emulator: Emulator) -> Counter[str]:
    """How many times each row went up in a batch file."""
    files = batch_store(emulator).files.values()
    return Counter(i for f in files if f.purpose == "batch" for i in _ids(f.content))


def _batched(emulator: Emulator) -> Counter[str]:
    """How many batches each row was in."""
    store = batch_store(emulator)
    return Counter(
        i
        for batch in store.batches.values()
        for i in _ids(store.files[batch.input_file_id].content)
    )


def _batch_sizes(emulator: Emulator) -> list[int]:
    store = batch_store(emulator)
    return [len(_ids(store.files[b.input_file_id].content)) for b in store.batches.values()]


def _state_lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(str(out) + ".batch.json").read_text().splitlines()]


def _interrupt_call(monkeypatch: pytest.MonkeyPatch, number: int, after: bool) -> list[str]:
    """Ctrl-C at the client's ``number``-th HTTP call; the kinds of the calls, as they are made.

    ``after``: once the service has acted on it, before its answer is read (else before it goes).
    """
    original = BatchAPIClient._send
    calls: list[str] = []

    def send(self: BatchAPIClient, method: str, path: str, **content: Any) -> httpx.Response:
        calls.append(_kind(method, path))
        if len(calls) == number and not after:
            raise KeyboardInterrupt
        response = original(self, method, path, **content)
        if len(calls) == number:
            response.close()
            raise KeyboardInterrupt
        return response

    monkeypatch.setattr(BatchAPIClient, "_send", send)
    return calls


def _kind(method: str, path: str) -> str:
    if path.endswith("/content"):
        return "content"
    if path == "/files":
        return "upload"
    return "create" if method == "POST" else "list" if path == "/batches" else "retrieve"


# --------------------------------------------------------------------------- splitting


@pytest.mark.usefixtures("small_files")
def test_rows_over_the_line_limit_go_up_in_several_batches_answered_once(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_store(emulator).completion_delay = 0.3  # polled as they run
    source, out = write_prompts(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl"
    shown: list[tuple[int, int | None]] = []
    monkeypatch.setattr(
        api_module.Progress,
        "set",
        lambda self, summary, done, total=None: shown.append((done, total)),
    )

    summary = run(source, out, **_options(emulator))

    assert _batch_sizes(emulator) == [10, 10, 5]
    assert set(_uploaded(emulator).values()) == {1} and len(_uploaded(emulator)) == ROWS
    assert len(id_counts(out)) == ROWS and set(id_counts(out).values()) == {1}
    assert summary.ok and summary.succeeded == ROWS and summary.requests == ROWS
    assert summary.batch_id == ", ".join(batch_store(emulator).batches)
    # The bar follows the sum of the three batches' counts.
    assert shown[0] == (0, ROWS) and shown[-1] == (ROWS, ROWS) and len(shown) > 2
    assert {total for _, total in shown} == {ROWS} and [d for d, _ in shown] == sorted(
        d for d, _ in shown
    )
    assert not Path(str(out) + ".batch.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]  # the files made to upload are gone
    names = [f.filename for f in batch_store(emulator).files.values() if f.purpose == "batch"]
    assert names == ["out-1.jsonl", "out-2.jsonl", "out-3.jsonl"]


def test_files_are_split_by_bytes_too(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, out = write_prompts(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl"
    line = len(_request_file(source).splitlines()[0]) + 1
    most = 4 * line + line // 2  # four lines (the ids all have two digits but the first ten)
    monkeypatch.setattr(api_module, "BATCH_FILE_LIMITS", FileLimits(50_000, most, 6_000_000))

    summary = run(source, out, **_options(emulator))

    files = [f.content for f in batch_store(emulator).files.values() if f.purpose == "batch"]
    assert all(len(content) <= most for content in files)
    assert [len(_ids(content)) for content in files] == [4] * 6 + [1]
    assert summary.ok and len(id_counts(out)) == ROWS


def test_a_line_over_6_mb_is_refused_naming_its_row_before_anything_is_sent(
    tmp_path: Path, emulator: Emulator
) -> None:
    source, out = write_prompts(tmp_path / "in.jsonl", 3), tmp_path / "out.jsonl"
    with open(source, "a") as handle:
        handle.write('{"custom_id": "bad", "prompt": ""}\n')  # would be written to the output
        handle.write(json.dumps({"custom_id": "huge", "prompt": "x" * 6_000_000}) + "\n")
    with pytest.raises(RequestValidationError) as caught:
        run(source, out, **_options(emulator))
    assert caught.value.field == "row huge" and "6000000 bytes per line" in str(caught.value)
    assert emulator.request_count == 0 and (not out.exists() or out.read_text() == "")


# --------------------------------------------------------------------------- Ctrl-C at any step


def test_a_clean_run_makes_the_calls_the_steps_below_interrupt(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, small_files: None
) -> None:
    calls = _interrupt_call(monkeypatch, 0, after=False)
    run(write_prompts(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl", **_options(emulator))
    assert calls == CALLS


@pytest.mark.usefixtures("small_files")
@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
@pytest.mark.parametrize("step", range(1, len(CALLS) + 1), ids=lambda n: f"{n}-{CALLS[n - 1]}")
def test_ctrl_c_at_any_step_then_a_rerun_answers_every_row_once_sending_none_twice(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, step: int, after: bool
) -> None:
    source, out = write_prompts(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl"
    _interrupt_call(monkeypatch, step, after)
    with pytest.raises(KeyboardInterrupt):
        run(source, out, **_options(emulator))
    _restore(monkeypatch)

    summary = run(source, out, **_options(emulator))

    assert summary.ok and summary.skipped + summary.succeeded == ROWS
    assert len(id_counts(out)) == ROWS and set(id_counts(out).values()) == {1}
    assert len(_batched(emulator)) == ROWS and set(_batched(emulator).values()) == {1}
    uploads = _uploaded(emulator)
    if after and CALLS[step - 1] == "upload":  # its answer lost: that file goes up again, once
        assert sorted(set(uploads.values())) == [1, 2] and list(uploads.values()).count(2) <= 10
    else:
        assert set(uploads.values()) == {1}
    assert not Path(str(out) + ".batch.json").exists()


@pytest.mark.usefixtures("small_files")
def test_a_batch_made_as_the_run_stopped_is_found_again_not_made_twice(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, out = write_prompts(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl"
    _interrupt_call(monkeypatch, 4, after=True)  # the second batch is made, its id lost
    with pytest.raises(KeyboardInterrupt):
        run(source, out, **_options(emulator))
    assert [sorted(line) for line in _state_lines(out)] == [
        ["custom_ids", "endpoint", "file_id"],
        ["batch_id", "file_id"],
        ["custom_ids", "endpoint", "file_id"],
    ]
    _restore(monkeypatch)
    calls = _interrupt_call(monkeypatch, 0, after=False)

    assert run(source, out, **_options(emulator)).ok

    assert calls[:3] == ["retrieve", "list", "upload"] and "create" not in calls[:3]
    assert _batch_sizes(emulator) == [10, 10, 5]


@pytest.mark.usefixtures("small_files")
def test_ctrl_c_while_a_batch_is_being_written_then_a_rerun_writes_the_rest_once(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, out = write_prompts(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl"
    original = BatchAPIClient.file_lines
    downloads = []

    def cut(self: BatchAPIClient, file_id: str) -> Any:
        downloads.append(file_id)
        for number, line in enumerate(original(self, file_id)):
            if len(downloads) == 2 and number == 4:
                raise KeyboardInterrupt
            yield line

    monkeypatch.setattr(BatchAPIClient, "file_lines", cut)
    with pytest.raises(KeyboardInterrupt):
        run(source, out, **_options(emulator))
    assert len(id_counts(out)) == 14  # the first batch, and four rows of the second
    ended = [line for line in _state_lines(out) if "ended" in line]
    assert [line["ended"] for line in ended] == ["completed"]
    _restore(monkeypatch)

    summary = run(source, out, **_options(emulator))

    assert summary.ok and summary.skipped == 14 and summary.succeeded == ROWS - 14
    assert set(id_counts(out).values()) == {1} and len(id_counts(out)) == ROWS
    assert len(batch_store(emulator).batches) == 3


# --------------------------------------------------------------------------- endings


@pytest.mark.usefixtures("small_files")
def test_one_batch_failing_while_the_others_complete(tmp_path: Path, emulator: Emulator) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = [f"id-{n}" for n in range(ROWS)]
    ids[13] = ids[12]  # the service refuses a file whose custom_ids repeat: the second file

    def write(ids: list[str]) -> None:
        source.write_text("".join(json.dumps({"custom_id": i, "prompt": i}) + "\n" for i in ids))

    write(ids)
    with pytest.raises(BatchFailedError, match="custom_id must be a unique"):
        run(source, out, **_options(emulator))
    assert sorted(id_counts(out)) == sorted(ids[:10] + ids[20:])  # the others are written
    assert not Path(str(out) + ".batch.json").exists()  # the failed batch is forgotten
    ids[13] = "id-13"
    write(ids)

    summary = run(source, out, **_options(emulator))

    assert summary.ok and summary.skipped == 15 and summary.succeeded == 10
    assert _batch_sizes(emulator) == [10, 10, 5, 10]  # the failed batch's rows again, once
    assert set(id_counts(out).values()) == {1} and len(id_counts(out)) == ROWS


@pytest.mark.usefixtures("small_files")
def test_a_cancelled_batch_among_others_is_reported_and_its_rest_sent_by_a_rerun(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_store(emulator).completion_delay = 0.2  # long enough to cancel one
    source, out = write_prompts(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl"
    original = BatchAPIClient.create

    def cancel_the_second(self: BatchAPIClient, *args: Any, **kwargs: Any) -> dict[str, Any]:
        batch = original(self, *args, **kwargs)
        if len(batch_store(emulator).batches) == 2:
            batch = self.cancel(batch["id"])
        return batch

    monkeypatch.setattr(BatchAPIClient, "create", cancel_the_second)
    summary = run(source, out, **_options(emulator))
    missing = ROWS - len(id_counts(out))  # the second batch's rows not done when cancelled
    assert summary.status == "cancelled" and not summary.ok and summary.missing == missing > 0
    assert f"{missing} rows without a result" in str(summary)
    _restore(monkeypatch)

    again = run(source, out, **_options(emulator))

    assert again.ok and again.skipped == ROWS - missing and again.succeeded == missing
    assert set(id_counts(out).values()) == {1} and len(id_counts(out)) == ROWS


# --------------------------------------------------------------------------- the state file


def test_the_single_batch_state_of_earlier_versions_is_resumed(
    tmp_path: Path, emulator: Emulator
) -> None:
    source, out = write_prompts(tmp_path / "in.jsonl", 5), tmp_path / "out.jsonl"
    requests = tmp_path / "requests.jsonl"
    requests.write_bytes(_request_file(source))
    with BatchAPIClient(
        KEY, base_url=BASE_URL, http_client=_options(emulator)["http_client"]
    ) as api:
        batch = api.create(api.upload(requests)["id"])
    state = Path(str(out) + ".batch.json")
    state.write_text(json.dumps({"batch_id": batch["id"]}))  # as written before: no newline

    summary = run(source, out, **_options(emulator))

    assert summary.ok and summary.batch_id == batch["id"] and len(id_counts(out)) == 5
    assert len(batch_store(emulator).batches) == 1 and not state.exists()


@pytest.mark.usefixtures("small_files")
def test_a_state_line_cut_short_is_dropped_and_one_that_is_not_ours_refused(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, out = write_prompts(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl"
    state = Path(str(out) + ".batch.json")
    _interrupt_call(monkeypatch, 7, after=False)  # three batches made, none polled
    with pytest.raises(KeyboardInterrupt):
        run(source, out, **_options(emulator))
    _restore(monkeypatch)
    kept = state.read_bytes()
    state.write_bytes(b"not json\n" + kept)
    with pytest.raises(RequestValidationError, match="line 1") as caught:
        run(source, out, **_options(emulator))
    assert str(state) in caught.value.field and "Remove it" in str(caught.value)
    state.write_bytes(kept + b'{"file_id": "file-batch-99", "custom_ids": ["id-0", "id')

    summary = run(source, out, **_options(emulator))

    assert summary.ok and len(batch_store(emulator).batches) == 3 and len(id_counts(out)) == ROWS


# --------------------------------------------------------------------------- the CLI


@pytest.mark.usefixtures("small_files")
def test_the_cli_downloads_every_batch_a_run_left_behind(
    tmp_path: Path, served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = Emulator()
    batch_store(emulator).completion_delay = 60
    server = served(emulator)
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", KEY)
    source, out = write_prompts(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl"
    base = ["--base-url", server.compatible_base_url]
    monkeypatch.setattr(BatchAPIClient, "retrieve", _interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(source, out, via="batch-api", model="qwen-plus", api_key=KEY,
            base_url=server.compatible_base_url, poll_seconds=0.01, progress=False)  # fmt: skip
    _restore(monkeypatch)

    err = io.StringIO()
    assert main(["batch", "download", "--out", str(out), *base], io.StringIO(), err) == 2
    assert err.getvalue().count("not finished yet") == 3
    batch_store(emulator).completion_delay = 0.01
    for batch in batch_store(emulator).batches.values():
        batch.delay = 0.01
    time.sleep(0.02)
    stdout = io.StringIO()
    assert main(["batch", "download", "--out", str(out), *base], stdout, err) == 0
    assert f"{ROWS} answered" in stdout.getvalue()
    assert set(id_counts(out).values()) == {1} and len(id_counts(out)) == ROWS
    assert not Path(str(out) + ".batch.json").exists()
    err = io.StringIO()
    assert main(["batch", "download", "--out", str(out), *base], io.StringIO(), err) == 2
    assert "name one" in err.getvalue()


def _interrupted(*args: Any, **kwargs: Any) -> Any:
    raise KeyboardInterrupt


# --------------------------------------------------------------------------- the real limit


def test_120_000_rows_make_three_files_at_the_real_limit(tmp_path: Path) -> None:
    # A whole run of 120,000 rows against the in-process emulator takes 16 s (the emulator
    # answers every line as it creates a batch): the files are checked here, the runs above.
    lines = ((f"id-{n}", b'{"custom_id": "id-%d"}\n' % n) for n in range(120_000))

    files = [
        (len(path.read_bytes().splitlines()), len(ids), ids[0])
        for path, ids in api_module.split_files(lines, tmp_path, "out", BATCH_FILE_LIMITS)
    ]

    assert files == [
        (50_000, 50_000, "id-0"),
        (50_000, 50_000, "id-50000"),
        (20_000, 20_000, "id-100000"),
    ]
