"""OpenSearchLLM against hand-made wire dicts: metadata, configuration, calls, usage, errors,
secrets, pickling and instrumentation. Each call behaviour runs sync and async (``calls``)."""

from __future__ import annotations

import asyncio
import copy
import json
import pickle
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from li_support import (
    API_KEY,
    BASE_URL,
    AsyncCalls,
    Broken,
    Calls,
    ScriptedService,
    chunk,
    completion,
    event_stream,
    sse_frames,
    text_chunks,
    usage_chunk,
    user,
)
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, ThinkingBlock
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.llms.function_calling import FunctionCallingLLM

from llama_index_opensearch_llm import OpenSearchLLM
from opensearch_llm import (
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    ContextWindowExceededError,
    MissingAPIKeyError,
    OpenSearchLLMError,
    RateLimitError,
    RequestValidationError,
    StreamError,
)
from tests.unit.pools import Pools, count_pools

# --------------------------------------------------------------------------- metadata


def test_is_a_function_calling_llm_with_every_abstract_member_implemented() -> None:
    assert issubclass(OpenSearchLLM, FunctionCallingLLM)
    assert not getattr(OpenSearchLLM, "__abstractmethods__", set())
    for name in (
        "chat",
        "complete",
        "stream_chat",
        "stream_complete",
        "achat",
        "acomplete",
        "astream_chat",
        "astream_complete",
        "_prepare_chat_with_tools",
    ):
        assert name in vars(OpenSearchLLM), name


@pytest.mark.parametrize(
    ("model", "context_window", "num_output", "tools"),
    [
        ("qwen-plus", 131_072, 16_384, True),
        ("qwen3-max", 262_144, 65_536, True),
        ("qwen-max-2025-01-25", 32_768, 8_192, True),
        ("qwen-math-plus", 4_096, 3_072, False),
        ("my-private-finetune", 32_768, 8_192, True),
    ],
)
def test_metadata_comes_from_the_model_profile(
    model: str, context_window: int, num_output: int, tools: bool
) -> None:
    metadata = OpenSearchLLM(model=model).metadata
    assert metadata.context_window == context_window
    assert metadata.num_output == num_output
    assert metadata.is_chat_model is True
    assert metadata.is_function_calling_model is tools
    assert metadata.model_name == model


def test_every_metadata_value_can_be_overridden() -> None:
    llm = OpenSearchLLM(
        model="qwen-math-plus", context_window=1000, max_tokens=100, is_function_calling_model=True
    )
    assert (llm.metadata.context_window, llm.metadata.num_output) == (1000, 100)
    assert llm.metadata.is_function_calling_model is True
    assert OpenSearchLLM(max_tokens=100, num_output=50).metadata.num_output == 50
    assert (
        OpenSearchLLM(is_function_calling_model=False).metadata.is_function_calling_model is False
    )


# --------------------------------------------------------------------------- configuration


