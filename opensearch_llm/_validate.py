"""Request checks made before anything is sent. Pure; each failure names field, value and rule.

Ranges and roles come from the service pages (docs/service-facts.md, "Requests"): temperature
[0, 2), top_p (0, 1], penalties [-2, 2], n 1 to 4; system only first; user, assistant, tool.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opensearch_llm._content import MAX_CACHE_MARKERS, check_partial, check_parts, file_ids_of
from opensearch_llm._errors import RequestValidationError
from opensearch_llm._qwen_options import MODALITIES_RULE, check_qwen_options

ROLES = ("system", "user", "assistant", "tool")
TOOL_CHOICE_STRINGS = ("auto", "none", "required")
RESPONSE_FORMAT_TYPES = ("text", "json_object", "json_schema")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _range_check(
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> tuple[Callable[[Any], bool], str]:
    kind = "an integer" if integer else "a number"
    text = f"{kind} in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def check(value: Any) -> bool:
        if not (_integer(value) if integer else _number(value)):
            return False
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        return bool(above and below)

    return check, text


def _at_least(low: int) -> tuple[Callable[[Any], bool], str]:
    return (lambda value: _integer(value) and value >= low), f"an integer >= {low}"


def _of_type(kind: type | tuple[type, ...], text: str) -> tuple[Callable[[Any], bool], str]:
    return (
        lambda value: isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    ), text


def _stop_ok(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value)
    return isinstance(value, list) and bool(value) and all(isinstance(s, str) and s for s in value)


_BOOL = _of_type(bool, "true or false")
_DICT = _of_type(dict, "a JSON object (dict)")

#: What ``extra_headers`` and ``default_headers`` must be.
HEADER_MAP = "a dict of header names to string values, in visible ASCII (spaces inside values)"


def shown_headers(value: Any) -> Any:
    """What an error may show of bad headers: their names (a value may be a credential)."""
    return sorted(map(str, value)) if isinstance(value, dict) else f"<{type(value).__name__}>"


def is_header_map(value: Any) -> bool:
    """Whether ``value`` can be sent as HTTP headers: str names and values, visible ASCII."""
    return isinstance(value, dict) and all(
        isinstance(name, str)
        and isinstance(text, str)
        and name.isascii()
        and name.isprintable()
        and name
        and " " not in name
        and ":" not in name
        and text.isascii()
        and text.isprintable()
        for name, text in value.items()
    )


#: Parameter name -> (check, what is allowed). One row per documented parameter.
PARAM_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "max_tokens": _at_least(1),
    "max_completion_tokens": _at_least(1),
    "temperature": _range_check(0, 2, high_open=True),
    "top_p": _range_check(0, 1, low_open=True),
    "presence_penalty": _range_check(-2, 2),
    "frequency_penalty": _range_check(-2, 2),
    "stop": (_stop_ok, "a non-empty string or a non-empty list of non-empty strings"),
    "n": _range_check(1, 4, integer=True),
    "seed": _range_check(0, 2**64 - 1, integer=True),
    "user": _of_type(str, "a string"),
    "parallel_tool_calls": _BOOL,
    "stream_options": _DICT,
    "logprobs": _BOOL,
    "top_logprobs": _range_check(0, 20, integer=True),
    "enable_thinking": _BOOL,
    "thinking_budget": _at_least(1),
    "enable_search": _BOOL,
    "top_k": _at_least(0),
    "repetition_penalty": _range_check(0, 10, low_open=True),
    "modalities": MODALITIES_RULE,
    "vl_high_resolution_images": _BOOL,
    "enable_code_interpreter": _BOOL,
    # False makes the service repeat the whole answer so far in each chunk: the client merges
    # deltas, so only true is taken (docs/service-facts.md, "Qwen extras").
    "incremental_output": (lambda value: value is True, "true (streamed deltas)"),
    # Checked in depth by ``check_qwen_options``; here only their outer type.
    "audio": _DICT,
    "search_options": _DICT,
    "translation_options": _DICT,
    "extra_body": _DICT,
    "extra_headers": (is_header_map, HEADER_MAP),
    # Checked in depth below; here only their outer type.
    "tools": (lambda v: isinstance(v, list), "a list of tool definitions"),
    "tool_choice": (lambda v: isinstance(v, (str, dict)), "a string or a dict"),
    "response_format": _DICT,
}

CHAT_PARAMS: tuple[str, ...] = tuple(PARAM_RULES)


def validate_params(params: Mapping[str, Any]) -> None:
    """Check every set parameter against its documented range or shape."""
    for name, value in params.items():
        if value is None:
            continue
        rule = PARAM_RULES.get(name)
        if rule is None:
            raise RequestValidationError(
                name, value, "one of " + ", ".join(CHAT_PARAMS), "Pass other fields in extra_body."
            )
        check, allowed = rule
        if not check(value):
            raise RequestValidationError(
                name, shown_headers(value) if rule[1] is HEADER_MAP else value, allowed
            )
    if params.get("tools") is not None:
        validate_tools(params["tools"])
    if params.get("tool_choice") is not None:
        validate_tool_choice(params["tool_choice"], params.get("tools"))
    if params.get("response_format") is not None:
        validate_response_format(params["response_format"])
    check_qwen_options(params)


def validate_model(model: Any) -> None:
    """The model must be a non-empty string."""
    if not isinstance(model, str) or not model.strip():
        raise RequestValidationError("model", model, "a model name such as 'qwen-plus'")


def validate_messages(messages: Any) -> None:
    """Check roles, their order, content and tool-message links."""
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)) or not messages:
        raise RequestValidationError("messages", messages, "a non-empty list of message dicts")
    markers = 0
    leading_system = True
    for position, message in enumerate(messages):
        markers += _validate_message(position, message, leading_system)
        leading_system = leading_system and message.get("role") == "system"
    check_partial(messages)
    if markers > MAX_CACHE_MARKERS:
        raise RequestValidationError(
            "cache_control", markers, f"at most {MAX_CACHE_MARKERS} cache markers per request"
        )


def _validate_message(position: int, message: Any, leading_system: bool) -> int:
    """Check one message; the number of cache markers in its content."""
    where = f"messages[{position}]"
    if not isinstance(message, Mapping):
        raise RequestValidationError(where, message, "a dict with 'role' and 'content'")
    role = message.get("role")
    if role not in ROLES:
        raise RequestValidationError(f"{where}.role", role, "one of " + ", ".join(ROLES))
    # Qwen-Long's file references come in system messages of their own, after the first.
    if role == "system" and position != 0 and not (leading_system and file_ids_of(message)):
        raise RequestValidationError(f"{where}.role", role, "a system message only as messages[0]")
    if role == "tool" and not (
        isinstance(message.get("tool_call_id"), str) and message["tool_call_id"]
    ):
        raise RequestValidationError(
            f"{where}.tool_call_id", message.get("tool_call_id"), "the id of the tool call answered"
        )
    if message.get("name") is not None and not isinstance(message["name"], str):
        raise RequestValidationError(f"{where}.name", message["name"], "a string")
    if role == "assistant" and message.get("tool_calls"):
        _validate_tool_calls(where, message["tool_calls"])
        if message.get("content") in (None, ""):
            return 0
    return _validate_content(f"{where}.content", message.get("content"))


def _validate_content(where: str, content: Any) -> int:
    if isinstance(content, str):
        if not content.strip():
            raise RequestValidationError(where, content, "non-empty text")
        return 0
    if not isinstance(content, list) or not content:
        raise RequestValidationError(where, content, "a non-empty string or list of content parts")
    return check_parts(where, content)


def _validate_tool_calls(where: str, tool_calls: Any) -> None:
    if not isinstance(tool_calls, list):
        raise RequestValidationError(f"{where}.tool_calls", tool_calls, "a list of tool calls")
    for index, call in enumerate(tool_calls):
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise RequestValidationError(
                f"{where}.tool_calls[{index}]",
                call,
                "{'id', 'type': 'function', 'function': {'name', 'arguments'}}",
            )


def validate_tools(tools: list[Any]) -> None:
    """Each tool is ``{"type": "function", "function": {"name", "parameters"?}}``."""
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, Mapping) or tool.get("type", "function") != "function":
            raise RequestValidationError(where, tool, "{'type': 'function', 'function': {...}}")
        function = tool.get("function")
        if not isinstance(function, Mapping):
            raise RequestValidationError(f"{where}.function", function, "a dict with 'name'")
        name = function.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise RequestValidationError(
                f"{where}.function.name", name, "1 to 64 letters, digits, '_' or '-'"
            )
        parameters = function.get("parameters")
        if parameters is not None and not _is_schema(parameters):
            raise RequestValidationError(
                f"{where}.function.parameters", parameters, "a JSON schema object (a dict)"
            )


def _is_schema(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return False
    kind = schema.get("type")
    properties = schema.get("properties")
    return (kind is None or isinstance(kind, (str, list))) and (
        properties is None or isinstance(properties, Mapping)
    )


def validate_tool_choice(tool_choice: Any, tools: list[Any] | None) -> None:
    """``auto``, ``none``, ``required``, or a function that is among ``tools``."""
    if isinstance(tool_choice, str):
        if tool_choice not in TOOL_CHOICE_STRINGS:
            raise RequestValidationError(
                "tool_choice",
                tool_choice,
                "one of " + ", ".join(TOOL_CHOICE_STRINGS) + " or a function",
            )
        if tool_choice == "required" and not tools:
            raise RequestValidationError("tool_choice", tool_choice, "'required' only with tools")
        return
    name = forced_tool_name(tool_choice)
    if name is None:
        raise RequestValidationError(
            "tool_choice", tool_choice, "{'type': 'function', 'function': {'name': ...}}"
        )
    known = [t["function"]["name"] for t in tools or ()]
    if name not in known:
        raise RequestValidationError(
            "tool_choice",
            name,
            "the name of one of the tools: " + (", ".join(known) or "(no tools given)"),
        )


def forced_tool_name(tool_choice: Any) -> str | None:
    """The function name a dict ``tool_choice`` forces, or None."""
    if not isinstance(tool_choice, Mapping):
        return None
    function = tool_choice.get("function")
    name = function.get("name") if isinstance(function, Mapping) else None
    return name if isinstance(name, str) and name else None


def is_forced_tool_choice(tool_choice: Any) -> bool:
    """Whether ``tool_choice`` forces a call (``required`` or a named function)."""
    return tool_choice == "required" or forced_tool_name(tool_choice) is not None


def validate_response_format(response_format: Mapping[str, Any]) -> None:
    """``{"type": "text" | "json_object"}`` or ``{"type": "json_schema", "json_schema": {...}}``."""
    kind = response_format.get("type")
    if kind not in RESPONSE_FORMAT_TYPES:
        raise RequestValidationError(
            "response_format.type", kind, "one of " + ", ".join(RESPONSE_FORMAT_TYPES)
        )
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if (
            not isinstance(spec, Mapping)
            or not isinstance(spec.get("name"), str)
            or not isinstance(spec.get("schema"), Mapping)
        ):
            raise RequestValidationError(
                "response_format.json_schema",
                spec,
                "{'name': str, 'schema': {...}, 'strict'?: bool}",
            )


def check_extra_body(extra_body: Mapping[str, Any], own_arguments: Mapping[str, str]) -> None:
    """Refuse ``extra_body`` keys that have their own argument: they would replace it.

    ``own_arguments`` maps each such key to how to pass it instead.
    """
    taken = sorted(set(extra_body) & set(own_arguments))
    if taken:
        raise RequestValidationError(
            "extra_body",
            taken,
            "fields other than " + ", ".join(own_arguments),
            "; ".join(f"{name}: {own_arguments[name]}" for name in taken) + ".",
        )
