"""The knowledge clients against the emulator: in process, on a local socket, and a cassette."""

from __future__ import annotations

from pathlib import Path

import pytest
import vcr

from opensearch_llm import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ContentFilterError,
    InternalServerError,
    RateLimitError,
    StreamError,
)
from opensearch_llm.emulator import Emulator, Fault, serve
from opensearch_llm.knowledge import KnowledgeClient

from .support import APP, CLIENTS, KEY, EmulatorCaller, call_answer, entered, read_stream

CASSETTES = Path(__file__).parent / "cassettes"
SUMMARY = "Answer to: what is OpenSearch | Sources: OpenSearch | Havenask"


@pytest.fixture(params=["sync", "async"])
def emu(request: pytest.FixtureRequest) -> EmulatorCaller:
    """One test body against the emulator's sync and async in-process transports."""
    return EmulatorCaller(request.param)


async def test_answer(emu: EmulatorCaller) -> None:
    result = await emu.answer(
        question="what is OpenSearch", content=["OpenSearch", "Havenask"], model="qwen-turbo"
    )
    assert result.answer == SUMMARY and result.model == "qwen-turbo"
    assert result.request_id and result.latency is not None
    assert result.data == [{"answer": SUMMARY, "type": "text"}]
    sent = emu.emulator.requests[0]
    assert sent.path == f"/v3/openapi/apps/{APP}/actions/knowledge-llm"
    assert sent.json == {
        "question": "what is OpenSearch",
        "type": "text",
        "content": ["OpenSearch", "Havenask"],
        "model": "qwen-turbo",
    }


async def test_prompt_overrides(emu: EmulatorCaller) -> None:
    result = await emu.answer(question="ignored", content=["ignored"], prompt="Say hello")
    assert result.answer == "Answer to: Say hello"


@pytest.mark.parametrize("fault", [None, "knowledge-cumulative", "sse-no-space"])
async def test_stream(emu: EmulatorCaller, fault: str | None) -> None:
    received: list[str] = []
    headers = {"X-Emulator-Fault": fault} if fault else None
    stream = await emu.stream(
        received,
        question="what is OpenSearch",
        content=["OpenSearch", "Havenask"],
        extra_headers=headers,
    )
    assert "".join(received) == SUMMARY and len(received) == len(SUMMARY.split())
    assert stream.result().answer == SUMMARY and stream.request_id == stream.result().request_id


async def test_moderation_blocks_under_200(emu: EmulatorCaller) -> None:
    with pytest.raises(ContentFilterError) as caught:
        await emu.answer(question="tell me [restricted] things", csi_level="loose")
    assert caught.value.status == 200 and caught.value.code == "data_inspection_failed"
    with pytest.raises(ContentFilterError):
        await emu.stream(question="tell me [restricted] things", csi_level="loose")


async def test_errors_array_under_200(emu: EmulatorCaller) -> None:
    with pytest.raises(InternalServerError) as caught:
        await emu.answer(
            question="q",
            extra_headers={"X-Emulator-Fault": "knowledge-errors"},
            client_options={"max_retries": 0},
        )
    assert caught.value.status == 200 and caught.value.message


async def test_wrong_key_is_an_authentication_error(emu: EmulatorCaller) -> None:
    emu.emulator = Emulator(api_key="sk-right")
    with pytest.raises(AuthenticationError):
        await emu.answer(question="q")


async def test_throttling_is_retried(emu: EmulatorCaller) -> None:
    emu.emulator.script_faults([Fault("429", retry_after=0), "503", None])
    result = await emu.answer(question="q", client_options={"max_retries": 2})
    assert result.answer == "Answer to: q" and emu.emulator.request_count == 3


async def test_throttling_gives_up(emu: EmulatorCaller) -> None:
    emu.emulator.script_faults([Fault("429", retry_after=0)] * 2)
    with pytest.raises(RateLimitError):
        await emu.answer(question="q", client_options={"max_retries": 1})


@pytest.mark.parametrize("fault", ["error-frame", "reset-mid-stream", "malformed-json"])
async def test_stream_breaks_keep_the_partial_answer(emu: EmulatorCaller, fault: str) -> None:
    received: list[str] = []
    with pytest.raises(StreamError) as caught:
        await emu.stream(
            received,
            question="what is OpenSearch",
            content=["OpenSearch"],
            extra_headers={"X-Emulator-Fault": fault, "X-Emulator-Fault-After": "3"},
        )
    assert received == ["Answer", " to:", " what"]
    assert caught.value.partial.answer == "Answer to: what"
    assert emu.emulator.request_count == 1  # never retried after the first byte


async def test_stream_stall_times_out(emu: EmulatorCaller) -> None:
    received: list[str] = []
    with pytest.raises(StreamError) as caught:
        await emu.stream(
            received,
            question="q",
            content=["a b c"],
            extra_headers={
                "X-Emulator-Fault": "stall",
                "X-Emulator-Fault-After": "2",
                "X-Emulator-Delay": "5",
            },
            client_options={"stream_idle_timeout": 0.2},
        )
    assert received == ["Answer", " to:"]
    assert isinstance(caught.value.cause, APIConnectionError)


@pytest.mark.usefixtures("local_sockets")
async def test_slow_answer_times_out(emu: EmulatorCaller) -> None:
    with pytest.raises(APITimeoutError):
        await emu.answer(
            question="q",
            extra_headers={"X-Emulator-Fault": "slow-first-byte", "X-Emulator-Delay": "2"},
            client_options={"timeout": 0.1, "max_retries": 0},
        )


@pytest.mark.usefixtures("local_sockets")
async def test_served_on_a_local_socket(mode: str) -> None:
    with serve(Emulator(api_key=KEY)) as server:
        async with entered(CLIENTS[mode](KEY, host=server.origin, app=APP), mode) as client:
            result = await call_answer(client, mode, question="q", content=["a"])
            assert result.answer == "Answer to: q | Sources: a"
            pieces: list[str] = []
            await read_stream(client, mode, pieces, question="q", content=["a b"])
            assert "".join(pieces) == "Answer to: q | Sources: a b"
            pieces = []
            await read_stream(client, mode, pieces, prompt="hello there")
            assert pieces == ["Answer", " to:", " hello", " there"]


def test_documented_exchange_cassette() -> None:
    recorder = vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode="none",
        match_on=["method", "uri", "body"],
        filter_headers=["authorization"],
    )
    with recorder.use_cassette("knowledge_llm_documented.yaml") as cassette:
        with KnowledgeClient(KEY, host="http://opensearch.example.com", app="my_app") as client:
            result = client.answer(
                "The question that is asked by the user.",
                ["Candidate content 1", "Candidate content 2"],
                model="Qwen",
                csi_level="none",
                extra_body={"options": {"stream": False}},
            )
        assert cassette.all_played
    assert result.answer == "answer text" and result.request_id == "abc123-ABC"
    assert result.latency == 10.0 and result.data == [{"answer": "answer text", "type": "text"}]