def test_only_what_the_caller_set_is_sent(calls: Calls, service: ScriptedService) -> None:
    llm = service.llm()
    service.script(completion(), text_chunks("Hi"))
    calls.chat(llm, user("Hi"))
    assert service.last == {"model": "qwen-plus", "messages": [{"role": "user", "content": "Hi"}]}
    calls.stream_chat(llm, user("Hi"))
    assert service.last == {
        "model": "qwen-plus",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_fields_extras_additional_kwargs_and_call_kwargs_are_sent(
    calls: Calls, service: ScriptedService
) -> None:
    llm = service.llm(
        model="qwen-turbo",
        temperature=0.3,
        max_tokens=64,
        top_p=0.9,
        seed=7,
        stop=["END"],
        presence_penalty=0.1,
        frequency_penalty=0.2,
        enable_thinking=False,
        thinking_budget=50,
        enable_search=True,
        top_k=20,
        repetition_penalty=1.05,
        additional_kwargs={"user": "u-1", "search_options": {"forced_search": True}},
    )
    service.script(completion())
    calls.chat(llm, user("Hi"), temperature=0.5, response_format={"type": "json_object"})
    sent = service.last
    assert sent.pop("messages") == [{"role": "user", "content": "Hi"}]
    assert sent == {
        "model": "qwen-turbo",
        "temperature": 0.5,
        "max_tokens": 64,
        "top_p": 0.9,
        "seed": 7,
        "stop": ["END"],
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "enable_thinking": False,
        "thinking_budget": 50,
        "enable_search": True,
        "top_k": 20,
        "repetition_penalty": 1.05,
        "user": "u-1",
        "search_options": {"forced_search": True},
        "response_format": {"type": "json_object"},
    }


def test_streamed_usage_can_be_switched_off(calls: Calls, service: ScriptedService) -> None:
    llm = service.llm(additional_kwargs={"stream_options": {"include_usage": False}})
    service.script(text_chunks("Hi")[:-1])
    calls.stream_chat(llm, user("Hi"))
    assert service.last["stream_options"] == {"include_usage": False}


def test_the_key_is_read_from_the_environment_in_order(
    calls: Calls, service: ScriptedService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-dashscope")
    service.script(completion(), completion())
    calls.chat(service.llm(api_key=None), user("Hi"))
    assert service.headers[-1]["authorization"] == "Bearer sk-dashscope"
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", "sk-opensearch")
    calls.chat(service.llm(api_key=None), user("Hi"))
    assert service.headers[-1]["authorization"] == "Bearer sk-opensearch"


def test_a_missing_key_says_what_to_set(calls: Calls, service: ScriptedService) -> None:
    with pytest.raises(MissingAPIKeyError, match="OPENSEARCH_LLM_API_KEY"):
        calls.chat(service.llm(api_key=None), user("Hi"))
    assert service.requests == []


def test_default_headers_are_sent(calls: Calls, service: ScriptedService) -> None:
    service.script(completion())
    calls.chat(service.llm(default_headers={"X-Team": "search"}), user("Hi"))
    assert service.headers[-1]["x-team"] == "search"


@pytest.mark.parametrize(
    "fields",
    [
        {"base_url": BASE_URL, "region": "singapore"},
        {"region": "mars"},
        {"base_url": "dashscope-intl.aliyuncs.com"},
    ],
)
def test_a_bad_endpoint_fails_at_construction(fields: dict[str, Any]) -> None:
    with pytest.raises(RequestValidationError):
        OpenSearchLLM(**fields)


def test_a_bad_base_url_in_the_environment_fails_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENSEARCH_LLM_BASE_URL", "dashscope-intl.aliyuncs.com")
    with pytest.raises(RequestValidationError) as caught:
        OpenSearchLLM(api_key="k")
    assert caught.value.field == "base_url"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"temperature": 5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"additional_kwargs": {"n": 9}}, "n"),
        ({"additional_kwargs": {"extra_body": "not a dict"}}, "extra_body"),
    ],
)
def test_bad_parameters_fail_at_construction(fields: dict[str, Any], field: str) -> None:
    """As on the LangChain side: not at the first call, after a prompt was built."""
    with pytest.raises(RequestValidationError) as caught:
        OpenSearchLLM(api_key="k", **fields)
    assert caught.value.field == field


def test_a_missing_key_does_not_stop_construction_or_serialization() -> None:
    llm = OpenSearchLLM(model="qwen-max")
    assert json.loads(llm.to_json())["model"] == "qwen-max"


