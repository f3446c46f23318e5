"""The core against the emulator over real HTTP on 127.0.0.1, sync and async from one body."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from opensearch_llm import (
    APIConnectionError,
    APITimeoutError,
    AsyncChatClient,
    AuthenticationError,
    ChatClient,
    ContentFilterError,
    InternalServerError,
    RateLimitError,
    ResponseDecodeError,
    StreamError,
)
from opensearch_llm.emulator import Emulator, EmulatorServer, serve
from tests.connections import busy_connections

pytestmark = pytest.mark.asyncio

KEY = "sk-emulator-test"
ASK = [{"role": "user", "content": "Recommend one science fiction book"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}


@pytest.fixture(scope="module")
def emulator() -> Emulator:
    return Emulator(api_key=KEY)


@pytest.fixture(scope="module")
def server(emulator: Emulator) -> Iterator[EmulatorServer]:
    with serve(emulator) as running:
        yield running


@dataclass
class Live:
    """One test body against ChatClient or AsyncChatClient on the running emulator."""

    mode: str
    server: EmulatorServer
    emulator: Emulator
    clients: list[Any] = field(default_factory=list)

    def client(self, gateway: bool = False, key: str = KEY, **options: Any) -> Any:
        base = self.server.gateway_base_url if gateway else self.server.compatible_base_url
        options.setdefault("max_retries", 2)
        cls = ChatClient if self.mode == "sync" else AsyncChatClient
        client = cls(key, base_url=base, **options)
        client._transport.config = _fast_backoff(client._transport.config)
        self.clients.append(client)
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose() if self.mode == "async" else client.close()

    async def create(self, client: Any, **params: Any) -> Any:
        params.setdefault("model", "qwen-plus")
        params.setdefault("messages", ASK)
        if self.mode == "sync":
            return client.create(**params)
        return await client.create(**params)

    async def stream(
        self,
        client: Any,
        received: list[Any] | None = None,
        stop_after: int | None = None,
        stop_when: Callable[[Any], bool] | None = None,
        **params: Any,
    ) -> Any:
        params.setdefault("model", "qwen-plus")
        params.setdefault("messages", ASK)
        sink = received if received is not None else []

        def enough(chunk: Any) -> bool:
            sink.append(chunk)
            return (stop_after is not None and len(sink) >= stop_after) or bool(
                stop_when and stop_when(chunk)
            )

        if self.mode == "sync":
            with client.stream(**params) as stream:
                for chunk in stream:
                    if enough(chunk):
                        break
            return stream
        async with client.stream(**params) as stream:
            async for chunk in stream:
                if enough(chunk):
                    break
        return stream

    def assert_no_busy_connection(self, client: Any) -> None:
        assert busy_connections(client) == []


def _fast_backoff(config: Any) -> Any:
    from dataclasses import replace

    return replace(config, backoff_initial=0.01, backoff_max=0.02)


@pytest.fixture(params=["sync", "async"])
async def live(
    request: pytest.FixtureRequest, server: EmulatorServer, emulator: Emulator
) -> AsyncIterator[Live]:
    emulator.reset()
    runner = Live(request.param, server, emulator)
    yield runner
    await runner.close()
    emulator.reset()


async def test_create_and_stream_agree(live: Live) -> None:
    client = live.client()
    created = await live.create(client, max_tokens=50)
    stream = await live.stream(client, max_tokens=50)
    streamed = stream.completion()
    for key in ("choices", "usage"):
        assert streamed[key] == created[key]
    assert created["choices"][0]["message"]["content"].startswith("You said: Recommend")
    assert created["request_id"] and streamed["request_id"]
    live.assert_no_busy_connection(client)


async def test_gateway_envelope_both_ways(live: Live) -> None:
    client = live.client(gateway=True)
    created = await live.create(client)
    streamed = (await live.stream(client)).completion()
    assert created["choices"][0]["message"] == streamed["choices"][0]["message"]
    assert streamed["usage"]["total_tokens"] == created["usage"]["total_tokens"]


async def test_parallel_tool_calls_merge_by_index(live: Live) -> None:
    client = live.client()
    messages = [{"role": "user", "content": "Use get_weather and get_time please"}]
    stream = await live.stream(client, messages=messages, tools=[WEATHER, TIME])
    calls = stream.completion()["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["function"]["arguments"])["city"]
    assert all(c["id"] for c in calls)
    created = await live.create(client, messages=messages, tools=[WEATHER, TIME])
    assert [c["function"]["name"] for c in created["choices"][0]["message"]["tool_calls"]] == [
        "get_weather",
        "get_time",
    ]


async def test_thinking_only_model_create_streams_internally(live: Live) -> None:
    client = live.client()
    result = await live.create(client, model="qwq-plus")
    message = result["choices"][0]["message"]
    assert message["reasoning_content"].startswith("Let me think")
    assert message["content"].startswith("You said:")
    assert live.emulator.requests[-1].json["stream"] is True


async def test_hybrid_model_non_streamed_sends_thinking_off(live: Live) -> None:
    result = await live.create(live.client(), model="qwen3-32b")
    assert "reasoning_content" not in result["choices"][0]["message"]
    assert live.emulator.requests[-1].json["enable_thinking"] is False


async def test_n_choices(live: Live) -> None:
    result = (await live.stream(live.client(), n=2)).completion()
    assert [c["index"] for c in result["choices"]] == [0, 1]


async def test_wrong_key_is_an_authentication_error_with_region_hint(live: Live) -> None:
    with pytest.raises(AuthenticationError) as info:
        await live.create(live.client(key="sk-wrong"))
    assert info.value.code == "invalid_api_key" and info.value.request_id
    assert "region" in str(info.value)
    assert live.emulator.request_count == 1


async def test_fail_twice_then_succeed(live: Live) -> None:
    live.emulator.script_faults(["503", "429", None])
    result = await live.create(live.client())
    assert result["choices"][0]["message"]["content"]
    assert live.emulator.request_count == 3


@pytest.mark.parametrize(
    ("fault", "cls"),
    [
        ("500", InternalServerError),
        ("502", InternalServerError),
        ("503", InternalServerError),
        ("504", InternalServerError),
        ("429", RateLimitError),
        ("html", InternalServerError),
        ("insufficient-quota", RateLimitError),
        ("data-inspection-failed", ContentFilterError),
        ("success-false", Exception),
        ("error-200", Exception),
        ("malformed-json", ResponseDecodeError),
        ("reset", APIConnectionError),
    ],
)
async def test_faults_non_streamed(live: Live, fault: str, cls: type[Exception]) -> None:
    client = live.client(gateway=fault == "success-false", max_retries=0)
    with pytest.raises(cls):
        await live.create(
            client, extra_headers={"X-Emulator-Fault": fault, "X-Emulator-Retry-After": "0"}
        )
    live.assert_no_busy_connection(client)


@pytest.mark.parametrize("fault", ["reset-mid-stream", "error-frame", "malformed-json"])
async def test_broken_streams_keep_the_partial_and_are_not_retried(live: Live, fault: str) -> None:
    client = live.client()
    received: list[Any] = []
    with pytest.raises(StreamError) as info:
        await live.stream(
            client,
            received=received,
            extra_headers={"X-Emulator-Fault": fault, "X-Emulator-Fault-After": "3"},
        )
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in received if c["choices"])
    assert received and info.value.partial["choices"][0]["message"]["content"] == text
    assert live.emulator.request_count == 1
    live.assert_no_busy_connection(client)


async def test_stream_without_done_is_complete(live: Live) -> None:
    stream = await live.stream(live.client(), extra_headers={"X-Emulator-Fault": "no-done"})
    assert stream.completion()["choices"][0]["finish_reason"] == "stop"


async def test_stalled_stream_hits_the_idle_timeout_fast(live: Live) -> None:
    client = live.client(stream_idle_timeout=0.3)
    start = time.monotonic()
    with pytest.raises(StreamError) as info:
        await live.stream(
            client, extra_headers={"X-Emulator-Fault": "stall", "X-Emulator-Delay": "5"}
        )
    assert time.monotonic() - start < 3
    assert isinstance(info.value.cause, APITimeoutError)
    live.assert_no_busy_connection(client)


async def test_slow_first_byte_times_out_then_retries(live: Live) -> None:
    client = live.client(stream_idle_timeout=0.3, max_retries=1)
    live.emulator.script_faults([_slow(), None])
    stream = await live.stream(client)
    assert stream.completion()["choices"][0]["message"]["content"]
    assert live.emulator.request_count == 2


def _slow() -> Any:
    from opensearch_llm.emulator import Fault

    return Fault("slow-first-byte", delay=2)


async def test_early_break_and_retries_leave_no_busy_connection(live: Live) -> None:
    client = live.client()
    received: list[Any] = []
    await live.stream(client, received=received, stop_after=2)
    assert len(received) == 2
    live.emulator.script_faults(["503", None])
    await live.create(client)
    live.assert_no_busy_connection(client)
    # the pool still works after all that
    assert (await live.create(client))["choices"]


# --------------------------------------------------------------------------- connection reuse


async def test_five_streams_then_five_calls_use_one_connection(live: Live) -> None:
    client = live.client()
    for _ in range(5):
        assert (await live.stream(client)).completion()["usage"]
    for _ in range(5):
        await live.create(client)
    assert live.emulator.connection_count == 1
    live.assert_no_busy_connection(client)


async def test_a_stream_left_once_the_answer_finished_keeps_its_connection(live: Live) -> None:
    # The caller stops at the chunk with finish_reason: usage and [DONE] are still to come.
    client = live.client()
    for _ in range(3):
        stream = await live.stream(
            client, stop_when=lambda c: bool(c["choices"] and c["choices"][0]["finish_reason"])
        )
        assert stream.completion()["choices"][0]["finish_reason"] == "stop"
    await live.create(client)
    assert live.emulator.connection_count == 1


async def test_a_stream_abandoned_half_way_closes_its_connection(live: Live) -> None:
    # Trickled, so that the rest of the stream is still on its way when the caller leaves.
    client = live.client()
    trickle = {"X-Emulator-Fault": "trickle", "X-Emulator-Delay": "0.05"}
    await live.stream(client, stop_after=2, extra_headers=trickle)
    await live.create(client)
    assert live.emulator.connection_count == 2
    live.assert_no_busy_connection(client)


async def test_thinking_model_streamed_for_create_honours_the_timeout(live: Live) -> None:
    # qwq-plus only streams: create() streams and aggregates; timeout bounds the whole.
    client = live.client(timeout=0.5, stream_idle_timeout=5, max_retries=0)
    start = time.monotonic()
    with pytest.raises((APITimeoutError, StreamError)) as info:
        await live.create(
            client,
            model="qwq-plus",
            extra_headers={"X-Emulator-Fault": "trickle", "X-Emulator-Delay": "0.05"},
        )
    assert time.monotonic() - start < 3
    assert "timeout=0.5s" in str(info.value)
    live.assert_no_busy_connection(client)


async def test_a_key_read_from_a_file_with_its_line_break_works(live: Live) -> None:
    # Sent as is, the newline made an invalid header: a connection error quoting the whole key.
    answer = await live.create(live.client(key=KEY + "\n"))
    assert answer["choices"][0]["message"]["content"].startswith("You said:")
