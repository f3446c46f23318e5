"""Messages, tool calls, tool choices and usage as the service's wire dicts, both ways. Pure.

What both adapters convert their framework's objects to and from (``langchain_opensearch_llm``
and ``llama_index_opensearch_llm`` keep only their own side of each conversion).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from opensearch_llm._content import FILE_ID_SCHEME, file_ids_of, text_part
from opensearch_llm._validate import TOOL_CHOICE_STRINGS


def service_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adapter-built wire messages as the service takes them (the list is not changed).

    File references (``file_part``) become one ``fileid://`` system message; media in tool
    results move to a user message after them; system messages are merged
    (``merge_system_messages``). Messages left without content are dropped.
    """
    return merge_system_messages(_lift_tool_media(_hoist_file_ids(messages)))


def merge_system_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` with every system message merged into one, first (the list is not changed).

    The service takes a system message only as ``messages[0]`` (docs/service-facts.md,
    "Requests"), while agents and memories may add one later; the texts are joined with a
    blank line, in order (as parts when one of them is a list of parts, so that cache markers
    stay). ``fileid://`` system messages (Qwen-Long) stay apart, right after it.
    """
    systems = [m for m in messages if m.get("role") == "system" and file_ids_of(m) is None]
    files = [m for m in messages if m.get("role") == "system" and file_ids_of(m) is not None]
    if not files and (not systems or (len(systems) == 1 and messages[0] is systems[0])):
        return messages
    rest = [message for message in messages if message.get("role") != "system"]
    contents = [message["content"] for message in systems if message.get("content")]
    merged = [{"role": "system", "content": _joined(contents)}] if contents else []
    return [*merged, *files, *rest]


def _joined(contents: list[Any]) -> Any:
    if all(isinstance(content, str) for content in contents):
        return "\n\n".join(contents)
    parts: list[dict[str, Any]] = []
    for content in contents:
        more = [text_part(content)] if isinstance(content, str) else [dict(p) for p in content]
        if parts and more and more[0].get("type") == "text":
            more[0]["text"] = "\n\n" + str(more[0]["text"])
        parts += more
    return parts


def _hoist_file_ids(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """File references moved out of the messages into one ``fileid://`` system message."""
    ids: list[str] = []
    kept: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list) or not any(_is_file(part) for part in content):
            kept.append(message)
            continue
        ids += [part["file"]["file_id"] for part in content if _is_file(part)]
        rest = [part for part in content if not _is_file(part)]
        if rest or message.get("tool_calls") or message.get("role") == "tool":
            kept.append({**message, "content": _collapsed(rest)})
    if not ids:
        return messages
    reference = ",".join(FILE_ID_SCHEME + file_id for file_id in dict.fromkeys(ids))
    return [{"role": "system", "content": reference}, *kept]


def _is_file(part: Any) -> bool:
    return isinstance(part, Mapping) and part.get("type") == "file" and "file" in part


def _collapsed(parts: list[dict[str, Any]]) -> Any:
    """One text part without a cache marker becomes a plain string."""
    if len(parts) == 1 and parts[0].get("type") == "text" and "cache_control" not in parts[0]:
        return parts[0]["text"]
    return parts


#: The text of a tool result whose media were moved to the next message.
MEDIA_FOLLOW = "(the result is in the next message)"


def _lift_tool_media(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Media parts of tool results, moved into a user message after the run of tool results.

    A tool message carries text only (the OpenAI convention the compatible mode follows:
    docs/service-facts.md, "Multimodal input"); vision models read the images from the user
    message that follows. A result that was only media says so (``MEDIA_FOLLOW``): the service
    takes no empty message.
    """
    if not any(_tool_media(message) for message in messages):
        return messages
    result: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for message in messages:
        if message.get("role") != "tool" and pending:
            result.append({"role": "user", "content": pending})
            pending = []
        media = _tool_media(message)
        if media:
            text = [part for part in message["content"] if part.get("type") == "text"]
            result.append({**message, "content": _collapsed(text) if text else MEDIA_FOLLOW})
            pending += media
        else:
            result.append(message)
    if pending:
        result.append({"role": "user", "content": pending})
    return result


def _tool_media(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if message.get("role") != "tool" or not isinstance(content, list):
        return []
    return [part for part in content if isinstance(part, dict) and part.get("type") != "text"]


def wire_tool_call(call_id: str | None, name: str | None, arguments: Any) -> dict[str, Any]:
    """A tool call of an assistant message in the history, as the service takes it.

    ``arguments`` is sent as given when it is a string (even one that is not JSON: it is what
    the model produced), JSON-encoded otherwise; no arguments are sent as ``"{}"``.
    """
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments or {}, ensure_ascii=False)
    return {
        "id": call_id or "",
        "type": "function",
        "function": {"name": name or "", "arguments": arguments or "{}"},
    }


def legacy_tool_call(raw: Any) -> dict[str, Any]:
    """A tool call kept in the OpenAI shape (a dict, or an SDK object with ``model_dump``)."""
    data = raw.model_dump() if hasattr(raw, "model_dump") else dict(raw)
    function = data.get("function") or {}
    return wire_tool_call(data.get("id"), function.get("name"), function.get("arguments"))


# --------------------------------------------------------------------------- answers


def first_choice(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The choice with index 0 of a completion or a chunk; None when the payload has none.

    Frameworks show one message, so only choice 0 is converted (and, when streaming with
    ``n > 1``, chunks of the other choices carry nothing for it).
    """
    for choice in payload.get("choices") or ():
        if (choice.get("index") or 0) == 0:
            return choice  # type: ignore[no-any-return]
    return None


def usage_counts(usage: Mapping[str, Any] | None) -> dict[str, int] | None:
    """Token counts of a wire ``usage``; None when there is none.

    Keys: ``prompt_tokens``, ``completion_tokens``, ``total_tokens`` (their sum when the
    service left it out), and ``cached_tokens`` / ``cache_creation_tokens`` (tokens read from,
    and written to, the context cache) / ``reasoning_tokens`` only when the service sent them
    (their ``*_details`` objects may be absent or null; docs/service-facts.md, "Context cache").
    """
    if not usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    total = usage.get("total_tokens")
    counts = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(total) if total is not None else prompt + completion,
    }
    cached = _detail(usage, "prompt_tokens_details", "cached_tokens")
    if cached is not None:
        counts["cached_tokens"] = cached
    created = _detail(usage, "prompt_tokens_details", "cache_creation_input_tokens")
    if created is not None:
        counts["cache_creation_tokens"] = created
    reasoning = _detail(usage, "completion_tokens_details", "reasoning_tokens")
    if reasoning is not None:
        counts["reasoning_tokens"] = reasoning
    return counts


def _detail(usage: Mapping[str, Any], group: str, name: str) -> int | None:
    details = usage.get(group)
    value = details.get(name) if isinstance(details, Mapping) else None
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def parse_tool_arguments(arguments: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """The arguments object of a finished tool call; ``{}`` for a tool without parameters.

    Raises ``ValueError`` when the text is not a JSON object: a finished call is never
    repaired (control characters inside strings are tolerated, as models emit them).
    """
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if arguments is None or not arguments.strip():
        return {}
    value = json.loads(arguments, strict=False)
    if not isinstance(value, dict):
        raise ValueError(f"the arguments are a JSON {type(value).__name__}, not an object")
    return value


def new_tool_call_id() -> str:
    """An id for a tool call the service sent without one (a tool result must name its call)."""
    return f"call_{uuid.uuid4().hex[:24]}"


def wire_tool_choice(choice: str | Mapping[str, Any]) -> Any:
    """The wire ``tool_choice``: ``auto``/``none``/``required`` as they are, a name as a function.

    ``"weather"``, ``{"name": "weather"}`` and ``{"type": "function", "function": {"name":
    "weather"}}`` all become the last form.
    """
    if isinstance(choice, str):
        return choice if choice in TOOL_CHOICE_STRINGS else _named_choice(choice)
    if not isinstance(choice.get("function"), Mapping) and isinstance(choice.get("name"), str):
        return _named_choice(choice["name"])
    return dict(choice)


def _named_choice(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}