def test_region_timeouts_and_retries_reach_the_core_client(
    calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[httpx.Request] = []

    def unavailable(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503, json={"error": {"code": "ServiceUnavailable", "message": "x"}})

    transport = httpx.MockTransport(unavailable)
    count_pools(monkeypatch, transport, transport)
    llm = OpenSearchLLM(
        api_key="k",
        region="virginia",
        timeout=30,
        connect_timeout=3,
        stream_idle_timeout=9,
        max_retries=0,
    )
    with pytest.raises(OpenSearchLLMError):
        calls.chat(llm, user("Hi"))
    with pytest.raises(OpenSearchLLMError):
        calls.stream_chat(llm, user("Hi"))
    assert len(seen) == 2  # no retry
    assert (
        str(seen[0].url) == "https://dashscope-us.aliyuncs.com/compatible-mode/v1/chat/completions"
    )
    assert seen[0].extensions["timeout"] == {"connect": 3, "read": 30, "write": 30, "pool": 3}
    assert seen[1].extensions["timeout"]["read"] == 9


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch, service: ScriptedService) -> Pools:
    """Every pool an OpenSearchLLM makes (no httpx client injected) talks to ``service``."""
    transport = httpx.MockTransport(service.handle)
    return count_pools(monkeypatch, transport, transport)


def _own_pools(**fields: Any) -> OpenSearchLLM:
    return OpenSearchLLM(api_key=API_KEY, base_url=BASE_URL, **fields)


def test_one_pool_per_instance_made_lazily_reused_and_closed(
    calls: Calls, service: ScriptedService, pools: Pools
) -> None:
    llm = _own_pools()
    assert pools.opened == (0, 0)
    service.script(completion(), text_chunks("b"), completion())
    calls.chat(llm, user("a"))
    calls.stream_chat(llm, user("b"))
    opened = (1, 0) if calls.mode == "sync" else (0, 1)
    if calls.mode == "sync":
        calls.chat(llm, user("c"))
        llm.close()
    else:

        async def last_call_then_close() -> None:
            await llm.achat(user("c"))
            await llm.aclose()

        asyncio.run(last_call_then_close())
    # Async: one pool per asyncio.run (each brings its own loop); the last one was closed.
    assert pools.opened == (opened if calls.mode == "sync" else (0, 3))
    assert pools.closed == opened


