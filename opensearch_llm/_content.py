"""Content parts of wire messages: their shapes, their checks, and the parts both adapters build.

The service's parts (docs/service-facts.md, "Multimodal input"): ``text``; ``image_url`` (a URL
or a ``data:`` URL); ``input_audio`` (``data``: a URL or a ``data:`` URL, and ``format``);
``video_url`` (a video file) or ``video`` (a list of frame URLs), both with an optional ``fps``;
``cache_control: {"type": "ephemeral"}`` on any part marks the end of a cached prefix (at most
``MAX_CACHE_MARKERS`` per request). Files uploaded for Qwen-Long are referenced by id in a system
message of their own, ``fileid://<id>`` (comma-separated for several). Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opensearch_llm._errors import RequestValidationError

Part = dict[str, Any]

#: Each part type and the model capability (``ModelProfile`` field) it needs, if any.
PART_CAPABILITY: dict[str, str | None] = {
    "text": None,
    "image_url": "vision",
    "input_audio": "audio_input",
    "video_url": "video",
    "video": "video",
    "file": None,
}
PART_TYPES = tuple(PART_CAPABILITY)
CACHE_CONTROL = {"type": "ephemeral"}
MAX_CACHE_MARKERS = 4
FILE_ID_SCHEME = "fileid://"


# --------------------------------------------------------------------------- checks


def check_parts(where: str, parts: Sequence[Any]) -> int:
    """Check each part's shape; the number of cache markers among them."""
    markers = 0
    for index, part in enumerate(parts):
        here = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if not isinstance(kind, str) or kind not in PART_CAPABILITY:
            raise RequestValidationError(f"{here}.type", kind, "one of " + ", ".join(PART_TYPES))
        problem = _PART_CHECKS.get(kind, _no_problem)(part)
        if problem is not None:
            field, allowed = problem
            raise RequestValidationError(f"{here}.{field}", part.get(field), allowed)
        if "cache_control" in part:
            if part["cache_control"] != CACHE_CONTROL:
                raise RequestValidationError(
                    f"{here}.cache_control", part["cache_control"], "{'type': 'ephemeral'}"
                )
            markers += 1
    return markers


def _no_problem(part: Mapping[str, Any]) -> tuple[str, str] | None:
    return None


def _text_problem(part: Mapping[str, Any]) -> tuple[str, str] | None:
    return None if isinstance(part.get("text"), str) else ("text", "a string")


def _url_of(value: Any) -> Any:
    return value.get("url") if isinstance(value, Mapping) else value


def _image_problem(part: Mapping[str, Any]) -> tuple[str, str] | None:
    if _non_empty(_url_of(part.get("image_url"))):
        return None
    return "image_url", "{'url': an http(s) URL or a data:image/...;base64 URL}"


def _audio_problem(part: Mapping[str, Any]) -> tuple[str, str] | None:
    audio = part.get("input_audio")
    if (
        isinstance(audio, Mapping)
        and _non_empty(audio.get("data"))
        and (audio.get("format") is None or _non_empty(audio["format"]))
    ):
        return None
    return "input_audio", "{'data': a URL or a data: URL, 'format'?: 'mp3', 'wav', ...}"


def _video_url_problem(part: Mapping[str, Any]) -> tuple[str, str] | None:
    if _non_empty(_url_of(part.get("video_url"))):
        return None
    return "video_url", "{'url': a video URL or a data:video/...;base64 URL}"


def _frames_problem(part: Mapping[str, Any]) -> tuple[str, str] | None:
    frames = part.get("video")
    if isinstance(frames, list) and frames and all(_non_empty(frame) for frame in frames):
        return None
    return "video", "a non-empty list of frame image URLs"


