"""Regression tests for the faults of the integrations this adapter replaces ("the anchors").

1. The first chunk of an async stream was dropped (when it carried content or a tool call).
2. The second of two parallel tool calls sent in one chunk was lost.
3. Spaces were stripped from streamed tool-call arguments.
4. Service errors were returned as empty answers instead of raised.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from li_support import Calls, ScriptedService, chunk, fragment, text_chunks, usage_chunk, user
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.tools import FunctionTool

from opensearch_llm import APIStatusError, InternalServerError, OpenSearchLLMError

# The workflow engine inspects agents with inspect.getmembers, which touches pydantic's deprecated
# attributes: framework noise, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_the_first_chunk_is_never_dropped(calls: Calls, service: ScriptedService) -> None:
    service.script(text_chunks("First", " second"))
    responses = calls.stream_chat(service.llm(), user("Hi"))
    assert responses[0].delta == "First"
    assert responses[-1].message.content == "First second"


def test_a_first_chunk_carrying_a_tool_call_is_kept(calls: Calls, service: ScriptedService) -> None:
    service.script(
        [
            chunk(
                {"role": "assistant", "tool_calls": [fragment(0, "call_1", "f", '{"a": 1}')]},
                finish="tool_calls",
            ),
            usage_chunk(),
        ]
    )
    llm = service.llm()
    responses = calls.stream_chat(llm, user("Hi"))
    assert [s.tool_kwargs for s in llm.get_tool_calls_from_response(responses[0])] == [{"a": 1}]


def test_the_first_chunk_of_stream_complete_is_kept(calls: Calls, service: ScriptedService) -> None:
    service.script(text_chunks("Once", " upon"))
    assert calls.stream_complete(service.llm(), "Go")[0].delta == "Once"


def test_two_parallel_tool_calls_in_one_chunk_are_both_kept(
    calls: Calls, service: ScriptedService
) -> None:
    service.script(
        [
            chunk(
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        fragment(0, "call_a", "weather", '{"city": "Paris"}'),
                        fragment(1, "call_b", "clock", '{"timezone": "CET"}'),
                    ],
                }
            ),
            chunk({"content": ""}, finish="tool_calls"),
            usage_chunk(),
        ]
    )
    llm = service.llm()
    responses = calls.stream_chat(llm, user("Hi"))
    selections = llm.get_tool_calls_from_response(responses[-1])
    assert [(s.tool_id, s.tool_name, s.tool_kwargs) for s in selections] == [
        ("call_a", "weather", {"city": "Paris"}),
        ("call_b", "clock", {"timezone": "CET"}),
    ]


def test_parallel_calls_interleaved_across_chunks_merge_by_index(
    calls: Calls, service: ScriptedService
) -> None:
    service.script(
        [
            chunk(
                {
                    "tool_calls": [
                        fragment(0, "call_a", "weather", '{"ci'),
                        fragment(1, "call_b", "clock", '{"time'),
                    ]
                }
            ),
            chunk(
                {
                    "tool_calls": [
                        fragment(1, "", None, 'zone": "CET"}'),
                        fragment(0, "", None, 'ty": "Paris"}'),
                    ]
                },
                finish="tool_calls",
            ),
        ]
    )
    llm = service.llm()
    selections = llm.get_tool_calls_from_response(calls.stream_chat(llm, user("Hi"))[-1])
    assert [(s.tool_name, s.tool_kwargs) for s in selections] == [
        ("weather", {"city": "Paris"}),
        ("clock", {"timezone": "CET"}),
    ]


def test_spaces_in_streamed_arguments_are_kept(calls: Calls, service: ScriptedService) -> None:
    pieces = ['{"text": "', "hello ", " world ", '  ", "n": ', " 1 ", "}"]
    service.script(
        [chunk({"tool_calls": [fragment(0, "call_a", "echo", "")]})]
        + [chunk({"tool_calls": [fragment(0, "", None, p)]}) for p in pieces]
        + [chunk({}, finish="tool_calls")]
    )
    llm = service.llm()
    final = calls.stream_chat(llm, user("Hi"))[-1]
    [selection] = llm.get_tool_calls_from_response(final)
    assert selection.tool_kwargs == {"text": "hello  world   ", "n": 1}
    assert final.message.additional_kwargs["tool_calls"][0]["function"]["arguments"] == (
        "".join(pieces)
    )


ERROR_200 = {
    "error": {
        "message": "An internal error occurred",
        "type": "internal_error",
        "code": "internal_error",
    },
    "request_id": "req-x",
}


@pytest.mark.parametrize("operation", ["chat", "complete", "stream_chat", "stream_complete"])
def test_an_error_under_http_200_is_raised_not_an_empty_answer(
    calls: Calls, service: ScriptedService, operation: str
) -> None:
    service.script(httpx.Response(200, json=ERROR_200))
    llm = service.llm(max_retries=0)
    received: list[Any] = []
    argument: Any = user("Hi") if "chat" in operation else "Hi"
    with pytest.raises(APIStatusError) as info:
        if operation.startswith("stream"):
            calls.stream(llm, operation, argument, into=received)
        else:
            getattr(calls, operation)(llm, argument)
    assert info.value.code == "internal_error"
    assert info.value.request_id == "req-x"
    assert received == []


def test_an_error_frame_first_in_the_stream_is_raised(
    calls: Calls, service: ScriptedService
) -> None:
    service.script([ERROR_200])
    received: list[Any] = []
    with pytest.raises(InternalServerError):
        calls.stream_chat(service.llm(max_retries=0), user("Hi"), into=received)
    assert received == []


def test_an_agent_surfaces_the_error_instead_of_an_empty_answer(service: ScriptedService) -> None:
    service.script(httpx.Response(200, json=ERROR_200))

    def noop() -> str:
        """Does nothing."""
        return ""

    agent = FunctionAgent(tools=[FunctionTool.from_defaults(noop)], llm=service.llm(max_retries=0))

    async def run() -> Any:
        return await agent.run(user_msg="Hi")

    with pytest.raises(Exception) as info:
        asyncio.run(run())
    chain: list[BaseException] = []
    error: BaseException | None = info.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert any(isinstance(e, OpenSearchLLMError) for e in chain)
