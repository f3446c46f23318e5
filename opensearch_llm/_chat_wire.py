"""The chat wire format: request bodies built from a call; completions and chunks checked.

Completions are normalised to the keys a streamed answer aggregates to. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opensearch_llm._bodies import error_from_body, unwrap_envelope
from opensearch_llm._capabilities import check_capabilities
from opensearch_llm._errors import ResponseDecodeError
from opensearch_llm._profiles import get_profile
from opensearch_llm._qwen_options import check_option_pairs
from opensearch_llm._thinking import apply_thinking_policy
from opensearch_llm._validate import (
    check_extra_body,
    validate_messages,
    validate_model,
    validate_params,
)

# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat request: the JSON body, extra headers, and how it goes on the wire."""

    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    #: Sent with ``stream: true``.
    stream: bool = False
    #: The caller asked for one completion but the model must stream: aggregate the stream.
    aggregate: bool = False


def build_chat_request(
    model: str, messages: Any, params: Mapping[str, Any], *, stream: bool
) -> ChatRequest:
    """Validate a chat call and apply the model's profile; raises ``RequestValidationError``."""
    validate_model(model)
    validate_messages(messages)
    validate_params(params)
    set_params = {k: v for k, v in params.items() if v is not None}
    extra_body: dict[str, Any] = set_params.pop("extra_body", {})
    check_extra_body(extra_body, _CHAT_ARGUMENTS)
    headers: dict[str, str] = set_params.pop("extra_headers", {})
    body = {**set_params, **extra_body}

    check_option_pairs(body)
    profile = get_profile(model)
    check_capabilities(model, profile, messages, set_params, body)
    partial = messages[-1].get("partial") is True
    thinking = apply_thinking_policy(model, profile, body, stream=stream, partial=partial)
    wire_stream = stream or thinking or profile.stream_only
    if wire_stream:
        body["stream"] = True
        body.setdefault("stream_options", {"include_usage": True})
    else:
        body.pop("stream_options", None)
    return ChatRequest(
        payload={"model": model, "messages": messages, **body},
        headers=headers,
        stream=wire_stream,
        aggregate=wire_stream and not stream,
    )


#: Request fields ``extra_body`` may not set: each has its own argument, and a value there would
#: silently replace it (a ``stream`` there would even change how the answer is read).
_CHAT_ARGUMENTS = {
    "model": "pass model=...",
    "messages": "pass messages=...",
    "stream": "call stream() for a stream, create() for one answer",
}


# --------------------------------------------------------------------------- answers


