"""The progress bar of a batch: rows done, failed, tokens and their rate (tqdm; Jupyter too)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opensearch_llm.batch._summary import BatchSummary

#: Seconds between updates of the bar's counts (tqdm refreshes its rate on its own).
REFRESH_SECONDS = 0.5


class Progress:
    """A tqdm bar over a batch's rows, or nothing when disabled."""

    def __init__(self, summary: BatchSummary, *, enabled: bool = True) -> None:
        self._bar: Any = None
        self._started = time.monotonic()
        self._shown = 0.0
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=summary.rows,
                initial=summary.skipped,
                unit="row",
                dynamic_ncols=True,
                smoothing=0.05,
            )

    @property
    def shown(self) -> bool:
        """Whether a bar is drawn."""
        return self._bar is not None

    def update(self, summary: BatchSummary, window: int | None = None, done: int = 1) -> None:
        """``done`` more rows finished; the counts shown at most every ``REFRESH_SECONDS``."""
        if self._bar is None:
            return
        self._bar.update(done)
        now = time.monotonic()
        if now - self._shown >= REFRESH_SECONDS:
            self._shown = now
            self._bar.set_postfix(self._counts(summary, window, now), refresh=False)

    def set(self, summary: BatchSummary, done: int, total: int | None = None) -> None:
        """Show ``done`` rows of ``total`` (a batch polled on the service)."""
        if self._bar is None:
            return
        if total is not None and total != self._bar.total:
            self._bar.total = total
        self._bar.n = done
        self._bar.set_postfix(self._counts(summary, None, time.monotonic()), refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.close()

    def _counts(self, summary: BatchSummary, window: int | None, now: float) -> dict[str, Any]:
        elapsed = max(now - self._started, 1e-9)
        counts: dict[str, Any] = {
            "failed": summary.failed,
            "tokens": summary.total_tokens,
            "tok/s": round(summary.total_tokens / elapsed),
        }
        if window is not None:
            counts["window"] = window
        return counts