def test_threads_with_their_own_event_loops_keep_their_own_pools(
    service: ScriptedService, pools: Pools
) -> None:
    """Two live loops calling in turn: neither replaces (and drops) the other's pool."""
    llm = _own_pools()
    service.script(*[completion() for _ in range(6)])
    barrier = threading.Barrier(2, timeout=30)

    async def calls() -> None:
        for _ in range(3):
            await llm.achat(user("Hi"))
            barrier.wait()
        await llm.aclose()

    threads = [threading.Thread(target=asyncio.run, args=(calls(),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(service.requests) == 6
    assert pools.opened == (0, 2)
    assert pools.closed == (0, 2)


def test_an_injected_async_client_is_used_from_every_loop(service: ScriptedService) -> None:
    llm = service.llm()
    service.script(completion("one"), completion("two"))
    assert AsyncCalls().chat(llm, user("Hi")).message.content == "one"
    assert AsyncCalls().chat(llm, user("Hi")).message.content == "two"
    assert llm.async_http_client is not None and not llm.async_http_client.is_closed


# --------------------------------------------------------------------------- calls


def test_chat_and_complete(calls: Calls, service: ScriptedService) -> None:
    llm = service.llm()
    service.script(completion("Hello!"), completion("Done."))
    response = calls.chat(llm, user("Hi"))
    assert response.message.role == "assistant"
    assert response.message.content == "Hello!"
    assert response.additional_kwargs["finish_reason"] == "stop"
    assert response.additional_kwargs["request_id"] == "req-1"
    assert response.additional_kwargs["model"] == "qwen-plus"
    done = calls.complete(llm, "Finish this")
    assert done.text == "Done."
    assert done.raw["usage"] == {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    assert service.last["messages"] == [{"role": "user", "content": "Finish this"}]


def test_stream_chat_yields_every_piece_then_usage(calls: Calls, service: ScriptedService) -> None:
    llm = service.llm()
    service.script(text_chunks("Hello", " there", "!"))
    responses = calls.stream_chat(llm, user("Hi"))
    assert "".join(r.delta or "" for r in responses) == "Hello there!"
    assert responses[0].delta == "Hello"
    final = responses[-1]
    assert final.message.content == "Hello there!"
    assert final.raw["usage"]["total_tokens"] == 12
    assert final.additional_kwargs["total_tokens"] == 12
    assert final.additional_kwargs["finish_reason"] == "stop"
    assert final.additional_kwargs["request_id"] == "req-1"


def test_stream_complete(calls: Calls, service: ScriptedService) -> None:
    service.script(
        [
            chunk({"role": "assistant", "reasoning_content": "Hmm."}),
            chunk({"content": "A"}),
            chunk({"content": "B"}, finish="stop"),
            usage_chunk(),
        ]
    )
    responses = calls.stream_complete(service.llm(), "Go")
    assert [r.delta for r in responses] == ["", "A", "B", ""]
    assert [r.text for r in responses] == ["", "A", "AB", "AB"]
    assert responses[0].additional_kwargs["thinking_delta"] == "Hmm."
    assert responses[-1].additional_kwargs["total_tokens"] == 12
    assert responses[-1].additional_kwargs["reasoning_content"] == "Hmm."


def test_reasoning_is_a_thinking_block_and_is_never_sent_back(
    calls: Calls, service: ScriptedService
) -> None:
    llm = service.llm(model="qwen-plus", enable_thinking=True)
    service.script(
        [
            chunk({"role": "assistant", "reasoning_content": "Let me "}),
            chunk({"reasoning_content": "think."}),
            chunk({"content": "42"}, finish="stop"),
            usage_chunk(
                completion_tokens_details={"reasoning_tokens": 2},
                prompt_tokens_details={"cached_tokens": 1},
            ),
        ],
        completion("ok"),
    )
    responses = calls.stream_chat(llm, user("Q"))
    assert [r.additional_kwargs.get("thinking_delta") for r in responses[:2]] == [
        "Let me ",
        "think.",
    ]
    message = responses[-1].message
    assert isinstance(message.blocks[0], ThinkingBlock)
    assert message.blocks[0].content == "Let me think."
    assert message.content == "42"
    assert responses[-1].additional_kwargs["reasoning_tokens"] == 2
    assert responses[-1].additional_kwargs["cached_tokens"] == 1
    calls.chat(llm, [*user("Q"), message, *user("And?")])
    assert service.last["messages"][1] == {"role": "assistant", "content": "42"}
    assert "Let me" not in json.dumps(service.last)


async def test_sync_methods_work_inside_a_running_event_loop(service: ScriptedService) -> None:
    # As in Jupyter: a sync call must not start an event loop of its own.
    service.script(completion("sync in a loop"), text_chunks("streamed"))
    llm = service.llm()
    assert llm.chat(user("Hi")).message.content == "sync in a loop"
    assert next(iter(llm.stream_chat(user("Hi")))).delta == "streamed"


def test_async_methods_never_use_the_sync_client(service: ScriptedService, pools: Pools) -> None:
    llm = _own_pools()
    calls = AsyncCalls()
    service.script(completion(), completion(), text_chunks("a"), text_chunks("b"))
    calls.chat(llm, user("Hi"))
    calls.complete(llm, "Hi")
    calls.stream_chat(llm, user("Hi"))
    calls.stream_complete(llm, "Hi")
    assert pools.opened == (0, 4)  # one per asyncio.run, none sync


def test_breaking_out_of_a_stream_closes_the_response(service: ScriptedService) -> None:
    service.script(text_chunks("a", "b", "c"))
    stream = service.llm().stream_chat(user("Hi"))
    assert next(stream).delta == "a"
    stream.close()
    assert service.streams[-1].closed


async def test_breaking_out_of_an_async_stream_closes_the_response(
    service: ScriptedService,
) -> None:
    service.script(text_chunks("a", "b", "c"))
    stream = await service.llm().astream_chat(user("Hi"))
    async for response in stream:
        assert response.delta == "a"
        break
    await stream.aclose()
    for _ in range(5):  # the inner generator is finalised by the event loop
        await asyncio.sleep(0)
    assert service.streams[-1].closed


# --------------------------------------------------------------------------- errors


def _error(status: int, code: str, message: str = "nope") -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "error": {"message": message, "type": "x", "param": None, "code": code},
            "request_id": "req-err",
        },
    )


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (lambda: _error(401, "invalid_api_key"), AuthenticationError),
        (lambda: _error(400, "InvalidParameter"), BadRequestError),
        (
            lambda: _error(
                400, "context_length_exceeded", "Range of input length should be [1, 6000]"
            ),
            ContextWindowExceededError,
        ),
        (
            lambda: httpx.Response(
                200, json={"code": "Throttling", "message": "slow down", "request_id": "r"}
            ),
            RateLimitError,
        ),
    ],
)
@pytest.mark.parametrize("operation", ["chat", "complete", "stream_chat", "stream_complete"])
def test_service_errors_raise_typed_errors_not_empty_answers(
    calls: Calls,
    service: ScriptedService,
    operation: str,
    reply: Callable[[], httpx.Response],
    error: type[Exception],
) -> None:
    service.script(reply())
    llm = service.llm(max_retries=0)
    received: list[Any] = []
    with pytest.raises(error):
        if operation.startswith("stream"):
            calls.stream(
                llm, operation, user("Hi") if operation == "stream_chat" else "Hi", into=received
            )
        else:
            getattr(calls, operation)(llm, user("Hi") if operation == "chat" else "Hi")
    assert received == []


