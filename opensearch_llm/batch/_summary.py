"""What a batch run did: rows, failures by error code, requests, tokens and wall time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opensearch_llm.batch._formats import line_error, line_usage


@dataclass
class BatchSummary:
    """What a batch run did: rows, failures by error code, requests, tokens and wall time."""

    output: str
    rows: int = 0
    skipped: int = 0
    succeeded: int = 0
    failed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    seconds: float = 0.0
    batch_id: str | None = None
    #: The Batch API batch's final status (``completed``, ``cancelled``, ``expired``...).
    status: str | None = None
    #: Failed rows of an earlier run sent again (``retry_failed``): not among ``skipped``.
    retried_failed: int = 0

    @property
    def missing(self) -> int:
        """Rows of the input with no result line (a batch cancelled or expired before them)."""
        return max(0, self.rows - self.skipped - self.succeeded - self.failed)

    @property
    def ok(self) -> bool:
        """Every row answered, none failed; a batch, if any, ``completed``."""
        return self.failed == 0 and self.missing == 0 and self.status in (None, "completed")

    def count(self, line: Mapping[str, Any]) -> None:
        """Add one result line."""
        error = line_error(line)
        if error is None:
            self.succeeded += 1
            usage = line_usage(line)
            self.prompt_tokens += usage.get("prompt_tokens", 0)
            self.completion_tokens += usage.get("completion_tokens", 0)
            self.total_tokens += usage.get("total_tokens", 0)
        else:
            self.failed += 1
            self.failures[error["code"]] += 1

    def __str__(self) -> str:
        done = self.succeeded + self.failed
        lines = [
            f"{done} rows done in {self.seconds:.1f}s: {self.succeeded} answered, "
            f"{self.failed} failed; {self.skipped} skipped (already in {self.output})"
            + (f"; {self.retried_failed} failed before, sent again" if self.retried_failed else ""),
            f"requests {self.requests} (retries {self.retries}, 429s {self.rate_limited}); "
            f"tokens {self.total_tokens} (prompt {self.prompt_tokens}, "
            f"completion {self.completion_tokens})",
        ]
        if self.batch_id:
            lines.append(f"batch {self.batch_id}" + (f": {self.status}" if self.status else ""))
        if self.missing:
            lines.append(f"{self.missing} rows without a result: run again to send them")
        lines += [f"  {code}: {n}" for code, n in self.failures.most_common()]
        return "\n".join(lines)