def _non_empty(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


_PART_CHECKS = {
    "text": _text_problem,
    "image_url": _image_problem,
    "input_audio": _audio_problem,
    "video_url": _video_url_problem,
    "video": _frames_problem,
}


def check_partial(messages: Sequence[Mapping[str, Any]]) -> None:
    """``partial: true`` only on the last message, an assistant message with text (prefix mode)."""
    last = len(messages) - 1
    for position, message in enumerate(messages):
        partial = message.get("partial")
        if partial is None or partial is False:
            continue
        where = f"messages[{position}].partial"
        if partial is not True:
            raise RequestValidationError(where, partial, "true or false")
        if position != last or message.get("role") != "assistant" or message.get("tool_calls"):
            raise RequestValidationError(
                where, partial, "true only on the last message, an assistant message (the prefix)"
            )


def file_ids_of(message: Mapping[str, Any]) -> list[str] | None:
    """The file ids a ``fileid://`` system message references; None for any other message."""
    content = message.get("content")
    if message.get("role") != "system" or not isinstance(content, str):
        return None
    ids = [file_id_from_url(ref.strip()) for ref in content.split(",")]
    return [file_id for file_id in ids if file_id] if all(ids) else None


# ----------------------------------------------------------------- parts the adapters build


def data_url(mime_type: str, base64_data: str) -> str:
    """A ``data:`` URL of base64 data."""
    return f"data:{mime_type};base64,{base64_data}"


def audio_data_url(base64_data: str) -> str:
    """Base64 audio as the Qwen-Omni page writes it, ``data:;base64,...`` (the format apart)."""
    return base64_data if base64_data.startswith("data:") else f"data:;base64,{base64_data}"


def image_part(url: str, detail: str | None = None) -> Part:
    """An ``image_url`` part (``url``: http(s) or a ``data:`` URL)."""
    image_url: dict[str, Any] = {"url": url}
    if detail:
        image_url["detail"] = detail
    return {"type": "image_url", "image_url": image_url}


def audio_part(data: str, audio_format: str | None = None) -> Part:
    """An ``input_audio`` part (``data``: a URL or a ``data:`` URL)."""
    audio: dict[str, Any] = {"data": data}
    if audio_format:
        audio["format"] = audio_format
    return {"type": "input_audio", "input_audio": audio}


def video_part(source: str | Sequence[str], fps: float | None = None) -> Part:
    """A ``video_url`` part for a video file, or a ``video`` part for a list of frame URLs."""
    part: Part = (
        {"type": "video_url", "video_url": {"url": source}}
        if isinstance(source, str)
        else {"type": "video", "video": list(source)}
    )
    if fps is not None:
        part["fps"] = fps
    return part


def file_part(file_id: str) -> Part:
    """A reference to an uploaded file; ``service_messages`` moves it into a ``fileid://`` one."""
    return {"type": "file", "file": {"file_id": file_id}}


def text_part(text: str) -> Part:
    """A ``text`` part."""
    return {"type": "text", "text": text}


#: What to do with a file whose bytes or URL a chat cannot carry.
UPLOAD_ADVICE = (
    "upload the file with the files API (purpose 'file-extract') and pass its id to a model "
    "that reads files (qwen-long)"
)


def file_id_from_url(url: str) -> str | None:
    """The file id of a ``fileid://<id>`` URL; None for any other URL."""
    if url.startswith(FILE_ID_SCHEME) and len(url) > len(FILE_ID_SCHEME):
        return url[len(FILE_ID_SCHEME) :]
    return None


def role_content(parts: Sequence[Part], role: str, separator: str = "") -> str | list[Part]:
    """The content of a system, assistant or tool message made of ``parts``.

    Text and file references go on (``service_messages`` moves file references to a
    ``fileid://`` system message), and so do a tool result's media (moved to a user message
    after it); an assistant message's media (a spoken answer it carried) are left out; other
    media cannot be sent in these roles. All text becomes one string unless a part is cached.
    """
    kept: list[Part] = []
    for part in parts:
        if part["type"] in ("text", "file") or role == "tool":
            kept.append(part)
        elif role != "assistant":
            raise RequestValidationError(
                f"{role} message content",
                part["type"],
                "text (and files by id)",
                "Images, audio and video go in a user message.",
            )
    if all(part["type"] == "text" for part in kept):
        return text_content(kept, separator)
    return kept


def text_content(parts: Sequence[Part], separator: str = "") -> str | list[Part]:
    """The content of text parts: one string, or the parts themselves when one is a cache marker."""
    if any("cache_control" in part for part in parts):
        return list(parts)
    return separator.join(str(part["text"]) for part in parts)


def mark_last_part(parts: list[Part]) -> None:
    """Put the cache marker on the last part (a framework's cache point after a block)."""
    if parts:
        parts[-1] = {**parts[-1], "cache_control": dict(CACHE_CONTROL)}
