"""The API key never shows in what a batch writes or prints, even when the service echoes it.

The emulator's ``echo-auth`` fault, as a batch line's model, makes that line's error quote the
request's ``Authorization`` header; a careless server (below) also quotes it in a failed
batch's ``errors``. The result files (JSON Lines and CSV), the summary, the printed ``status``
and ``cancel`` objects and ``BatchFailedError`` are scanned.
"""

from __future__ import annotations

import io
import json
import traceback
from pathlib import Path
from typing import Any

import pytest

from opensearch_llm.batch import BatchFailedError, run
from opensearch_llm.cli import main
from opensearch_llm.emulator import Emulator, batch_store

from .support import KEY, write_prompts

#: The key whole, or the part of it a masked form (``sk-…6789``) does not show.
NEEDLES = (KEY, KEY[3:-4])


class CarelessBatches(Emulator):
    """An emulator whose batch objects quote the request's ``Authorization`` header."""

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> Any:
        response = super().handle(method, path, headers, body)
        if "/batches" not in path:
            return response
        auth = dict((k.decode().lower(), v.decode()) for k, v in headers).get("authorization")
        batch = json.loads(b"".join(response.body))
        batch["metadata"] = {"echo": f"you sent {auth}"}
        if isinstance(batch.get("errors"), dict):
            for error in batch["errors"]["data"]:
                error["message"] += f" (request: Authorization: {auth})"
        content = json.dumps(batch).encode()
        head = [
            (k, str(len(content)).encode() if k == b"content-length" else v)
            for k, v in response.prelude
        ]
        return type(response)(response.status, head, [content])


def _leaks(where: str, text: str) -> list[str]:
    return [where] if any(needle in text for needle in NEEDLES) else []


def test_no_key_in_batch_api_results_status_cancel_or_errors(
    tmp_path: Path, served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = CarelessBatches()
    batch_store(emulator).completion_delay = 0.05
    server = served(emulator)
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", KEY)
    base = ["--base-url", server.compatible_base_url]
    leaks: list[str] = []

    source = write_prompts(tmp_path / "in.jsonl", 3, model="fault/echo-auth")
    for output in ("out.jsonl", "out.csv"):
        out = io.StringIO()
        code = main(["batch", "run", str(source), "--out", str(tmp_path / output), "--via", "batch-api",
                     "--poll", "0.02", "--no-progress", *base], out, io.StringIO())  # fmt: skip
        assert code == 1 and "invalid_api_key: 3" in out.getvalue()
        leaks += _leaks(f"{output} summary", out.getvalue())
        leaks += _leaks(output, (tmp_path / output).read_text())
    assert "Incorrect API key: Bearer sk-…6789" in (tmp_path / "out.jsonl").read_text()

    for command in ("status", "cancel"):
        out = io.StringIO()
        assert main(["batch", command, "batch_2", *base], out, io.StringIO()) == 0
        assert "you sent Bearer sk-…6789" in out.getvalue()
        leaks += _leaks(f"batch {command}", out.getvalue())

    twice = tmp_path / "twice.jsonl"
    twice.write_text('{"custom_id": "a", "prompt": "x"}\n' * 2)
    options = {"base_url": server.compatible_base_url, "poll_seconds": 0.02, "progress": False}
    with pytest.raises(BatchFailedError) as caught:
        run(twice, tmp_path / "refused.jsonl", model="qwen-plus", via="batch-api", **options)
    error = caught.value
    assert "Authorization: Bearer sk-…6789" in str(error)
    for where, text in {
        "str": str(error),
        "repr": repr(error),
        "args": repr(error.args),
        ".batch": repr(error.batch),
        "traceback": "".join(traceback.format_exception(error)),
    }.items():
        leaks += _leaks(f"BatchFailedError {where}", text)

    assert leaks == []


def test_no_key_in_the_lines_of_knowledge_rows_whose_errors_echo_it(
    tmp_path: Path, served: Any
) -> None:
    server = served(Emulator())
    source, out = tmp_path / "in.jsonl", tmp_path / "out.csv"
    source.write_text(json.dumps({"question": "q", "model": "fault/echo-auth"}) + "\n")
    summary = run(source, out, api_key=KEY, base_url=server.compatible_base_url, app="a",
                  knowledge_host=server.origin, progress=False)  # fmt: skip
    assert summary.failures == {"invalid_api_key": 1}
    journal = (tmp_path / "out.csv.jsonl").read_text()
    assert "Incorrect API key: Bearer sk-…6789" in journal
    assert _leaks("journal", journal) + _leaks("csv", out.read_text()) == []
