"""Ray Data: ``ChatPredictor``, a callable class for ``ray.data.Dataset.map_batches``.

Each actor makes one predictor: one async chat client and one event loop, kept for every batch
the actor is given, with the online runner's controls (a window of ``concurrency`` requests in
flight that 429s narrow, rate limits, retries). Rows in (the CSV/Parquet columns: ``prompt`` or
``messages``, ``system``, ``model``, ``params``, ``custom_id``), the same rows out with the
result columns added (``RESULT_COLUMNS``: ``content``, usage, ``error_code``,
``error_message``...). Ray is not imported here: the class is plain Python.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from typing import Any

from opensearch_llm.batch._control import AdaptiveWindow, RateLimits
from opensearch_llm.batch._files import table_row
from opensearch_llm.batch._formats import RESULT_COLUMNS, BadRow, Row, result_columns
from opensearch_llm.batch._progress import Progress
from opensearch_llm.batch._runner import DEFAULT_BATCH_MAX_RETRIES, RowRunner, check_retries
from opensearch_llm.batch._summary import BatchSummary
from opensearch_llm.chat import AsyncChatClient

#: Requests in flight per actor at most.
DEFAULT_ACTOR_CONCURRENCY = 16


class ChatPredictor:
    """Answers the rows of a Ray Data batch with the chat API; for ``Dataset.map_batches``.

    ``model`` fills rows without one; ``concurrency`` bounds the requests in flight per actor;
    ``requests_per_minute`` / ``tokens_per_minute`` limit each actor (divide the account's
    limits by the number of actors); ``client_options`` go to
    :class:`~opensearch_llm.AsyncChatClient` (``api_key``, ``base_url``, ``region``...).
    A predictor pickles without its client and event loop: a copy makes its own.

    Example::

        ds = ray.data.read_parquet("questions.parquet")
        answers = ds.map_batches(
            ChatPredictor,
            fn_constructor_kwargs={"model": "qwen-plus", "concurrency": 16},
            concurrency=4,          # actors
            batch_size=64,
        )
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        concurrency: int = DEFAULT_ACTOR_CONCURRENCY,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        max_retries: int = DEFAULT_BATCH_MAX_RETRIES,
        **client_options: Any,
    ) -> None:
        self._options: dict[str, Any] = {
            "model": model,
            "concurrency": concurrency,
            "requests_per_minute": requests_per_minute,
            "tokens_per_minute": tokens_per_minute,
            "max_retries": max_retries,
            **client_options,
        }
        check_retries(max_retries)
        self._window = AdaptiveWindow(concurrency)  # checks concurrency now, not in the actor
        self._limits = RateLimits(requests_per_minute, tokens_per_minute)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: AsyncChatClient | None = None
        self._closer: weakref.finalize[Any, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"options": self._options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["options"])  # type: ignore[misc]

    def __repr__(self) -> str:
        shown = {k: v for k, v in self._options.items() if k in ("model", "concurrency")}
        return f"ChatPredictor({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def __call__(self, batch: Any) -> dict[str, list[Any]]:
        """The batch's columns (a dict of arrays, or a pandas DataFrame) with the results."""
        columns = _columns(batch)
        size = len(next(iter(columns.values()), []))
        model = self._options["model"]
        rows = [table_row({k: v[i] for k, v in columns.items()}, i + 1, model) for i in range(size)]
        lines = self._event_loop().run_until_complete(self._answer(rows))
        results = [result_columns(line) for line in lines]
        added = {name: [r[name] for r in results] for name in RESULT_COLUMNS if name not in columns}
        return {**columns, **added}

    def close(self) -> None:
        """Close the client and the event loop (done too when the predictor is collected)."""
        if self._closer is not None:
            self._closer()

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._clients: list[AsyncChatClient] = []
            self._closer = weakref.finalize(self, _shut, self._loop, self._clients)
        return self._loop

    async def _answer(self, rows: list[Row | BadRow]) -> list[dict[str, Any]]:
        if self._client is None:  # made in the loop that uses it
            client_options = {k: v for k, v in self._options.items() if k not in _RUN_OPTIONS}
            client_options.setdefault("max_connections", self._options["concurrency"])
            self._client = AsyncChatClient(**{**client_options, "max_retries": 0})
            self._clients.append(self._client)
        positions = {id(row): index for index, row in enumerate(rows)}
        lines: list[dict[str, Any]] = [{} for _ in rows]

        def keep(row: Row | BadRow, line: dict[str, Any]) -> None:
            lines[positions[id(row)]] = line

        summary = BatchSummary("")
        runner = RowRunner(
            self._client,
            keep,
            summary,
            Progress(summary, enabled=False),
            window=self._window,
            limits=self._limits,
            max_retries=self._options["max_retries"],
        )
        await runner.run(iter(rows), self._options["concurrency"])
        return lines


def _shut(loop: asyncio.AbstractEventLoop, clients: list[AsyncChatClient]) -> None:
    """Close a predictor's client in its loop, then the loop (it holds no reference to it)."""
    if not loop.is_closed() and not loop.is_running():
        for client in clients:
            loop.run_until_complete(client.aclose())
        loop.close()


_RUN_OPTIONS = ("model", "concurrency", "requests_per_minute", "tokens_per_minute", "max_retries")


def _columns(batch: Any) -> dict[str, list[Any]]:
    """A batch as plain lists: from a pandas DataFrame, or a dict of numpy arrays or lists."""
    if hasattr(batch, "to_dict") and hasattr(batch, "columns"):
        return {str(name): _plain(batch[name]) for name in batch.columns}
    if isinstance(batch, Mapping):
        return {str(name): _plain(values) for name, values in batch.items()}
    raise TypeError(f"a batch is a dict of columns or a pandas DataFrame, not {type(batch)!r}")


def _plain(values: Any) -> list[Any]:
    items = values.tolist() if hasattr(values, "tolist") else list(values)
    return [v.tolist() if hasattr(v, "tolist") else v for v in items]  # numpy values too
