"""Scripted faults: every fault by header, by model name, scripted, and at random."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from emu_support import COMPATIBLE, GATEWAY, KEY, KNOWLEDGE, Caller, ask

from opensearch_llm.emulator import FAULT_NAMES, Emulator, Fault, FaultError

BROKEN = (httpx.ReadError, httpx.RemoteProtocolError)
STREAM = ask("one two three four five six", stream=True, stream_options={"include_usage": True})


def fault(name: str, **params: Any) -> dict[str, str]:
    headers = {"X-Emulator-Fault": name}
    names = {
        "after": "Fault-After",
        "delay": "Delay",
        "retry_after": "Retry-After",
        "status": "Status",
    }
    headers.update({f"X-Emulator-{names[key]}": str(value) for key, value in params.items()})
    return headers


STATUS_FAULTS = [
    ("429", 429, "limit_requests"),
    ("insufficient-quota", 429, "insufficient_quota"),
    ("500", 500, "internal_error"),
    ("502", 502, "bad_gateway"),
    ("503", 503, "service_unavailable"),
    ("504", 504, "gateway_timeout"),
    ("data-inspection-failed", 400, "data_inspection_failed"),
    ("data_inspection_failed", 400, "data_inspection_failed"),
]


@pytest.mark.parametrize(("name", "status", "code"), STATUS_FAULTS)
async def test_status_faults(call: Caller, name: str, status: int, code: str) -> None:
    result = await call(ask(), headers=fault(name))
    assert result.status == status
    body = result.json()
    assert body["error"]["code"] == code
    assert body["request_id"] == result.headers["x-request-id"]


async def test_429_has_retry_after(call: Caller) -> None:
    assert (await call(ask(), headers=fault("429"))).headers["retry-after"] == "1"
    result = await call(ask(), headers=fault("429", retry_after=7))
    assert result.headers["retry-after"] == "7"
    assert "retry-after" not in (await call(ask(), headers=fault("insufficient-quota"))).headers


async def test_status_override(in_process: Caller) -> None:
    assert (await in_process(ask(), headers=fault("500", status=501))).status == 501


async def test_status_faults_use_the_dialect_shape(in_process: Caller) -> None:
    gateway = await in_process(ask(), path=GATEWAY, headers=fault("503"))
    assert gateway.status == 503
    assert gateway.json()["success"] is False and gateway.json()["code"] == "service_unavailable"
    knowledge = await in_process({"question": "q"}, path=KNOWLEDGE, headers=fault("503"))
    assert knowledge.status == 503
    assert knowledge.json()["errors"][0]["code"] == "service_unavailable"


async def test_html_error_page(call: Caller) -> None:
    result = await call(ask(), headers=fault("html"))
    assert result.status == 502
    assert result.headers["content-type"].startswith("text/html")
    assert b"<h1>502 Bad Gateway</h1>" in result.body


async def test_flat_error(call: Caller) -> None:
    result = await call(ask(), headers=fault("flat-error"))
    assert result.status == 400
    body = result.json()
    assert set(body) == {"code", "message", "request_id"}
    assert body["request_id"] == result.headers["x-request-id"]


@pytest.mark.parametrize("name", ["error-200", "success-false", "knowledge-errors"])
async def test_error_bodies_under_200(in_process: Caller, name: str) -> None:
    compatible = await in_process(ask(), headers=fault(name))
    assert compatible.status == 200 and compatible.json()["error"]["code"] == "internal_error"
    gateway = await in_process(ask(), path=GATEWAY, headers=fault(name))
    assert gateway.status == 200
    assert gateway.json() | {"request_id": None} == {
        "success": False,
        "code": "internal_error",
        "message": gateway.json()["message"],
        "data": None,
        "request_id": None,
    }
    knowledge = (await in_process({"question": "q"}, path=KNOWLEDGE, headers=fault(name))).json()
    assert knowledge["status"] == "FAIL" and knowledge["errors"][0]["code"] == "internal_error"


async def test_reset_before_the_response(call: Caller) -> None:
    result = await call(ask(), headers=fault("reset"))
    assert result.status is None
    assert isinstance(result.error, BROKEN)


async def test_reset_in_the_middle_of_a_stream(call: Caller) -> None:
    result = await call(STREAM, headers=fault("reset-mid-stream", after=3))
    assert result.status == 200
    assert isinstance(result.error, BROKEN)
    assert len(result.data()) == 3


async def test_reset_in_the_middle_of_a_non_streamed_body(call: Caller) -> None:
    result = await call(ask(), headers=fault("reset-mid-stream"))
    assert result.status == 200
    assert isinstance(result.error, BROKEN)
    assert 0 < len(result.body) < int(result.headers["content-length"])


async def test_error_frame_in_the_middle_of_a_stream(call: Caller) -> None:
    result = await call(STREAM, headers=fault("error-frame", after=2))
    assert result.error is None and result.status == 200
    chunks = result.chunks()
    assert len(chunks) == 3 and "[DONE]" not in result.data()
    assert chunks[-1]["error"]["code"] == "internal_error"
    assert chunks[-1]["request_id"] == result.headers["x-request-id"]


async def test_error_frame_in_the_gateway_is_enveloped(in_process: Caller) -> None:
    chunks = (await in_process(STREAM, path=GATEWAY, headers=fault("error-frame"))).chunks()
    assert chunks[-1]["success"] is False and chunks[-1]["data"] is None


async def test_error_frame_on_a_non_streamed_call_is_an_error_under_200(in_process: Caller) -> None:
    result = await in_process(ask(), headers=fault("error-frame"))
    assert result.status == 200 and "error" in result.json()


async def test_echo_auth_quotes_the_authorization_header(call: Caller) -> None:
    result = await call(ask(), headers=fault("echo-auth"))
    assert result.status == 401 and KEY in result.json()["error"]["message"]
    streamed = await call(STREAM, headers=fault("echo-auth", after=2))
    chunks = streamed.chunks()
    assert len(chunks) == 3 and KEY in chunks[-1]["error"]["message"]


async def test_input_too_long_is_a_flat_invalid_parameter_under_200(call: Caller) -> None:
    for request in (ask(), STREAM):
        result = await call(request, headers=fault("input-too-long"))
        body = result.json()
        assert result.status == 200 and body["code"] == "InvalidParameter"
        assert body["message"].startswith("Range of input length")


async def test_redirect_names_the_new_address(call: Caller) -> None:
    result = await call(STREAM, headers=fault("redirect"))
    assert result.status == 307
    assert result.headers["location"] == "https://moved.example.com/"


async def test_keep_alive_frames_come_before_every_frame(call: Caller) -> None:
    result = await call(STREAM, headers=fault("keep-alive-frames"))
    chunks = result.chunks()
    assert chunks[0] == {} and chunks[1] != {} and chunks[::2] == [{}] * len(chunks[::2])
    plain = await call(ask(), headers=fault("keep-alive-frames"))
    assert plain.json()["choices"]  # a non-streamed answer is left alone


async def test_stream_without_done(call: Caller) -> None:
    result = await call(STREAM, headers=fault("no-done"))
    assert result.error is None
    assert "[DONE]" not in result.data()
    assert result.chunks()[-1]["choices"] == []


async def test_slow_first_byte(call: Caller) -> None:
    started = time.perf_counter()
    result = await call(ask(), headers=fault("slow-first-byte", delay=0.3))
    assert time.perf_counter() - started >= 0.3
    assert result.status == 200 and result.error is None


async def test_slow_first_byte_beyond_the_read_timeout(call: Caller) -> None:
    started = time.perf_counter()
    result = await call(ask(), headers=fault("slow-first-byte", delay=2), timeout=0.2)
    assert isinstance(result.error, httpx.ReadTimeout)
    assert time.perf_counter() - started < 1.5


async def test_stalled_stream_then_reset(call: Caller) -> None:
    started = time.perf_counter()
    result = await call(STREAM, headers=fault("stall", after=2, delay=0.3))
    assert time.perf_counter() - started >= 0.3
    assert len(result.data()) == 2
    assert isinstance(result.error, BROKEN)


async def test_stalled_stream_hits_the_read_timeout(call: Caller) -> None:
    started = time.perf_counter()
    result = await call(STREAM, headers=fault("stall", after=2, delay=5), timeout=0.2)
    assert isinstance(result.error, httpx.ReadTimeout)
    assert len(result.data()) == 2
    assert time.perf_counter() - started < 1.5


async def test_trickle_paces_every_frame_and_every_byte(call: Caller) -> None:
    started = time.perf_counter()
    streamed = await call(STREAM, headers=fault("trickle", delay=0.02))
    frames = len(streamed.data())
    assert streamed.error is None and frames >= 4
    assert time.perf_counter() - started >= 0.02 * frames
    started = time.perf_counter()
    whole = await call(ask(), headers=fault("trickle", delay=0.001))
    assert whole.error is None and whole.json()["choices"][0]["message"]["content"]
    assert time.perf_counter() - started >= 0.001 * len(whole.body)


async def test_malformed_json_frame(call: Caller) -> None:
    result = await call(STREAM, headers=fault("malformed-json", after=1))
    data = result.data()
    with pytest.raises(json.JSONDecodeError):
        json.loads(data[1])
    assert data[-1] == "[DONE]"


async def test_malformed_json_body(call: Caller) -> None:
    result = await call(ask(), headers=fault("malformed-json"))
    assert result.status == 200 and result.error is None
    assert int(result.headers["content-length"]) == len(result.body)
    with pytest.raises(json.JSONDecodeError):
        result.json()


async def test_content_filter(call: Caller) -> None:
    body = (await call(ask("a b c d e f"), headers=fault("content-filter"))).json()
    assert body["choices"][0]["finish_reason"] == "content_filter"
    assert body["choices"][0]["message"]["content"] == "You said: a b"


async def test_content_filter_streamed(in_process: Caller) -> None:
    chunks = (await in_process(STREAM, headers=fault("content_filter"))).chunks()
    assert chunks[-2]["choices"][0]["finish_reason"] == "content_filter"


async def test_sse_without_space(in_process: Caller) -> None:
    result = await in_process(STREAM, headers=fault("sse-no-space"))
    assert result.body.startswith(b"data:{") and b"data: " not in result.body


async def test_bending_faults_pass_errors_through(in_process: Caller) -> None:
    result = await in_process(ask(temperature=9, stream=True), headers=fault("reset-mid-stream"))
    assert result.status == 400 and result.error is None


async def test_fault_by_model_name(call: Caller) -> None:
    result = await call({**ask(), "model": "fault/503"})
    assert result.status == 503


async def test_fault_by_model_name_with_parameters(in_process: Caller) -> None:
    body = {**STREAM, "model": "fault/reset-mid-stream?after=4"}
    result = await in_process(body)
    assert isinstance(result.error, BROKEN) and len(result.data()) == 4
    quiet = await in_process({**ask(), "model": "fault/429?retry_after=3"})
    assert quiet.headers["retry-after"] == "3"


async def test_fault_model_answers_normally_with_a_bending_fault(in_process: Caller) -> None:
    result = await in_process({**STREAM, "model": "fault/no-done"})
    assert result.status == 200 and result.chunks()[0]["model"] == "fault/no-done"


async def test_unknown_fault_is_400(in_process: Caller) -> None:
    result = await in_process(ask(), headers=fault("meteor"))
    assert result.status == 400 and result.json()["error"]["code"] == "invalid_fault"
    bad = await in_process(ask(), headers=fault("stall", after="soon"))
    assert bad.status == 400
    assert (await in_process({**ask(), "model": "fault/meteor"})).status == 400


async def test_scripted_faults_fail_twice_then_succeed(call: Caller) -> None:
    call.emulator.script_faults(["503", Fault("429", retry_after=2)])
    first, second, third = [await call(ask()) for _ in range(3)]
    assert (first.status, second.status, third.status) == (503, 429, 200)
    assert second.headers["retry-after"] == "2"


async def test_scripted_none_lets_a_request_through(in_process: Caller) -> None:
    in_process.emulator.script_faults([None, "500"])
    assert [(await in_process(ask())).status for _ in range(3)] == [200, 500, 200]


async def test_header_fault_does_not_consume_the_script(in_process: Caller) -> None:
    in_process.emulator.script_faults(["500"])
    assert (await in_process(ask(), headers=fault("503"))).status == 503
    assert (await in_process(ask())).status == 500


async def test_reset_forgets_scripted_faults(in_process: Caller) -> None:
    in_process.emulator.script_faults(["500"])
    in_process.emulator.reset()
    assert (await in_process(ask())).status == 200


def test_fault_rate_is_seeded_and_roughly_right() -> None:
    statuses = []
    for _ in range(2):
        emu = Emulator(fault_rate={"503": 0.3, "500": 0.1}, seed=7)
        with httpx.Client(transport=emu.transport(), base_url="http://emulator.local") as client:
            headers = {"Authorization": "Bearer k"}
            statuses.append(
                [
                    client.post(COMPATIBLE, json=ask(), headers=headers).status_code
                    for _ in range(400)
                ]
            )
    assert statuses[0] == statuses[1]
    assert 80 < statuses[0].count(503) < 160
    assert 20 < statuses[0].count(500) < 65


def test_bad_fault_settings_are_rejected() -> None:
    with pytest.raises(FaultError):
        Fault("meteor")
    with pytest.raises(FaultError):
        Fault("stall", delay=-1)
    with pytest.raises(ValueError, match="at most 1"):
        Emulator(fault_rate={"503": 0.8, "500": 0.5})
    with pytest.raises(FaultError):
        Emulator().script_faults(["meteor"])


def test_every_fault_name_is_tested() -> None:
    here = Path(__file__).parent
    sources = "".join(path.read_text(encoding="utf-8") for path in here.glob("test_emu_*.py"))
    assert [name for name in FAULT_NAMES if f'"{name}' not in sources] == []
