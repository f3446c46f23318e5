"""Deterministic text: token counts, streaming pieces, and the reply rules.

A token is a whitespace-separated word. A streamed piece is one word with the whitespace before
it, so the pieces of a text join back to the text and their number is its token count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

_PIECE = re.compile(r"\s*\S+")

REPLY_PREFIX = "You said: "
REASONING_PREFIX = "Let me think about: "
TOOL_RESULTS_PREFIX = "Tool results: "


def count_tokens(text: str) -> int:
    """Whitespace words in ``text``."""
    return len(text.split())


def split_pieces(text: str) -> list[str]:
    """``text`` as streamed pieces: each word with its leading whitespace; they join to ``text``."""
    pieces: list[str] = _PIECE.findall(text)
    used = sum(map(len, pieces))
    if used < len(text):
        if not pieces:
            return [text]
        pieces[-1] += text[used:]
    return pieces


def truncate(text: str, max_tokens: int | None) -> tuple[str, bool]:
    """The first ``max_tokens`` tokens of ``text``, and whether anything was cut."""
    if max_tokens is None or count_tokens(text) <= max_tokens:
        return text, False
    return "".join(split_pieces(text)[:max_tokens]), True


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to (not including) the earliest stop string, and whether one was found."""
    positions = [i for i in (text.find(stop) for stop in stops if stop) if i >= 0]
    if not positions:
        return text, False
    return text[: min(positions)], True


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or the text parts of a list joined by spaces."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_part_text(part) for part in content)
    return ""


def _part_text(part: Any) -> str:
    if isinstance(part, dict):
        text = part.get("text")
        return text if isinstance(text, str) else f"[{part.get('type', 'part')}]"
    return part if isinstance(part, str) else ""


def last_user_text(messages: Iterable[dict[str, Any]]) -> str:
    """The text of the last ``user`` message ("" when there is none)."""
    text = ""
    for message in messages:
        if message.get("role") == "user":
            text = content_text(message.get("content"))
    return text


def trailing_tool_results(messages: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(tool name, result text)`` of the ``tool`` messages that end the conversation."""
    names = _tool_call_names(messages)
    results: list[tuple[str, str]] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        call_id = message.get("tool_call_id")
        name = message.get("name") or names.get(str(call_id), "tool")
        results.append((str(name), content_text(message.get("content"))))
    return results[::-1]


def _tool_call_names(messages: Iterable[dict[str, Any]]) -> dict[str, str]:
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                names[str(call.get("id"))] = str(call["function"].get("name"))
    return names


def reply_text(messages: Sequence[dict[str, Any]]) -> str:
    """What the reply is about: the tool results that end the conversation, else the user's text."""
    results = trailing_tool_results(messages)
    if results:
        return TOOL_RESULTS_PREFIX + "; ".join(f"{name} returned {text}" for name, text in results)
    return REPLY_PREFIX + last_user_text(messages)


def choice_text(basis: str, index: int) -> str:
    """The reply of choice ``index``: the basis, with `` (choice N)`` appended after the first."""
    return basis if index == 0 else f"{basis} (choice {index + 1})"


def reasoning_text(messages: Sequence[dict[str, Any]]) -> str:
    """The reasoning of thinking models: ``"Let me think about: "`` + the user's last text."""
    return REASONING_PREFIX + last_user_text(messages)
