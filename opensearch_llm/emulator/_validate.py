"""Chat request checks, as the service makes them, into a ``ChatRequest``.

The rules are in docs/service-facts.md, "Requests".

Each check returns an :class:`ApiError` or ``None``; the first error wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from opensearch_llm._profiles import ModelProfile, get_profile
from opensearch_llm._thinking import thinking_enabled
from opensearch_llm.emulator._errors import ApiError, invalid
from opensearch_llm.emulator._qwen import QWEN_CHECKS, is_file_reference

ROLES = ("system", "user", "assistant", "tool")
FAULT_MODEL_PREFIX = "fault/"
_TOOL_CHOICES = ("auto", "none", "required")


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat request: what the reply depends on."""

    model: str
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool
    n: int
    max_tokens: int | None
    stop: tuple[str, ...]
    tools: dict[str, Any]
    tool_choice: Any
    parallel_tool_calls: bool | None
    thinking: bool
    thinking_budget: int | None
    response_format: dict[str, Any] | None


@dataclass(frozen=True)
class _Range:
    name: str
    low: float
    high: float
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def check(self, body: dict[str, Any]) -> ApiError | None:
        value = body.get(self.name)
        if value is None:
            return None
        kinds = (int,) if self.integer else (int, float)
        if not isinstance(value, kinds) or isinstance(value, bool) or not self._inside(value):
            return invalid(self.name, f"Range of {self.name} should be {self._shown()}")
        return None

    def _inside(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def _shown(self) -> str:
        low, high = (int(self.low), int(self.high)) if self.integer else (self.low, self.high)
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"{left}{low}, {high}{right}"


_RANGES = (
    _Range("temperature", 0.0, 2.0, high_open=True),
    _Range("top_p", 0.0, 1.0, low_open=True),
    _Range("presence_penalty", -2.0, 2.0),
    _Range("frequency_penalty", -2.0, 2.0),
    _Range("repetition_penalty", 0.0, 1e9, low_open=True),
    _Range("n", 1, 4, integer=True),
    _Range("seed", 0, 2**64 - 1, integer=True),
    _Range("top_k", 0, 2**31 - 1, integer=True),
    _Range("thinking_budget", 1, 2**31 - 1, integer=True),
)


def is_known_model(model: str) -> bool:
    """Models the emulator serves: the profile table, dated/``-latest`` variants, ``fault/...``."""
    return model.startswith(FAULT_MODEL_PREFIX) or get_profile(model).known


def parse_chat_request(body: Any) -> ChatRequest | ApiError:
    """The validated request, or the error the service would answer with."""
    if not isinstance(body, dict):
        return invalid(None, "The request body is not a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return invalid("model", "Field required: model")
    if not is_known_model(model):
        message = f"The model `{model}` does not exist or you do not have access to it."
        return ApiError(404, "model_not_found", message, "model")
    profile = get_profile(model)
    for check in _CHECKS:
        error = check(body, profile)
        if error is not None:
            return error
    return _build(body, model, profile)


def _build(body: dict[str, Any], model: str, profile: ModelProfile) -> ChatRequest:
    stop = body.get("stop")
    tools = {tool["function"]["name"]: tool["function"] for tool in body.get("tools") or ()}
    return ChatRequest(
        model=model,
        messages=body["messages"],
        stream=bool(body.get("stream")),
        include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
        n=body.get("n") or 1,
        max_tokens=_max_tokens(body),
        stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
        tools=tools,
        tool_choice=body.get("tool_choice"),
        parallel_tool_calls=body.get("parallel_tool_calls"),
        thinking=_thinking(body, profile),
        thinking_budget=body.get("thinking_budget"),
        response_format=body.get("response_format"),
    )


def _max_tokens(body: dict[str, Any]) -> int | None:
    limits = [body[key] for key in ("max_tokens", "max_completion_tokens") if body.get(key)]
    return min(limits) if limits else None


def _thinking(body: dict[str, Any], profile: ModelProfile) -> bool:
    return thinking_enabled(profile, body.get("enable_thinking"))


def _check_types(body: dict[str, Any], profile: ModelProfile) -> ApiError | None:
    for name in ("stream", "enable_thinking", "parallel_tool_calls", "enable_search"):
        if name in body and body[name] is not None and not isinstance(body[name], bool):
            return invalid(name, f"{name} must be a boolean")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        return invalid("stream_options", "stream_options must be an object")
    return None


def _check_ranges(body: dict[str, Any], profile: ModelProfile) -> ApiError | None:
    for rule in (*_RANGES, *_token_limits(profile)):
        error = rule.check(body) if rule.name in body else None
        if error is not None:
            return error
    return None


@lru_cache(maxsize=64)
def _token_limits(profile: ModelProfile) -> tuple[_Range, ...]:
    return tuple(
        _Range(name, 1, profile.max_output, integer=True)
        for name in ("max_tokens", "max_completion_tokens")
    )


def _check_stop(body: dict[str, Any], profile: ModelProfile) -> ApiError | None:
    stop = body.get("stop")
    if stop is None or isinstance(stop, str):
        return None
    if isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        return None
    return invalid("stop", "stop must be a string or a list of strings")


def _check_messages(body: dict[str, Any], profile: ModelProfile) -> ApiError | None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return invalid("messages", "messages must be a non-empty list")
    for index, message in enumerate(messages):
        error = _check_message(index, message)
        if error is not None:
            return error
    return None


def _check_message(index: int, message: Any) -> ApiError | None:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        return invalid(where, f"{where} must be an object with a role and content")
    role = message.get("role")
    if role not in ROLES:
        return invalid(f"{where}.role", f"{where}.role must be one of {', '.join(ROLES)}")
    if role == "system" and index > 0 and not is_file_reference(message):  # Qwen-Long's files
        return invalid(f"{where}.role", "The system message must be the first message.")
    if role == "tool" and not message.get("tool_call_id"):
        return invalid(f"{where}.tool_call_id", f"{where} (a tool message) needs a tool_call_id")
    if _is_empty(message.get("content")) and not (
        role == "assistant" and message.get("tool_calls")
    ):
        return invalid(f"{where}.content", f"{where}.content must not be empty")
    return None


def _is_empty(content: Any) -> bool:
    if isinstance(content, str):
        return not content
    return not isinstance(content, list) or not content


def _check_tools(body: dict[str, Any], profile: ModelProfile) -> ApiError | None:
    tools = body.get("tools")
    if tools is None:
        return None
    if not profile.tools and tools:
        return invalid("tools", f"The model {body['model']} does not support tools.")
    if not isinstance(tools, list) or not all(_is_tool(tool) for tool in tools):
        message = 'tools must be a list of {"type": "function", "function": {"name": ...}}'
        return invalid("tools", message)
    return None


def _is_tool(tool: Any) -> bool:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        return False
    function = tool.get("function")
    return (
        isinstance(function, dict)
        and isinstance(function.get("name"), str)
        and bool(function["name"])
    )


def _check_tool_choice(body: dict[str, Any], profile: ModelProfile) -> ApiError | None:
    choice = body.get("tool_choice")
    if choice is None or choice in _TOOL_CHOICES:
        return None
    names = {tool["function"]["name"] for tool in body.get("tools") or ()}
    if forced_tool_name(choice) in names:
        return None
    message = 'tool_choice must be "auto", "none", "required" or name one of the tools'
    return invalid("tool_choice", message)


def forced_tool_name(choice: Any) -> str | None:
    """The function a ``tool_choice`` object names, if it is one."""
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        return name if isinstance(name, str) else None
    return None


def _check_response_format(body: dict[str, Any], profile: ModelProfile) -> ApiError | None:
    fmt = body.get("response_format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        return invalid(
            "response_format", "response_format.type must be text, json_object or json_schema"
        )
    if kind == "json_object" and "json" not in str(body.get("messages")).lower():
        message = "'messages' must contain the word 'json' in some form to use json_object"
        return invalid("response_format", message)
    return None


def _check_thinking(body: dict[str, Any], profile: ModelProfile) -> ApiError | None:
    stream = bool(body.get("stream"))
    if profile.stream_only and not stream:
        return invalid("stream", "This model only supports streaming calls: set stream to true.")
    thinking = _thinking(body, profile)
    if thinking and not stream:
        message = "parameter.enable_thinking must be set to false for non-streaming calls"
        return invalid("enable_thinking", message)
    if thinking and (
        body.get("tool_choice") == "required" or forced_tool_name(body.get("tool_choice"))
    ):
        message = "tool_choice cannot be required or name a function in thinking mode"
        return invalid("tool_choice", message)
    return None


_CHECKS: tuple[Callable[[dict[str, Any], ModelProfile], ApiError | None], ...] = (
    _check_types,
    _check_ranges,
    _check_stop,
    _check_messages,
    _check_tools,
    _check_tool_choice,
    _check_response_format,
    _check_thinking,
    *QWEN_CHECKS,
)
