"""LangChain content blocks as the service's content parts. Pure; no I/O.

Every form LangChain has for a block is read: v1 standard blocks (``{"type": "image", "url" |
"base64" | "file_id", "mime_type"}``, likewise ``audio``, ``video``, ``file``, ``text-plain``),
v0 blocks (``{"type": "image", "source_type": "url" | "base64" | "id", "data" | "url" | "id"}``)
and OpenAI's parts (``image_url``, ``input_audio``, ``file``), plus the service's own
(``video_url``, ``video`` with a list of frames). They become ``image_url``, ``input_audio``,
``video_url`` / ``video`` parts, text, or file references (Qwen-Long's ``fileid://``, moved into
a system message by the core). What the service cannot take is refused with a
``RequestValidationError`` saying what it takes instead (docs/service-facts.md, "Multimodal
input"). A ``cache_control`` marker on a block, or in its ``extras``, stays on its part.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from opensearch_llm import RequestValidationError
from opensearch_llm._adapters import (
    UPLOAD_ADVICE,
    audio_data_url,
    audio_part,
    data_url,
    file_id_from_url,
    file_part,
    image_part,
    text_part,
    video_part,
)

Part = dict[str, Any]
Block = Mapping[str, Any]

#: Audio MIME subtypes whose ``format`` name differs.
_AUDIO_FORMATS = {"mpeg": "mp3", "x-wav": "wav", "wave": "wav", "x-m4a": "m4a", "mp4": "m4a"}
_UPLOAD_HINT = f"To send a file, {UPLOAD_ADVICE}: {{'type': 'file', 'file_id': ...}}."


def block_part(block: Block) -> Part:
    """The wire part of one input block (text, media or a file reference)."""
    kind = str(block.get("type"))
    convert = _CONVERTERS.get(kind)
    if convert is None:
        raise RequestValidationError(
            "content block type",
            kind,
            ", ".join(sorted(_CONVERTERS)),
            "Tool calls and reasoning travel in their own fields, not as content.",
        )
    part = convert(block)
    marker = _extra(block, "cache_control")
    if marker is not None:
        part["cache_control"] = marker
    return part


def _extra(block: Block, name: str) -> Any:
    """A block's ``name``, or its ``extras[name]`` (where v1 blocks keep provider fields)."""
    extras = block.get("extras")
    value = extras.get(name) if isinstance(extras, Mapping) else None
    return block.get(name, value)


def _source(block: Block) -> tuple[str | None, str | None, str | None]:
    """``(url, base64 data, file id)`` of a v1 or v0 data block."""
    source_type = block.get("source_type")
    if source_type == "url":
        return block.get("url") or block.get("data"), None, None
    if source_type == "base64":
        return None, block.get("data"), None
    if source_type == "id":
        return None, None, block.get("id")
    return block.get("url"), block.get("base64") or block.get("data"), block.get("file_id")


def _refuse_id(kind: str, file_id: str) -> NoReturn:
    raise RequestValidationError(
        f"{kind} block file_id",
        file_id,
        f"a 'url' or 'base64' data for {kind} (the service takes files by id only as documents)",
    )


def _text(block: Block) -> Part:
    return text_part(str(block.get("text", "")))


def _image_url(block: Block) -> Part:
    image_url = block.get("image_url")
    url = image_url.get("url") if isinstance(image_url, Mapping) else image_url
    if not isinstance(url, str) or not url:
        raise RequestValidationError("image_url part", image_url, "{'url': an image URL}")
    detail = image_url.get("detail") if isinstance(image_url, Mapping) else None
    return image_part(url, detail)


def _image(block: Block) -> Part:
    url, data, file_id = _source(block)
    if url:
        return image_part(url, _extra(block, "detail"))
    if data:
        return image_part(data_url(block.get("mime_type") or "image/jpeg", data))
    if file_id:
        return _refuse_id("image", file_id)
    raise RequestValidationError("image block", dict(block), "a 'url' or 'base64' data")


def _audio(block: Block) -> Part:
    url, data, file_id = _source(block)
    audio_format = _audio_format(block.get("mime_type"))
    if url:
        return audio_part(url, audio_format)
    if data:
        return audio_part(audio_data_url(data), audio_format)
    if file_id:
        return _refuse_id("audio", file_id)
    raise RequestValidationError("audio block", dict(block), "a 'url' or 'base64' data")


def _audio_format(mime_type: Any) -> str | None:
    if not isinstance(mime_type, str) or "/" not in mime_type:
        return None
    subtype = mime_type.split("/", 1)[1].split(";", 1)[0]
    return _AUDIO_FORMATS.get(subtype, subtype)


def _input_audio(block: Block) -> Part:
    audio = block.get("input_audio")
    data = audio.get("data") if isinstance(audio, Mapping) else None
    if not isinstance(data, str) or not data:
        raise RequestValidationError("input_audio part", audio, "{'data': ..., 'format': ...}")
    if not data.startswith(("http://", "https://", "data:", "oss://")):
        data = audio_data_url(data)  # OpenAI's parts carry bare base64
    return audio_part(data, audio.get("format"))  # type: ignore[union-attr]


def _video(block: Block) -> Part:
    fps = _extra(block, "fps")
    frames = block.get("video")
    if isinstance(frames, list):  # the service's own form: a list of frame URLs
        return video_part([str(frame) for frame in frames], fps)
    url, data, file_id = _source(block)
    if url:
        return video_part(url, fps)
    if data:
        return video_part(data_url(block.get("mime_type") or "video/mp4", data), fps)
    if file_id:
        return _refuse_id("video", file_id)
    raise RequestValidationError(
        "video block", dict(block), "a 'url', 'base64' data, or 'video': [frame URLs]"
    )


def _video_url(block: Block) -> Part:
    video_url = block.get("video_url")
    url = video_url.get("url") if isinstance(video_url, Mapping) else video_url
    if not isinstance(url, str) or not url:
        raise RequestValidationError("video_url part", video_url, "{'url': a video URL}")
    return video_part(url, block.get("fps"))


def _file(block: Block) -> Part:
    """A file reference by id, a text file as text; other files are refused (upload them)."""
    openai_file = block.get("file")
    if isinstance(openai_file, Mapping):
        return _openai_file(openai_file)
    if block.get("source_type") == "text" or block.get("type") == "text-plain":
        return text_part(str(block.get("text") or ""))
    url, data, file_id = _source(block)
    if file_id:
        return file_part(file_id)
    referenced = file_id_from_url(url) if isinstance(url, str) else None
    if referenced:
        return file_part(referenced)
    mime = str(block.get("mime_type") or "")
    if data and mime.startswith("text/"):
        return text_part(_decoded(data))
    raise RequestValidationError(
        "file block", {"mime_type": mime or None, "url": url}, "a file id, or text", _UPLOAD_HINT
    )


def _openai_file(file: Mapping[str, Any]) -> Part:
    if isinstance(file.get("file_id"), str) and file["file_id"]:
        return file_part(file["file_id"])
    raise RequestValidationError(
        "file part", {"filename": file.get("filename")}, "{'file_id': ...}", _UPLOAD_HINT
    )


def _decoded(data: str) -> str:
    try:
        return base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise RequestValidationError(
            "file block base64", data[:40], "base64 of UTF-8 text"
        ) from error


_CONVERTERS: dict[str, Callable[[Block], Part]] = {
    "text": _text,
    "text-plain": _file,
    "image_url": _image_url,
    "image": _image,
    "audio": _audio,
    "input_audio": _input_audio,
    "video": _video,
    "video_url": _video_url,
    "file": _file,
}
