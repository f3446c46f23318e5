"""Tool-call arguments as a dict, even while they are still streaming in. Pure.

A streamed ``function.arguments`` string grows fragment by fragment, so at any moment it may
end inside a string, after a colon or a comma, or with open braces. ``parse_arguments`` returns
the largest object the text so far describes, and ``{}`` when it describes none.
"""

from __future__ import annotations

import json
from typing import Any

_CLOSERS = {"{": "}", "[": "]"}


def parse_arguments(text: str | dict[str, Any] | None) -> dict[str, Any]:
    """The arguments object of a (possibly partial) JSON text; ``{}`` when there is none.

    Example: ``parse_arguments('{"city": "New Yo')`` is ``{"city": "New Yo"}``.
    """
    if isinstance(text, dict):
        return text
    if not text or not text.strip():
        return {}
    try:
        value = json.loads(text, strict=False)
    except ValueError:
        value = _parse_partial(text)
    return value if isinstance(value, dict) else {}


def _parse_partial(text: str) -> Any:
    """The value of the longest completable prefix of ``text``, or None."""
    stack, in_string, cuts = _scan(text)
    candidates = [_complete(text, stack, in_string)]
    # Fall back to cutting at a structural character (newest first): drops a half-written key
    # or literal such as ``{"a": 1, "b`` or ``{"a": tr``.
    for position, opened in reversed(cuts):
        candidates.append(_complete(text[:position], opened, False))
    for candidate in candidates:
        try:
            return json.loads(candidate, strict=False)
        except ValueError:
            continue
    return None


def _scan(text: str) -> tuple[list[str], bool, list[tuple[int, list[str]]]]:
    """Open containers, whether the text ends inside a string, and the cut points seen."""
    stack: list[str] = []
    cuts: list[tuple[int, list[str]]] = []
    in_string = escaped = False
    for position, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in _CLOSERS:
            stack.append(_CLOSERS[char])
            cuts.append((position + 1, list(stack)))
        elif char in "}]":
            if stack:
                stack.pop()
        elif char == ",":
            cuts.append((position, list(stack)))
    return stack, in_string, cuts


def _complete(prefix: str, stack: list[str], in_string: bool) -> str:
    """``prefix`` with its open string, dangling separator and containers closed."""
    text = prefix
    if in_string:
        # A trailing lone backslash would escape the closing quote.
        if _ends_with_escape(text):
            text = text[:-1]
        text += '"'
    text = text.rstrip()
    if text.endswith(":"):
        text += " null"
    elif text.endswith(","):
        text = text[:-1]
    return text + "".join(reversed(stack))


def _ends_with_escape(text: str) -> bool:
    backslashes = len(text) - len(text.rstrip("\\"))
    return backslashes % 2 == 1
