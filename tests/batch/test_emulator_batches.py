"""The emulator's files and batches routes: checks, shapes, the clock, faults in lines."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from opensearch_llm.emulator import Emulator, batch_store
from opensearch_llm.emulator._batches import parse_multipart

from .support import KEY

BASE = "http://emulator.local/compatible-mode/v1"


@pytest.fixture
def emulator() -> Emulator:
    return Emulator()


@pytest.fixture
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(
        transport=emulator.transport(), base_url=BASE, headers={"Authorization": f"Bearer {KEY}"}
    ) as client:
        yield client


def _line(
    custom_id: str, model: str = "qwen-plus", url: str = "/v1/chat/completions"
) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": f"hi {custom_id}"}]}
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def _upload(http: httpx.Client, lines: list[Any], purpose: str = "batch") -> httpx.Response:
    content = "".join(
        (line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines
    )
    return http.post(
        "/files", files={"file": ("in.jsonl", content.encode())}, data={"purpose": purpose}
    )


def _create(http: httpx.Client, file_id: str, **overrides: Any) -> httpx.Response:
    body = {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        **overrides,
    }
    return http.post("/batches", json=body)


def test_uploads_are_checked(http: httpx.Client) -> None:
    assert _upload(http, [_line("a")], purpose="fine-tune").json()["error"]["param"] == "purpose"
    assert http.post("/files", json={"file": "x"}).json()["error"]["param"] == "file"
    assert (
        http.post(
            "/files", files={"file": ("a", b"")}, headers={"Authorization": "Bearer "}
        ).status_code
        == 401
    )


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"input_file_id": "file-nope"}, "input_file_id"),
        ({"endpoint": "/v1/responses"}, "endpoint"),
        ({"completion_window": "12h"}, "completion_window"),
        ({"completion_window": "15d"}, "completion_window"),
        ({"completion_window": "a day"}, "completion_window"),
    ],
)
def test_create_checks_its_body(http: httpx.Client, overrides: dict[str, Any], param: str) -> None:
    file_id = _upload(http, [_line("a")]).json()["id"]
    response = _create(http, file_id, **overrides)
    assert response.status_code == 400 and response.json()["error"]["param"] == param


def test_windows_in_days_and_hours_are_accepted(http: httpx.Client) -> None:
    file_id = _upload(http, [_line("a")]).json()["id"]
    assert _create(http, file_id, completion_window="14d").status_code == 200
    assert _create(http, file_id, completion_window="336h").status_code == 200


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([_line("a"), _line("a")], "unique"),
        ([_line("a", url="/v1/embeddings")], "url must equal"),
        (["{oops"], "not a JSON object"),
        ([{**_line("a"), "method": "GET"}], "POST"),
        ([], "no requests"),
    ],
)
def test_bad_input_lines_fail_the_batch_with_errors(
    http: httpx.Client, lines: list[Any], message: str
) -> None:
    batch = _create(http, _upload(http, lines).json()["id"]).json()
    assert batch["status"] == "failed" and message in json.dumps(batch["errors"])
    assert http.get(f"/batches/{batch['id']}").json()["status"] == "failed"


def test_progress_follows_the_clock_and_faults_in_lines_fail_those_lines(
    http: httpx.Client, emulator: Emulator
) -> None:
    batch_store(emulator).completion_delay = 0.2
    lines = [_line(str(n), "fault/429" if n == 3 else "qwen-plus") for n in range(10)]
    batch = _create(http, _upload(http, lines).json()["id"]).json()
    assert batch["status"] == "validating" and batch["request_counts"] == {
        "total": 10,
        "completed": 0,
        "failed": 0,
    }
    time.sleep(0.1)
    middle = http.get(f"/batches/{batch['id']}").json()
    assert middle["status"] == "in_progress" and middle["output_file_id"] is None
    assert 0 < sum(middle["request_counts"].values()) - 10 < 10
    time.sleep(0.12)
    done = http.get(f"/batches/{batch['id']}").json()
    assert done["status"] == "completed" and done["request_counts"] == {
        "total": 10,
        "completed": 9,
        "failed": 1,
    }
    errors = http.get(f"/files/{done['error_file_id']}/content").text.splitlines()
    assert [json.loads(e)["error"]["code"] for e in errors] == ["limit_requests"]
    listed = http.get("/batches").json()
    assert listed["object"] == "list" and listed["data"][0]["id"] == batch["id"]


def test_only_result_files_can_be_downloaded_and_files_can_be_deleted(http: httpx.Client) -> None:
    file_id = _upload(http, [_line("a")]).json()["id"]
    assert http.get(f"/files/{file_id}/content").status_code == 400
    assert http.get(f"/files/{file_id}").json()["filename"] == "in.jsonl"
    assert file_id in [f["id"] for f in http.get("/files").json()["data"]]
    assert http.delete(f"/files/{file_id}").json() == {
        "id": file_id,
        "object": "file",
        "deleted": True,
    }
    assert http.get(f"/files/{file_id}").status_code == 404


def test_unknown_paths_and_methods(http: httpx.Client) -> None:
    assert http.get("/batches/b/results").status_code == 404
    assert http.put("/files").status_code == 405
    assert http.post("/batches/nope/cancel").status_code == 404
    assert http.get("/files/a/b/c").status_code == 404


def test_http_faults_apply_to_these_routes_too(http: httpx.Client, emulator: Emulator) -> None:
    emulator.script_faults(["503"])
    assert http.get("/batches").status_code == 503
    assert http.get("/batches").status_code == 200


def test_multipart_bodies_are_parsed() -> None:
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n'
        b"Content-Type: application/jsonl\r\n\r\nline\r\n\r\n--XyZ--\r\n"
    )
    form = parse_multipart('multipart/form-data; boundary="XyZ"', body)
    assert form == {"purpose": (None, b"batch"), "file": ("a.jsonl", b"line\r\n")}
    assert parse_multipart("application/json", body) is None


def test_the_limits_of_a_batch_file_are_the_clients(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opensearch_llm.batch._limits import BATCH_FILE_LIMITS, FileLimits
    from opensearch_llm.emulator import _batches

    assert _batches.BATCH_FILE_LIMITS is BATCH_FILE_LIMITS  # one fact, one place
    long_line = {**_line("long"), "body": {"model": "qwen-plus", "pad": "x" * 6_000_000}}
    batch = _create(http, _upload(http, [_line("a"), long_line]).json()["id"]).json()
    assert batch["status"] == "failed"
    assert batch["errors"]["data"][0]["line"] == 2
    assert "at most 6000000 bytes" in batch["errors"]["data"][0]["message"]

    monkeypatch.setattr(_batches, "BATCH_FILE_LIMITS", FileLimits(2, 600, 6_000_000))
    too_many = _create(http, _upload(http, [_line("a"), _line("b"), _line("c")]).json()["id"])
    assert too_many.json()["errors"]["data"][0]["code"] == "too_many_requests"
    too_big = _upload(http, [_line(str(n)) for n in range(6)])
    assert too_big.status_code == 400 and "at most 600 bytes" in too_big.json()["error"]["message"]


def test_the_list_shows_the_result_files_of_the_batches_that_ended(
    http: httpx.Client, emulator: Emulator
) -> None:
    batch_store(emulator).completion_delay = 0
    batch = _create(http, _upload(http, [_line("a")]).json()["id"]).json()
    (listed,) = http.get("/batches", params={"input_file_ids": batch["input_file_id"]}).json()[
        "data"
    ]
    assert listed["status"] == "completed" and listed["output_file_id"].startswith(
        "file-batch_output"
    )
