"""Incremental server-sent-events decoder: bytes in, events out. Pure; no I/O.

Follows the SSE specification where the service does, and tolerates what it has been seen to do
instead: ``data:`` with or without a space, frames with no blank line between them, bare JSON lines
without ``data:`` and a stream that ends without a final blank line.
"""

from __future__ import annotations

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

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        # Whole lines are split off as bytes and decoded one by one: a newline byte never occurs
        # inside a multi-byte UTF-8 character, so no character is ever cut in two.
        self._buffer = b""
        self._data: list[str] = []
        self._event = ""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events completed by ``chunk``."""
        data = self._buffer + chunk if self._buffer else chunk
        # A trailing CR may be the first half of a CRLF split across chunks: hold it back.
        held = b"\r" if data.endswith(b"\r") else b""
        if held:
            data = data[:-1]
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        last_newline = data.rfind(b"\n")
        if last_newline < 0:
            self._buffer = data + held
            return []
        self._buffer = data[last_newline + 1 :] + held
        return self._lines(data[:last_newline].split(b"\n"))

    def flush(self) -> list[SSEEvent]:
        """The events still pending when the stream ends (with or without a final blank line)."""
        data, self._buffer = self._buffer, b""
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events = self._lines(data.split(b"\n")) if data else []
        event = self._dispatch()
        if event is not None:
            events.append(event)
        return events

    def _lines(self, lines: list[bytes]) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        for line in lines:
            if line.startswith(b"data:"):
                value = line[6:] if line[5:6] == b" " else line[5:]
                event = self._data_line(value.decode("utf-8", "replace"))
            elif not line:
                event = self._dispatch()
            else:
                event = self._other_line(line.decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
        return events

    def _other_line(self, line: str) -> SSEEvent | None:
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
    except (ValueError, RecursionError):
        return False
    return True