def test_retryable_errors_are_retried_by_the_core(calls: Calls, service: ScriptedService) -> None:
    service.script(_error(429, "Throttling.RateQuota"), completion("after retry"))
    llm = service.llm(max_retries=1)
    assert calls.chat(llm, user("Hi")).message.content == "after retry"
    service.script(_error(429, "Throttling.RateQuota"))
    with pytest.raises(RateLimitError):
        calls.chat(service.llm(max_retries=0), user("Hi"))


def test_a_broken_stream_raises_after_yielding_what_arrived(
    calls: Calls, service: ScriptedService
) -> None:
    service.script(
        Broken([chunk({"role": "assistant", "content": "Part"}), chunk({"content": "ial"})])
    )
    received: list[Any] = []
    with pytest.raises(StreamError) as info:
        calls.stream_chat(service.llm(max_retries=0), user("Hi"), into=received)
    assert [r.delta for r in received] == ["Part", "ial"]
    assert info.value.partial["choices"][0]["message"]["content"] == "Partial"


def test_an_error_frame_mid_stream_raises_after_yielding_what_arrived(
    calls: Calls, service: ScriptedService
) -> None:
    error = {
        "error": {
            "message": "Output data may contain inappropriate content.",
            "code": "data_inspection_failed",
            "type": "x",
        }
    }
    service.script([chunk({"role": "assistant", "content": "Once"}), error])
    received: list[Any] = []
    with pytest.raises(StreamError) as info:
        calls.stream_complete(service.llm(max_retries=0), "Tell a story", into=received)
    assert [r.text for r in received] == ["Once"]
    assert isinstance(info.value.cause, ContentFilterError)
    assert info.value.code == "data_inspection_failed"
    assert info.value.partial["choices"][0]["message"]["content"] == "Once"


def test_chunks_read_together_with_an_error_frame_are_yielded_first(
    calls: Calls, service: ScriptedService
) -> None:
    error = {"error": {"message": "inappropriate", "code": "data_inspection_failed"}}
    body = b"".join(sse_frames([chunk({"role": "assistant", "content": "Once"}), error]))
    service.script(event_stream([body]))
    received: list[Any] = []
    with pytest.raises(OpenSearchLLMError):
        calls.stream_complete(service.llm(max_retries=0), "Tell a story", into=received)
    assert [r.text for r in received] == ["Once"]


