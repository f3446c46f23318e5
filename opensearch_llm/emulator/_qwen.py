"""The Qwen surface in the emulator: media parts, file ids, prefix mode, extras; speech, cache.

Checks (400 ``invalid_parameter_error``, as the service answers; docs/service-facts.md,
"Multimodal input", "Context cache", "Partial mode", "Qwen extras"):
- content parts are ``text``, ``image_url``, ``input_audio``, ``video_url`` or ``video`` (a list
  of frame URLs), each with its source; ``cache_control`` is ``{"type": "ephemeral"}``, at most
  4 per request; images, video and audio only for models whose profile takes them;
- ``fileid://`` system messages only for models that read files (``qwen-long``);
- ``partial: true`` only on the last message, an assistant one, and not while thinking;
- ``modalities`` ``["text"]`` or ``["text", "audio"]``, audio only for speaking models and with
  ``audio: {"voice", "format": "wav"}``; ``search_options`` and ``translation_options`` objects
  (``target_lang`` required, and required for translation models); ``vl_high_resolution_images``,
  ``enable_code_interpreter`` (thinking and streaming only) and ``incremental_output`` booleans.

Replies:
- a spoken answer (``modalities`` with ``audio``) streams, after pieces of text, chunks whose
  ``delta.audio`` is ``{"data": <base64>, "id", "expires_at"}``; the joined base64 decodes to
  the answer's UTF-8 text, so a test can check that the audio arrived whole;
- with cache markers, the words (tokens) of the messages up to the last marker form a cached
  prefix when there are at least 1,024 of them: the first request reports them as
  ``prompt_tokens_details.cache_creation_input_tokens``, a later one with the same prefix (same
  emulator) as ``cached_tokens``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from opensearch_llm._content import file_ids_of
from opensearch_llm._profiles import ModelProfile
from opensearch_llm._thinking import thinking_enabled
from opensearch_llm.emulator._errors import ApiError, invalid
from opensearch_llm.emulator._text import count_tokens

_PART_NEEDS = {
    "text": None,
    "image_url": "vision",
    "input_audio": "audio_input",
    "video_url": "video",
    "video": "video",
}
_WHAT = {"vision": "image", "audio_input": "audio", "video": "video"}
_MAX_CACHE_MARKERS = 4
_MIN_CACHED_TOKENS = 1024
_AUDIO_LIFETIME = 86_400

Check = Callable[[dict[str, Any], ModelProfile], "ApiError | None"]


# --------------------------------------------------------------------------- checks


def is_file_reference(message: Mapping[str, Any]) -> bool:
    """A system message whose content is ``fileid://`` references (Qwen-Long)."""
    return file_ids_of(message) is not None


def _parts(body: Mapping[str, Any]) -> Iterator[tuple[int, int, Any]]:
    for position, message in enumerate(body.get("messages") or ()):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for index, part in enumerate(content):
                yield position, index, part


def _check_parts(body: dict[str, Any], profile: ModelProfile) -> ApiError | None:
    markers = 0
    for position, index, part in _parts(body):
        where = f"messages[{position}].content[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(kind, str) or kind not in _PART_NEEDS:
            return invalid(where, f"{where}.type must be one of {', '.join(_PART_NEEDS)}")
        if not _has_source(part):
            return invalid(where, f"{where} has no {kind} (a URL, data, or text)")
        if "cache_control" in part:
            if part["cache_control"] != {"type": "ephemeral"}:
                return invalid(where, 'cache_control must be {"type": "ephemeral"}')
            markers += 1
        need = _PART_NEEDS[kind]
        if need is not None and not getattr(profile, need):
            return invalid(
                where, f"The model {body['model']} does not support {_WHAT[need]} input."
            )
    if markers > _MAX_CACHE_MARKERS:
        return invalid("messages", f"At most {_MAX_CACHE_MARKERS} cache_control markers")
    return None


def _has_source(part: dict[str, Any]) -> bool:
    kind = part["type"]
    value = part.get(kind)
    if kind == "text":
        return isinstance(value, str)
    if kind == "video":
        return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
    inner = (
        value.get("data" if kind == "input_audio" else "url") if isinstance(value, dict) else None
    )
    return isinstance(inner, str) and bool(inner)


