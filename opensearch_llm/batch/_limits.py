"""How much one Batch API input file may hold: the client splits to it, the emulator checks it.

docs/service-facts.md, "Batch": at most 50,000 lines and 500 MB per file, 6 MB per line. The
service does not say whether a MB is 10⁶ or 2²⁰ bytes: the smaller reading is taken, so a file
the client makes fits either way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileLimits:
    """The most lines, bytes, and bytes per line (newline not counted) of one batch file."""

    lines: int
    bytes: int
    line_bytes: int


#: The service's limits (tests of splitting make the client use smaller ones).
BATCH_FILE_LIMITS = FileLimits(lines=50_000, bytes=500_000_000, line_bytes=6_000_000)