def normalise_completion(body: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    """A ``chat.completion`` with the same keys a streamed one aggregates to."""
    for choice in body.get("choices") or ():
        message = choice.get("message") or {}
        for key in ("reasoning_content", "tool_calls"):
            if key in message and not message[key]:
                del message[key]
        if "function_call" in message and message["function_call"] is None:
            del message["function_call"]
        choice["message"] = message
        choice.setdefault("logprobs", None)
    body.setdefault("usage", None)
    body["request_id"] = request_id
    return body


def chunk_from_frame(frame: Any) -> dict[str, Any]:
    """The ``chat.completion.chunk`` in a frame (unwrapped); raises the error a frame carries."""
    if isinstance(frame, dict):
        if "choices" in frame and "error" not in frame:
            return _checked_chunk(frame)
        error = error_from_body(200, frame)
        if error is not None:
            raise error
        inner = unwrap_envelope(frame)
        if isinstance(inner, dict):
            return _checked_chunk(inner)
    raise ResponseDecodeError(
        f"a stream frame is not a chunk: {str(frame)[:200]}", body=str(frame)[:200]
    )


def _checked_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    """``chunk`` if its fields have the documented types; else a ``ResponseDecodeError``.

    ``choices`` is made a list when missing (a ``data: {}`` keep-alive has none).
    """
    problem = _chunk_problem(chunk)
    if problem is not None:
        raise ResponseDecodeError(
            f"a stream frame's {problem} has an unexpected type: {str(chunk)[:200]}",
            body=str(chunk)[:200],
        )
    if chunk.get("choices") is None:
        chunk["choices"] = []
    return chunk


def _of(value: Any, *kinds: type) -> bool:
    return value is None or (isinstance(value, kinds) and not isinstance(value, bool))


# The types of the fields a stream reads, each of which may also be absent or null. Decoded JSON
# has exact types, so ``type(value) is kind`` is the check (a bool is not an int): it is on the
# per-chunk path, where a function call per field would cost more than the rest of the check.
_CHUNK_TYPES: tuple[tuple[str, type], ...] = (
    ("id", str),
    ("object", str),
    ("model", str),
    ("created", int),
    ("usage", dict),
    ("choices", list),
)
_CHOICE_TYPES: tuple[tuple[str, type], ...] = (
    ("index", int),
    ("finish_reason", str),
    ("logprobs", dict),
    ("delta", dict),
)
_DELTA_TYPES: tuple[tuple[str, type], ...] = (
    ("content", str),
    ("reasoning_content", str),
    ("role", str),
    ("audio", dict),
    ("tool_calls", list),
)


def _wrong_field(fields: dict[str, Any], types: tuple[tuple[str, type], ...]) -> str | None:
    """The first field of ``fields`` whose value is neither null nor of its type."""
    for key, kind in types:
        value = fields.get(key)
        if value is not None and type(value) is not kind:
            return key
    return None


def _chunk_problem(chunk: dict[str, Any]) -> str | None:
    problem = _wrong_field(chunk, _CHUNK_TYPES)
    if problem is not None:
        return problem
    for choice in chunk.get("choices") or ():
        problem = _choice_problem(choice)
        if problem is not None:
            return problem
    return None


def _choice_problem(choice: Any) -> str | None:
    if type(choice) is not dict:
        return "choice"
    problem = _wrong_field(choice, _CHOICE_TYPES)
    if problem is not None:
        return problem
    logprobs = choice.get("logprobs")
    if logprobs and not _of(logprobs.get("content"), list):
        return "logprobs"
    delta = choice.get("delta")
    if not delta:
        return None
    problem = _wrong_field(delta, _DELTA_TYPES)
    if problem is None and not all(
        _tool_fragment_ok(call) for call in delta.get("tool_calls") or ()
    ):
        return "tool_calls"
    return problem


def completion_problem(body: Any) -> str | None:
    """What makes ``body`` unlike a ``chat.completion`` (choices and messages), or None."""
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        return "choices"
    for choice in body["choices"]:
        if not isinstance(choice, dict) or not _of(choice.get("message"), dict):
            return "message"
        message = choice.get("message") or {}
        if not (_of(message.get("content"), str) and _of(message.get("reasoning_content"), str)):
            return "message"
        if not _of(message.get("tool_calls"), list):
            return "tool_calls"
    return None


def _tool_fragment_ok(call: Any) -> bool:
    if not isinstance(call, dict):
        return False
    if not (_of(call.get("index"), int) and _of(call.get("id"), str)):
        return False
    function = call.get("function")
    if not _of(function, dict):
        return False
    function = function or {}
    return _of(function.get("name"), str) and _of(function.get("arguments"), str)


def completion_to_chunk(completion: dict[str, Any]) -> dict[str, Any]:
    """One chunk holding a whole completion (for a server that answered a stream with JSON)."""
    choices = []
    for choice in completion.get("choices") or ():
        delta = dict(choice.get("message") or {})
        for position, call in enumerate(delta.get("tool_calls") or ()):
            call.setdefault("index", position)
        choices.append(
            {
                "index": choice.get("index", 0),
                "delta": delta,
                "finish_reason": choice.get("finish_reason"),
            }
        )
    chunk = {k: completion.get(k) for k in ("id", "created", "model")}
    return {
        **chunk,
        "object": "chat.completion.chunk",
        "choices": choices,
        "usage": completion.get("usage"),
    }
