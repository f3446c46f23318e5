"""Typed names for the dicts that cross the public API."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

#: A ``chat.completion`` dict (OpenAI shape, gateway envelope removed) plus ``request_id``.
ChatCompletion = dict[str, Any]
#: A ``chat.completion.chunk`` dict with normalised tool-call fragments.
ChatCompletionChunk = dict[str, Any]
#: A wire message: ``{"role", "content", "name"?, "tool_calls"?, "tool_call_id"?}``.
Message = dict[str, Any]

ToolChoice = Literal["auto", "none", "required"] | dict[str, Any]


class ChatParams(TypedDict, total=False):
    """Every documented chat parameter; what is left out (or None) is not sent."""

    max_tokens: int | None
    max_completion_tokens: int | None
    temperature: float | None
    top_p: float | None
    presence_penalty: float | None
    frequency_penalty: float | None
    stop: str | list[str] | None
    n: int | None
    seed: int | None
    user: str | None
    tools: list[dict[str, Any]] | None
    tool_choice: ToolChoice | None
    parallel_tool_calls: bool | None
    response_format: dict[str, Any] | None
    stream_options: dict[str, Any] | None
    logprobs: bool | None
    top_logprobs: int | None
    enable_thinking: bool | None
    thinking_budget: int | None
    enable_search: bool | None
    top_k: int | None
    repetition_penalty: float | None
    #: Merged into the JSON body: for fields this package does not name.
    extra_body: dict[str, Any] | None
    #: Sent as HTTP headers with this request only.
    extra_headers: dict[str, str] | None
