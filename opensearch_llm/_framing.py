"""One incremental framer for every stream (chat SSE and knowledge-llm): bytes in, frames out.

Pure; no I/O; linear in the bytes received. It follows the SSE specification where the service
does, and tolerates, with one set of rules for both APIs, what the service has been seen to do
instead (see ``docs/service-facts.md``, streams):

- ``data:`` with or without a space; lines ended by LF, CRLF or CR (also when a CRLF is split
  between two reads); a UTF-8 character or byte order mark split between reads; a body that
  ends without a blank line;
- frames with no blank line between them: a ``data:`` line that arrives while the pending data
  is already a whole JSON value (or ``[DONE]``) starts a new frame;
- bare JSON lines without ``data:``, and JSON values spread over several lines (a line that is
  no SSE field continues the pending data while that data is an unfinished JSON value);
- ``event:`` names (kept on the frame), ``id:``, ``retry:`` and ``:`` comment lines.

Any other line is ignored, as the SSE specification says of unknown fields (chat did so
before; knowledge-llm used to refuse such lines): a stream that yields no frame at all is still
an error, raised by either decoder at its end. Several JSON values back to back in one frame
(``{..}{..}``, ``data: {..}data: {..}``) are split by ``_bodies.parse_event_data``. A line still
without its end, or one frame's data lines, over ``max_event_bytes`` bytes raises
``ResponseTooLargeError``: nothing is buffered without bound.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from opensearch_llm._config import DEFAULT_MAX_EVENT_BYTES
from opensearch_llm._errors import ResponseTooLargeError

_DONE = "[DONE]"
_BOM = b"\xef\xbb\xbf"
# Outside a JSON string only brackets and quotes matter; inside one, quotes and backslashes.
_STRUCTURE = re.compile(r'["{}\[\]]')
_IN_STRING = re.compile(r'["\\]')


class Frame(NamedTuple):
    """One dispatched frame: its ``data`` (lines joined by newlines) and its ``event`` name."""

    data: str
    event: str = "message"


def is_done(data: str) -> bool:
    """Whether ``data`` is the end-of-stream marker ``[DONE]`` (in any case)."""
    return len(data) < 16 and data.strip().upper() == _DONE


class _JsonScan:
    """Where a JSON text stands after the lines seen so far: inside a string, how deep."""

    __slots__ = ("depth", "in_string", "json", "opened", "seen")

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = self.opened = False
        #: The text started with ``{`` or ``[`` (None: nothing but spaces so far).
        self.json: bool | None = None
        #: How many of the pending lines have been scanned.
        self.seen = 0

    def complete(self) -> bool:
        """Whether the lines scanned form whole JSON values (and nothing unfinished)."""
        return bool(self.json) and self.opened and self.depth == 0 and not self.in_string

    def scan(self, line: str) -> None:
        """Take in one more line of the text (each line is scanned once)."""
        self.seen += 1
        if self.json is None:
            stripped = line.lstrip()
            if not stripped:
                return
            self.json = stripped[0] in "{["
        if self.json:
            self._structure(line)

    def _structure(self, text: str) -> None:
        position = 0
        while True:
            pattern = _IN_STRING if self.in_string else _STRUCTURE
            match = pattern.search(text, position)
            if match is None:
                return
            char, position = match.group(), match.end()
            if self.in_string:
                if char == '"':
                    self.in_string = False
                else:
                    position += 1  # the escaped character
            elif char == '"':
                self.in_string = True
            else:
                self.opened = True
                self.depth += 1 if char in "{[" else -1


class Framer:
    """Turns the bytes of a stream, split anywhere, into complete frames."""

    __slots__ = (
        "_cr",
        "_data",
        "_event",
        "_head",
        "_partial",
        "_scan",
        "_size",
        "cut_short",
        "max_event_bytes",
    )

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        # Whole lines are split off as bytes and decoded one by one: a newline byte never occurs
        # inside a multi-byte UTF-8 character, so no character is ever cut in two.
        self._partial = bytearray()
        self._cr = False  # a CR ended the last read: it may be half of a CRLF
        #: The first bytes while they may still be a byte order mark (None: past the start).
        self._head: bytes | None = b""
        self._data: list[str] = []
        self._size = 0  # bytes of the pending data lines
        self._event = ""
        self._scan: _JsonScan | None = None
        self.max_event_bytes = max_event_bytes
        #: The body ended inside a JSON value (``flush`` dropped it).
        self.cut_short = False

    def feed(self, chunk: bytes) -> list[Frame]:
        """The frames completed by ``chunk``."""
        lines = self._normalised(chunk).split(b"\n")
        rest = lines.pop()  # the start of a line still without its end
        if not lines:
            self._partial += rest
            self._check_line()
            return []
        if self._partial:
            self._partial += lines[0]
            lines[0] = bytes(self._partial)
        self._partial = bytearray(rest)
        self._check_line()
        return self._lines(lines)

    def flush(self) -> list[Frame]:
        """The frames still pending when the stream ends (with or without a final blank line).

        A JSON value the body ended inside of is dropped, and ``cut_short`` says so.
        """
        rest, self._partial, self._cr = bytes(self._partial), bytearray(), False
        frames = self._lines(rest.split(b"\n")) if rest else []
        if self._data and self._unfinished():
            self.cut_short = True
            self._data, self._size, self._scan = [], 0, None
        if self._data:
            frames.append(self._dispatch())
        return frames

    def _normalised(self, chunk: bytes) -> bytes:
        if self._head is not None:
            chunk = self._without_bom(chunk)
        if self._cr:
            chunk, self._cr = b"\r" + chunk, False
        if chunk.endswith(b"\r"):
            chunk, self._cr = chunk[:-1], True
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        return chunk

    def _without_bom(self, chunk: bytes) -> bytes:
        # A byte order mark may itself be split between the first reads: hold its first bytes.
        head = self._head + chunk if self._head else chunk
        if len(head) < len(_BOM) and _BOM.startswith(head):
            self._head = head
            return b""
        self._head = None
        return head.removeprefix(_BOM)

    def _check_line(self) -> None:
        if len(self._partial) > self.max_event_bytes:
            self._partial = bytearray()
            raise ResponseTooLargeError(
                "a stream line", limit=self.max_event_bytes, setting="max_event_bytes"
            )

    def _lines(self, lines: list[bytes]) -> list[Frame]:
        frames: list[Frame] = []
        for line in lines:
            if not line:
                if self._data:
                    frames.append(self._dispatch())
                else:
                    self._event = ""
            elif line.startswith(b"data:"):
                self._data_line(line[6:] if line[5:6] == b" " else line[5:], frames)
            else:
                self._other_line(line, frames)
        return frames

    def _other_line(self, line: bytes, frames: list[Frame]) -> None:
        if line[0] in b"{[":
            self._data_line(line, frames)
        elif line.startswith(b"event:"):
            self._event = line[6:].decode("utf-8", "replace").strip()
        elif self._data and not line.startswith((b":", b"id:", b"retry:")) and self._unfinished():
            self._append(line)  # a JSON value spread over several lines

    def _data_line(self, value: bytes, frames: list[Frame]) -> None:
        # Frames sent with no blank line between them: a whole JSON value (or [DONE]) already
        # pending is its own frame, not the first line of a multi-line one.
        if self._data and self._is_whole():
            frames.append(self._dispatch())
        self._append(value)

    def _append(self, value: bytes) -> None:
        self._size += len(value) + 1
        if self._size > self.max_event_bytes:
            self._data, self._size, self._scan = [], 0, None
            raise ResponseTooLargeError(
                "a stream frame", limit=self.max_event_bytes, setting="max_event_bytes"
            )
        self._data.append(value.decode("utf-8", "replace"))

    def _scanned(self) -> _JsonScan:
        # Only frames of several lines are scanned, and each of their lines only once.
        scan = self._scan = self._scan or _JsonScan()
        for line in self._data[scan.seen :]:
            scan.scan(line)
        return scan

    def _is_whole(self) -> bool:
        if len(self._data) == 1 and is_done(self._data[0]):
            return True
        return self._scanned().complete()

    def _unfinished(self) -> bool:
        scan = self._scanned()
        return bool(scan.json) and not scan.complete()

    def _dispatch(self) -> Frame:
        """The pending data as a frame (there is some), which is then cleared."""
        data = self._data
        frame = Frame(data[0] if len(data) == 1 else "\n".join(data), self._event or "message")
        self._data = []
        self._event = ""
        self._size = 0
        self._scan = None
        return frame