def test_a_stream_cut_before_the_model_finished_is_an_error(
    calls: Calls, service: ScriptedService
) -> None:
    service.script(
        httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            content=b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n',
        )
    )
    received: list[Any] = []
    with pytest.raises(StreamError):
        calls.stream_chat(service.llm(max_retries=0), user("Hi"), into=received)
    assert [r.delta for r in received] == ["x"]


def test_conversion_errors_raise_before_anything_is_sent(
    calls: Calls, service: ScriptedService
) -> None:
    with pytest.raises(RequestValidationError):
        calls.stream_chat(service.llm(), [ChatMessage(role="user", content="")])
    assert service.requests == []


# --------------------------------------------------------------------------- secrets, pickling


# --------------------------------------------------------------------------- regressions


def test_a_later_system_message_is_merged_not_rejected(
    calls: Calls, service: ScriptedService
) -> None:
    service.script(completion())
    history = [
        ChatMessage(role="system", content="Be brief."),
        *user("Hi"),
        ChatMessage(role="assistant", content="Hello"),
        ChatMessage(role="system", content="Answer in French."),
        *user("And?"),
    ]
    calls.chat(service.llm(), history)
    assert [m["role"] for m in service.last["messages"]] == ["system", "user", "assistant", "user"]
    assert service.last["messages"][0]["content"] == "Be brief.\n\nAnswer in French."