def _check_file_ids(body: dict[str, Any], profile: ModelProfile) -> ApiError | None:
    messages = body.get("messages") or ()
    if any(is_file_reference(m) for m in messages if isinstance(m, dict)) and not profile.file_ids:
        return invalid("messages", f"The model {body['model']} does not support fileid input.")
    return None


def _check_partial(body: dict[str, Any], profile: ModelProfile) -> ApiError | None:
    messages = body.get("messages") or ()
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("partial") in (None, False):
            continue
        if message["partial"] is not True:
            return invalid("partial", "partial must be a boolean")
        if position != len(messages) - 1 or message.get("role") != "assistant":
            return invalid("partial", "partial is only allowed on the last, assistant message")
        if thinking_enabled(profile, body.get("enable_thinking")):
            return invalid("partial", "Partial mode is not supported in thinking mode.")
    return None


def _check_extras(body: dict[str, Any], profile: ModelProfile) -> ApiError | None:
    for name in ("vl_high_resolution_images", "enable_code_interpreter", "incremental_output"):
        if name in body and not isinstance(body[name], bool):
            return invalid(name, f"{name} must be a boolean")
    for name in ("search_options", "translation_options", "audio"):
        if name in body and not isinstance(body[name], dict):
            return invalid(name, f"{name} must be an object")
    return (
        _check_speech(body, profile)
        or _check_translation(body, profile)
        or _check_code_interpreter(body, profile)
    )


def _check_speech(body: dict[str, Any], profile: ModelProfile) -> ApiError | None:
    modalities = body.get("modalities")
    if modalities is None:
        return None
    if not (isinstance(modalities, list) and set(modalities) <= {"text", "audio"} and modalities):
        return invalid("modalities", 'modalities must be ["text"] or ["text", "audio"]')
    if "audio" not in modalities:
        return None
    if not profile.audio_output:
        return invalid("modalities", f"The model {body['model']} does not support audio output.")
    audio = body.get("audio") or {}
    if not isinstance(audio.get("voice"), str) or audio.get("format", "wav") != "wav":
        return invalid("audio", 'audio must be {"voice": <voice>, "format": "wav"}')
    return None


def _check_translation(body: dict[str, Any], profile: ModelProfile) -> ApiError | None:
    options = body.get("translation_options")
    if options is None:
        if profile.translation:
            return invalid("translation_options", "translation_options is required")
        return None
    if not isinstance(options.get("target_lang"), str) or not options["target_lang"]:
        return invalid("translation_options", "translation_options.target_lang is required")
    return None


def _check_code_interpreter(body: dict[str, Any], profile: ModelProfile) -> ApiError | None:
    if not body.get("enable_code_interpreter"):
        return None
    if not thinking_enabled(profile, body.get("enable_thinking")):
        return invalid("enable_code_interpreter", "The code interpreter needs thinking mode.")
    if not body.get("stream"):
        return invalid("stream", "The code interpreter only supports streaming output.")
    return None


#: The checks ``_validate`` runs after its own.
QWEN_CHECKS: tuple[Check, ...] = (_check_parts, _check_file_ids, _check_partial, _check_extras)


# --------------------------------------------------------------------------- replies

