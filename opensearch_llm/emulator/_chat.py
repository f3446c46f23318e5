"""Chat replies: plan what to answer, then render it as a ``chat.completion`` or SSE chunks.

The plan (reasoning, content, tool calls, finish reason, usage) is shared by both renderings, so a
streamed reply aggregates to exactly the non-streamed one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from opensearch_llm.emulator._prompt import asked_tools, fill, json_object
from opensearch_llm.emulator._response import dumps
from opensearch_llm.emulator._text import (
    choice_text,
    content_text,
    count_tokens,
    cut_at_stop,
    last_user_text,
    reasoning_text,
    reply_text,
    split_pieces,
    trailing_tool_results,
    truncate,
)
from opensearch_llm.emulator._validate import ChatRequest, forced_tool_name

DONE_FRAME = b"data: [DONE]\n\n"
_ARGUMENT_PIECES = 3


@dataclass(frozen=True)
class ToolCall:
    """One planned tool call."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Choice:
    """One planned choice."""

    index: int
    reasoning: str
    content: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str

    def tokens(self) -> int:
        """Completion tokens of this choice, reasoning included."""
        calls = sum(count_tokens(f"{call.name} {call.arguments}") for call in self.tool_calls)
        return count_tokens(self.reasoning) + count_tokens(self.content) + calls


@dataclass(frozen=True)
class Plan:
    """Everything a reply says, before it is rendered."""

    choices: tuple[Choice, ...]
    prompt_tokens: int
    thinking: bool

    def usage(self) -> dict[str, Any]:
        """The ``usage`` object: prompt + completion = total; reasoning tokens when thinking."""
        completion = sum(choice.tokens() for choice in self.choices)
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": 0},
        }
        if self.thinking:
            reasoning = sum(count_tokens(choice.reasoning) for choice in self.choices)
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
        return usage


def make_plan(request: ChatRequest, request_id: str, *, content_filter: bool = False) -> Plan:
    """Plan the reply to ``request`` (see the package docstring for the rules)."""
    names = tools_to_call(request)
    choices = tuple(
        _plan_choice(request, request_id, index, names, content_filter)
        for index in range(request.n)
    )
    prompt = sum(count_tokens(content_text(m.get("content"))) for m in request.messages)
    return Plan(choices, prompt, request.thinking)


def _plan_choice(
    request: ChatRequest, request_id: str, index: int, names: list[str], content_filter: bool
) -> Choice:
    reasoning = ""
    if request.thinking:
        reasoning = truncate(reasoning_text(request.messages), request.thinking_budget)[0]
    if names:
        calls = tuple(
            _tool_call(request, request_id, index, i, name) for i, name in enumerate(names)
        )
        return Choice(index, reasoning, "", calls, "tool_calls")
    content, finish = _finish(request, _answer(request, index), content_filter)
    return Choice(index, reasoning, content, (), finish)


def _finish(request: ChatRequest, text: str, content_filter: bool) -> tuple[str, str]:
    if content_filter:
        pieces = split_pieces(text)
        return "".join(pieces[: len(pieces) // 2]), "content_filter"
    text, _ = cut_at_stop(text, request.stop)
    text, cut = truncate(text, request.max_tokens)
    return text, "length" if cut else "stop"


def _answer(request: ChatRequest, index: int) -> str:
    text = choice_text(reply_text(request.messages), index)
    fmt = request.response_format or {}
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        return _json(fill(schema, last_user_text(request.messages)))
    if fmt.get("type") == "json_object":
        value = json_object(request.messages, last_user_text(request.messages))
        return _json({"reply": text} if value is None else value)
    return text


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def tools_to_call(request: ChatRequest) -> list[str]:
    """Names of the tools to call, in order (empty: answer in text)."""
    if not request.tools or request.tool_choice == "none":
        return []
    forced = forced_tool_name(request.tool_choice)
    if forced is not None:
        return [forced]
    required = request.tool_choice == "required"
    if trailing_tool_results(request.messages) and not required:
        return []
    names = asked_tools(last_user_text(request.messages), list(request.tools))
    if request.parallel_tool_calls is False:
        names = names[:1]
    return names or (list(request.tools)[:1] if required else [])


def _tool_call(
    request: ChatRequest, request_id: str, choice: int, index: int, name: str
) -> ToolCall:
    arguments = fill(request.tools[name].get("parameters"), last_user_text(request.messages), name)
    if not isinstance(arguments, dict):
        arguments = {}
    call_id = f"call_{request_id.rsplit('-', 1)[-1]}_{choice}_{index}"
    return ToolCall(call_id, name, json.dumps(arguments, ensure_ascii=False))


def completion_body(
    plan: Plan, request: ChatRequest, request_id: str, created: int
) -> dict[str, Any]:
    """The non-streamed ``chat.completion`` object."""
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": created,
        "model": request.model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": choice.index,
                "message": _message(choice),
                "finish_reason": choice.finish_reason,
                "logprobs": None,
            }
            for choice in plan.choices
        ],
        "usage": plan.usage(),
    }


