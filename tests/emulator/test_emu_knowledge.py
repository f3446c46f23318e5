"""knowledge-llm: answers from question and content, prompt mode, streams, csi_level, errors."""

from __future__ import annotations

from typing import Any

import pytest
from emu_support import KNOWLEDGE, Caller

QUESTION = {"question": "what is OpenSearch", "type": "text", "content": ["OpenSearch", "Havenask"]}


def answers(frames: list[dict[str, Any]]) -> list[str]:
    return [frame["result"]["data"][0]["answer"] for frame in frames]


async def test_question_and_content(call: Caller) -> None:
    result = await call(QUESTION, path=KNOWLEDGE)
    assert result.status == 200
    body = result.json()
    assert body["request_id"] == result.headers["x-request-id"]
    assert isinstance(body["latency"], float)
    assert body["errors"] == []
    assert body["result"]["data"] == [
        {"answer": "Answer to: what is OpenSearch | Sources: OpenSearch | Havenask", "type": "text"}
    ]


async def test_question_without_content(in_process: Caller) -> None:
    body = (await in_process({"question": "why"}, path=KNOWLEDGE)).json()
    assert answers([body]) == ["Answer to: why"]


async def test_prompt_overrides_question_and_content(in_process: Caller) -> None:
    body = {**QUESTION, "prompt": "Summarise this", "model": "qwen-turbo"}
    assert answers([(await in_process(body, path=KNOWLEDGE)).json()]) == [
        "Answer to: Summarise this"
    ]


async def test_streamed_answer(call: Caller) -> None:
    result = await call({**QUESTION, "options": {"stream": True}}, path=KNOWLEDGE)
    assert result.headers["content-type"].startswith("text/event-stream")
    frames = result.chunks()
    assert (
        "".join(answers(frames)) == "Answer to: what is OpenSearch | Sources: OpenSearch | Havenask"
    )
    assert len(frames) == 10 and "[DONE]" not in result.data()
    assert {frame["request_id"] for frame in frames} == {result.headers["x-request-id"]}
    assert all(frame["errors"] == [] for frame in frames)


async def test_cumulative_stream(in_process: Caller) -> None:
    headers = {"X-Emulator-Fault": "knowledge-cumulative"}
    body = {"prompt": "a b c", "options": {"stream": True}}
    frames = (await in_process(body, path=KNOWLEDGE, headers=headers)).chunks()
    assert answers(frames) == [
        "Answer",
        "Answer to:",
        "Answer to: a",
        "Answer to: a b",
        "Answer to: a b c",
    ]


@pytest.mark.parametrize("csi_level", ["none", "loose"])
async def test_csi_level_passes_clean_input(in_process: Caller, csi_level: str) -> None:
    result = await in_process({**QUESTION, "csi_level": csi_level}, path=KNOWLEDGE)
    assert result.status == 200 and result.json()["errors"] == []


async def test_csi_level_loose_blocks_restricted_input(in_process: Caller) -> None:
    body = {**QUESTION, "content": ["[restricted] text"], "csi_level": "loose"}
    result = await in_process(body, path=KNOWLEDGE)
    assert result.status == 200
    payload = result.json()
    assert payload["status"] == "FAIL" and payload["result"] == {"data": []}
    assert payload["errors"][0]["code"] == "data_inspection_failed"


async def test_csi_level_none_does_not_block(in_process: Caller) -> None:
    body = {**QUESTION, "content": ["[restricted] text"], "csi_level": "none"}
    assert (await in_process(body, path=KNOWLEDGE)).json()["errors"] == []


async def test_content_filter_fault_blocks(in_process: Caller) -> None:
    result = await in_process(
        QUESTION, path=KNOWLEDGE, headers={"X-Emulator-Fault": "content-filter"}
    )
    assert result.json()["errors"][0]["code"] == "data_inspection_failed"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "question"),
        ({"question": ""}, "question"),
        ({"question": "q", "content": "not a list"}, "content"),
        ({"question": "q", "content": [1]}, "content"),
        ({"question": "q", "csi_level": "strict"}, "csi_level"),
        ({"question": "q", "options": {"stream": "yes"}}, "options.stream"),
        ({"prompt": 5}, "prompt"),
    ],
)
async def test_invalid_requests(in_process: Caller, body: dict[str, Any], param: str) -> None:
    result = await in_process(body, path=KNOWLEDGE)
    assert result.status == 400
    payload = result.json()
    assert payload["status"] == "FAIL"
    assert payload["errors"][0]["code"] == "invalid_parameter_error"
    assert payload["request_id"] == result.headers["x-request-id"]


async def test_knowledge_stream_faults(in_process: Caller) -> None:
    body = {**QUESTION, "options": {"stream": True}}
    headers = {"X-Emulator-Fault": "error-frame", "X-Emulator-Fault-After": "2"}
    frames = (await in_process(body, path=KNOWLEDGE, headers=headers)).chunks()
    assert len(frames) == 3 and frames[-1]["status"] == "FAIL"


async def test_any_app_name_but_not_an_empty_one(in_process: Caller) -> None:
    other = KNOWLEDGE.replace("my-app", "another_app")
    assert (await in_process(QUESTION, path=other)).status == 200
    empty = KNOWLEDGE.replace("my-app", "")
    assert (await in_process(QUESTION, path=empty)).status == 404