_CACHES: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def cache_details(emulator: Any, body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``prompt_tokens_details`` for a request's cache markers; None when it has none."""
    prefix = _cached_prefix(body)
    if prefix is None:
        return None
    tokens, key = prefix
    if tokens < _MIN_CACHED_TOKENS:
        return {"cached_tokens": 0}
    with _LOCK:
        seen = _CACHES.setdefault(emulator, set()) if emulator is not None else set()
        hit = key in seen
        seen.add(key)
    if hit:
        return {"cached_tokens": tokens, "cache_type": "ephemeral"}
    return {
        "cached_tokens": 0,
        "cache_creation_input_tokens": tokens,
        "cache_creation": {"ephemeral_5m_input_tokens": tokens},
        "cache_type": "ephemeral",
    }


def _cached_prefix(body: Mapping[str, Any]) -> tuple[int, str] | None:
    """Words up to the last cache marker, and a key for that prefix."""
    texts: list[str] = []
    last = None
    for message in body.get("messages") or ():
        content = message.get("content")
        for part in content if isinstance(content, list) else [{"text": content}]:
            texts.append(str(part.get("text") or "") if isinstance(part, dict) else "")
            if isinstance(part, dict) and "cache_control" in part:
                last = len(texts)
    if last is None:
        return None
    prefix = texts[:last]
    digest = hashlib.sha256(json.dumps([body.get("model"), prefix]).encode()).hexdigest()
    return sum(count_tokens(text) for text in prefix), digest


def completion_with_extras(
    emulator: Any, request: Mapping[str, Any], completion: dict[str, Any]
) -> dict[str, Any]:
    """A non-streamed ``chat.completion`` with its cache usage."""
    details = cache_details(emulator, request)
    if details is not None and completion.get("usage"):
        completion["usage"]["prompt_tokens_details"] = details
    return completion


def frames_with_extras(
    emulator: Any, request: Mapping[str, Any], frames: Sequence[Any], envelope: bool
) -> list[Any]:
    """A stream's frames with spoken-answer chunks and cache usage added where asked for."""
    speaker = _Speaker() if "audio" in (request.get("modalities") or ()) else None
    details = cache_details(emulator, request)
    if speaker is None and details is None:
        return list(frames)
    result: list[Any] = []
    for frame in frames:
        chunk = _chunk_of(frame, envelope)
        if chunk is None:
            result.append(frame)
            continue
        if details is not None and chunk.get("usage"):
            chunk["usage"]["prompt_tokens_details"] = details
            frame = _frame(chunk, envelope)
        spoken = speaker.chunks(chunk) if speaker is not None else ([], [])
        result += [_frame(audio, envelope) for audio in spoken[0]]
        result.append(frame)
        result += [_frame(audio, envelope) for audio in spoken[1]]
    return result


def _chunk_of(frame: Any, envelope: bool) -> dict[str, Any] | None:
    if not isinstance(frame, bytes) or not frame.startswith(b"data: {"):
        return None
    value = json.loads(frame[len(b"data: ") :])
    return value.get("data") if envelope else value  # type: ignore[no-any-return]


def _frame(chunk: dict[str, Any], envelope: bool) -> bytes:
    value = {"success": True, "code": "200", "message": "successful", "data": chunk}
    text = json.dumps(value if envelope else chunk, ensure_ascii=False, separators=(",", ":"))
    return b"data: " + text.encode() + b"\n\n"


class _Speaker:
    """Choice 0's text "spoken": its UTF-8 bytes as base64 pieces that join into one base64.

    Each piece encodes whole 3-byte groups (no padding inside the joined string); the rest is
    sent just before the chunk that finishes the choice.
    """

    def __init__(self) -> None:
        self._pending = b""

    def chunks(self, chunk: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Audio chunks to send before ``chunk`` (the rest, at the end) and after it (its text)."""
        before: list[dict[str, Any]] = []
        after: list[dict[str, Any]] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            text = (choice.get("delta") or {}).get("content")
            if text:
                self._pending += text.encode()
                whole = len(self._pending) - len(self._pending) % 3
                after += self._audio(chunk, whole)
            if choice.get("finish_reason"):
                before += self._audio(chunk, len(self._pending))
        return before, after

    def _audio(self, chunk: dict[str, Any], size: int) -> list[dict[str, Any]]:
        if size == 0:
            return []
        data, self._pending = self._pending[:size], self._pending[size:]
        audio = {
            "data": base64.b64encode(data).decode("ascii"),
            "id": f"audio_{chunk.get('id')}",
            "expires_at": int(chunk.get("created") or 0) + _AUDIO_LIFETIME,
        }
        delta = {"index": 0, "delta": {"audio": audio}, "finish_reason": None, "logprobs": None}
        return [{**chunk, "choices": [delta], "usage": None}]