def _message(choice: Choice) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": choice.content}
    if choice.reasoning:
        message["reasoning_content"] = choice.reasoning
    if choice.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in choice.tool_calls
        ]
    return message


class ChunkWriter:
    """Renders SSE frames of ``chat.completion.chunk`` objects from string templates.

    ``envelope`` wraps every chunk as the AI gateway does (docs/service-facts.md, "Answers").
    """

    def __init__(self, request: ChatRequest, request_id: str, created: int, envelope: bool) -> None:
        wrap = '{"success":true,"code":"200","message":"successful","data":' if envelope else ""
        self.open = (
            f'data: {wrap}{{"id":"chatcmpl-{request_id}","object":"chat.completion.chunk",'
            f'"created":{created},"model":{encode_basestring(request.model)},'
            '"system_fingerprint":null,"choices":['
        )
        self.close = ("}}" if envelope else "}") + "\n\n"

    def frames(self, plan: Plan, include_usage: bool) -> list[bytes]:
        """Every frame of the stream, ``data: [DONE]`` included."""
        frames: list[str] = []
        for choice in plan.choices:
            frames += self._choice_frames(choice)
        if include_usage:
            usage = dumps(plan.usage()).decode()
            frames.append(f'{self.open}],"usage":{usage}{self.close}')
        encoded = [frame.encode() for frame in frames]
        encoded.append(DONE_FRAME)
        return encoded

    def _choice_frames(self, choice: Choice) -> list[str]:
        frames = [self._delta(choice.index, '{"role":"assistant","content":""}')]
        frames += self._pieces(choice.index, "reasoning_content", choice.reasoning)
        frames += self._pieces(choice.index, "content", choice.content)
        for index, call in enumerate(choice.tool_calls):
            frames += self._tool_call(choice.index, index, call)
        finish = encode_basestring(choice.finish_reason)
        frames.append(self._delta(choice.index, '{"content":""}', finish))
        return frames

    def _delta(self, index: int, delta: str, finish: str = "null") -> str:
        return (
            f'{self.open}{{"index":{index},"delta":{delta},"finish_reason":{finish},'
            f'"logprobs":null}}],"usage":null{self.close}'
        )

    def _pieces(self, index: int, key: str, text: str) -> list[str]:
        prefix = f'{self.open}{{"index":{index},"delta":{{"{key}":'
        suffix = f'}},"finish_reason":null,"logprobs":null}}],"usage":null{self.close}'
        return [prefix + encode_basestring(piece) + suffix for piece in split_pieces(text)]

    def _tool_call(self, choice: int, index: int, call: ToolCall) -> list[str]:
        name = encode_basestring(call.name)
        first = (
            f'{{"tool_calls":[{{"index":{index},"id":{encode_basestring(call.id)},'
            f'"type":"function","function":{{"name":{name},"arguments":""}}}}]}}'
        )
        frames = [self._delta(choice, first)]
        for piece in _argument_pieces(call.arguments):
            later = (
                f'{{"tool_calls":[{{"index":{index},"id":"","type":"function",'
                f'"function":{{"arguments":{encode_basestring(piece)}}}}}]}}'
            )
            frames.append(self._delta(choice, later))
        return frames


def _argument_pieces(arguments: str) -> list[str]:
    size = max(1, math.ceil(len(arguments) / _ARGUMENT_PIECES))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]