def _choice(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    wire = chunk(delta, finish=finish)
    wire["choices"][0]["index"] = index
    return wire


def test_streaming_several_choices_shows_choice_zero_only(
    calls: Calls, service: ScriptedService
) -> None:
    service.script(
        [
            _choice(0, {"role": "assistant", "content": "Zero"}),
            _choice(1, {"role": "assistant", "content": "One"}),
            _choice(0, {"content": "."}, finish="stop"),
            _choice(1, {"content": "!"}, finish="stop"),
            usage_chunk(),
        ]
    )
    responses = calls.stream_chat(service.llm(), user("Hi"), n=2)
    assert service.last["n"] == 2
    assert "".join(r.delta or "" for r in responses) == "Zero."
    assert responses[-1].message.content == "Zero."


def test_finished_tool_call_arguments_are_never_repaired(service: ScriptedService) -> None:
    llm = service.llm()
    call = {"id": "call_7", "type": "function", "function": {"name": "f", "arguments": '{"a":1}}'}}
    service.script(completion(None, tool_calls=[call], finish_reason="tool_calls"))
    response = llm.chat(user("Hi"))
    with pytest.raises(ValueError, match="call_7") as caught:
        llm.get_tool_calls_from_response(response)
    assert "'f'" in str(caught.value) and '{"a":1}}' in str(caught.value)
    # While it still streams (no finish reason yet), the arguments so far are read leniently.
    partial = {**call, "function": {"name": "f", "arguments": '{"a": 1, "b": tru'}}
    service.script(completion(None, tool_calls=[partial], finish_reason="tool_calls"))
    message = llm.chat(user("Hi")).message
    streaming = ChatResponse(message=message, delta="", additional_kwargs={"finish_reason": None})
    assert llm.get_tool_calls_from_response(streaming)[0].tool_kwargs == {"a": 1}
    with pytest.raises(ValueError, match="call_7"):
        llm.get_tool_calls_from_response(ChatResponse(message=message))


def test_the_api_key_is_never_in_repr_dumps_or_payloads() -> None:
    llm = OpenSearchLLM(api_key=API_KEY, default_headers={"Authorization": "Bearer " + API_KEY})
    texts = [
        repr(llm),
        str(llm),
        json.dumps(llm.to_dict(), default=str),
        llm.to_json(),
        json.dumps(llm.model_dump(), default=str),
        llm.model_dump_json(),
        json.dumps(llm.to_payload(), default=str),
    ]
    for text in texts:
        assert API_KEY not in text
    assert llm.api_key is not None and llm.api_key.get_secret_value() == API_KEY


class _Recorder(BaseEventHandler):
    events: list[BaseEvent] = []

    @classmethod
    def class_name(cls) -> str:
        return "Recorder"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    handler = _Recorder(events=[])
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(handler)
    yield handler
    dispatcher.event_handlers.remove(handler)


def test_instrumentation_sees_every_call_and_never_the_key(
    calls: Calls, service: ScriptedService, recorder: _Recorder
) -> None:
    llm = service.llm()
    service.script(completion(), completion(), text_chunks("a"), text_chunks("b"))
    calls.chat(llm, user("Hi"))
    calls.complete(llm, "Hi")
    calls.stream_chat(llm, user("Hi"))
    calls.stream_complete(llm, "Hi")
    names = [type(e).__name__ for e in recorder.events]
    assert names.count("LLMChatStartEvent") == 2
    assert names.count("LLMChatEndEvent") == 2
    assert names.count("LLMCompletionStartEvent") == 2
    assert names.count("LLMCompletionEndEvent") == 2
    assert names.count("LLMChatInProgressEvent") == len(text_chunks("a"))
    for event in recorder.events:
        assert API_KEY not in event.model_dump_json()


def test_token_counting_handler_sees_usage_of_every_call(
    calls: Calls, service: ScriptedService
) -> None:
    counter = TokenCountingHandler(tokenizer=lambda text: text.split())
    llm = service.llm(callback_manager=CallbackManager([counter]))
    service.script(completion(), completion(), text_chunks("a", "b"), text_chunks("c"))
    calls.chat(llm, user("Hi"))
    calls.complete(llm, "Hi")
    calls.stream_chat(llm, user("Hi"))
    calls.stream_complete(llm, "Hi")
    assert len(counter.llm_token_counts) == 4
    assert [e.prompt_token_count for e in counter.llm_token_counts] == [5, 5, 5, 5]
    assert [e.completion_token_count for e in counter.llm_token_counts] == [7, 7, 7, 7]
    assert counter.total_llm_token_count == 48


def test_the_llm_pickles_without_a_live_client(service: ScriptedService, pools: Pools) -> None:
    llm = _own_pools(model="qwen-turbo", temperature=0.2)
    service.script(completion(), completion("from the clone"), completion())
    llm.chat(user("Hi"))
    clone = pickle.loads(pickle.dumps(llm))
    assert (clone.model, clone.temperature, clone.base_url) == ("qwen-turbo", 0.2, BASE_URL)
    assert clone.api_key is not None and clone.api_key.get_secret_value() == API_KEY
    assert clone.chat(user("Hi")).message.content == "from the clone"
    llm.chat(user("Hi"))
    assert pools.opened == (2, 0)  # the clone made its own pool; the original kept its
    injected = service.llm()
    assert pickle.loads(pickle.dumps(injected)).http_client is None


def test_unpicklable_settings_are_left_out_not_fatal(service: ScriptedService) -> None:
    from llama_index.core.rate_limiter import TokenBucketRateLimiter

    llm = service.llm(
        rate_limiter=TokenBucketRateLimiter(requests_per_minute=60),
        completion_to_prompt=lambda prompt: prompt.upper(),
    )
    clone = pickle.loads(pickle.dumps(llm))
    assert clone.rate_limiter is None
    assert clone.model == llm.model


def test_a_deep_copy_shares_injected_clients_but_not_the_core_client(
    service: ScriptedService, pools: Pools
) -> None:
    llm = _own_pools()
    service.script(completion(), completion("copy"), completion())
    llm.chat(user("Hi"))
    clone = copy.deepcopy(llm)
    assert clone.chat(user("Hi")).message.content == "copy"
    clone.close()
    llm.chat(user("Hi"))
    assert pools.opened == (2, 0) and pools.closed == (1, 0)
    injected = service.llm()
    assert copy.deepcopy(injected).http_client is injected.http_client
