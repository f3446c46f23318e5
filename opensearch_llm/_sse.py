"""Incremental server-sent-events decoder: bytes in, events out. Pure; no I/O.

Follows the SSE specification where the service does, and tolerates what it has been seen to do
instead: ``data:`` with or without a space, frames with no blank line between them, bare JSON lines
without ``data:`` and a stream that ends without a final blank line.
"""

from __future__ import annotations

import codecs
import json
from typing import NamedTuple

_DONE = "[DONE]"


class SSEEvent(NamedTuple):
    """One dispatched event: its ``data`` (lines joined by newlines) and its ``event`` name."""

    data: str
    event: str = "message"


def is_done(data: str) -> bool:
    """Whether ``data`` is the end-of-stream marker ``[DONE]`` (in any case)."""
    return len(data) < 16 and data.strip().upper() == _DONE


class SSEDecoder:
    """Turns the bytes of an event stream, split anywhere, into complete events."""

    __slots__ = ("_data", "_event", "_text", "_utf8")

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._text = ""
        self._data: list[str] = []
        self._event = ""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events completed by ``chunk``."""
        text = self._text + self._utf8.decode(chunk)
        # A trailing CR may be the first half of a CRLF split across chunks: hold it back.
        held = "\r" if text.endswith("\r") else ""
        if held:
            text = text[:-1]
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        last_nl = text.rfind("\n")
        if last_nl < 0:
            self._text = text + held
            return []
        self._text = text[last_nl + 1 :] + held
        return self._lines(text[:last_nl])

    def flush(self) -> list[SSEEvent]:
        """The events still pending when the stream ends (with or without a final blank line)."""
        text = self._text + self._utf8.decode(b"", final=True)
        self._text = ""
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        events = self._lines(text) if text else []
        event = self._dispatch()
        if event is not None:
            events.append(event)
        return events

    def _lines(self, block: str) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        for line in block.split("\n"):
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith("data:"):
            return self._data_line(line[6:] if line.startswith("data: ") else line[5:])
        if line[0] in "{[":
            return self._data_line(line)
        if line.startswith("event:"):
            self._event = line[6:].strip()
        return None

    def _data_line(self, value: str) -> SSEEvent | None:
        # Frames sent with no blank line between them: a complete JSON value (or [DONE]) already
        # pending is its own event, not the first line of a multi-line one.
        previous = self._dispatch() if self._data and _is_complete(self._data) else None
        self._data.append(value)
        return previous

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = ""
            return None
        data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
        event = SSEEvent(data, self._event or "message")
        self._data = []
        self._event = ""
        return event


def _is_complete(lines: list[str]) -> bool:
    text = "\n".join(lines)
    if is_done(text):
        return True
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
