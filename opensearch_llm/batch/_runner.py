"""The online runner: every row of a file through the async clients, resumable.

Chat rows go to the chat client, knowledge-llm rows to a knowledge client of their application
(made when a row first needs it), through one window, one rate limiter and one retry queue.

Workers take rows from the input as it is read and write each result line as it completes, so
memory does not grow with the rows, apart from 8 bytes per id already in the output: those rows
are skipped. Retries follow the core's policy (``_retry``: which errors, how long to wait) but
are run here, not in the client, so that a 429 can narrow the window and a row waiting for its
retry does not hold a worker: it waits in a queue while the workers go on with other rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from opensearch_llm._config import (
    DEFAULT_MAX_RETRY_AFTER,
    KNOWLEDGE_APP_ENV_VAR,
    KNOWLEDGE_HOST_ENV_VAR,
    KNOWLEDGE_OPTION_NAMES,
)
from opensearch_llm._errors import (
    OpenSearchLLMError,
    RateLimitError,
    RequestValidationError,
    hide_secrets,
)
from opensearch_llm._retry import backoff_delay, retry_allowed
from opensearch_llm.batch._control import AdaptiveWindow, RateLimits
from opensearch_llm.batch._files import (
    FinishedIds,
    ResultWriter,
    count_rows,
    drop_lines,
    finished_ids,
    journal_path,
    read_rows,
)
from opensearch_llm.batch._formats import (
    CHAT_URL,
    ONLINE_ENDPOINTS,
    RUN_APP,
    BadRow,
    Row,
    chat_arguments,
    error_line,
    estimated_tokens,
    knowledge_app,
    knowledge_arguments,
    line_custom_id,
    line_usage,
    result_line,
    retried_on_rerun,
)
from opensearch_llm.batch._options import BATCH_API_OPTIONS, refuse_options
from opensearch_llm.batch._progress import Progress
from opensearch_llm.batch._summary import BatchSummary
from opensearch_llm.chat import AsyncChatClient
from opensearch_llm.knowledge import AsyncKnowledgeClient, KnowledgeAuth, KnowledgeResult

#: Requests in flight at most (the window starts there; 429s narrow it).
DEFAULT_CONCURRENCY = 32
#: Retries of one row. A batch runs unattended for hours: it waits out more than a call would.
DEFAULT_BATCH_MAX_RETRIES = 6


@dataclass(order=True)
class _Retry:
    due: float
    order: int
    row: Row = field(compare=False)
    attempt: int = field(compare=False)


class _Queue:
    """Rows to send: retries whose time has come first, then the input, as it is read."""

    def __init__(self, rows: Iterator[Row | BadRow]) -> None:
        self._rows = rows
        self._retries: list[_Retry] = []
        self._order = itertools.count()
        self._working = 0  # rows taken and not yet finished: each may come back as a retry
        self._changed = asyncio.Event()  # a row finished or was queued for a retry

    def later(self, row: Row, attempt: int, delay: float) -> None:
        """Send ``row`` again (its attempt ``attempt``) in ``delay`` seconds."""
        due = time.monotonic() + delay
        heapq.heappush(self._retries, _Retry(due, next(self._order), row, attempt))
        self._changed.set()

    def finished(self) -> None:
        """A row taken from this queue is done (or waits here as a retry)."""
        self._working -= 1
        self._changed.set()

    async def next(self) -> tuple[Row | BadRow, int] | None:
        """The next row and its attempt number; None when every row is done."""
        while True:
            if self._retries and self._retries[0].due <= time.monotonic():
                retry = heapq.heappop(self._retries)
                return self._take(retry.row, retry.attempt)
            row = next(self._rows, None)
            if row is not None:
                return self._take(row, 1)
            if not self._retries and self._working == 0:
                self._changed.set()  # the other idle workers see it too
                return None
            # Input read, rows in flight: wait for one to finish or for the next retry's time.
            self._changed.clear()
            wait = self._retries[0].due - time.monotonic() if self._retries else None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)

    def _take(self, row: Row | BadRow, attempt: int) -> tuple[Row | BadRow, int]:
        self._working += 1
        return row, attempt


#: Where a run puts each row's result line.
Sink = Callable[[Row | BadRow, dict[str, Any]], None]


class KnowledgeClients:
    """A run's knowledge-llm clients, one per application, made when a row first needs one.

    So a run without knowledge-llm rows needs no host. ``host`` (else
    ``OPENSEARCH_LLM_KNOWLEDGE_HOST``) and ``app`` (else ``OPENSEARCH_LLM_APP``: for rows that
    leave the application to the run) are looked for then; a missing one fails those rows,
    naming it. ``auth`` is :class:`~opensearch_llm.AsyncKnowledgeClient`'s (the API key, or
    AccessKey signing); ``options`` are the chat client's: the connection options are shared.
    """

    def __init__(
        self, host: str | None, app: str | None, auth: KnowledgeAuth, options: Mapping[str, Any]
    ) -> None:
        self._host = host
        self._app = app
        self._auth = auth
        shared = (*KNOWLEDGE_OPTION_NAMES, "http_client")
        self._options = {name: value for name, value in options.items() if name in shared}
        self._clients: dict[str, AsyncKnowledgeClient] = {}

    def client(self, app: str) -> AsyncKnowledgeClient:
        """The client of application ``app`` (``RUN_APP``: the run's application)."""
        name = _given("app", self._app, KNOWLEDGE_APP_ENV_VAR, _APP) if app == RUN_APP else app
        if name not in self._clients:
            host = _given("knowledge_host", self._host, KNOWLEDGE_HOST_ENV_VAR, _HOST)
            self._clients[name] = AsyncKnowledgeClient(
                host=host, app=name, auth=self._auth, **self._options
            )
        return self._clients[name]

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secrets of the clients made so far."""
        return tuple(s for client in self._clients.values() for s in client._config.secrets)

    async def aclose(self) -> None:
        """Close every client made."""
        for client in self._clients.values():
            await client.aclose()


def _given(name: str, value: str | None, env_var: str, what: str) -> str:
    """``value``, else ``env_var``'s; a ``RequestValidationError`` saying where to set it."""
    found = value or os.environ.get(env_var)
    if not found:
        flag = "--" + name.replace("_", "-")
        hint = f"Pass {name}=... ({flag}) or set {env_var}."
        raise RequestValidationError(name, value, what, hint)
    return found


_HOST = "the knowledge-llm host (the OpenSearch instance's endpoint)"
_APP = "the knowledge-llm application of rows that name none"


class RowRunner:
    """Rows through the clients: the controls, retries, and counts; results go to ``sink``.

    Without ``knowledge`` clients, knowledge-llm rows fail (each with its error line).
    """

    def __init__(
        self,
        client: AsyncChatClient,
        sink: Sink,
        summary: BatchSummary,
        progress: Progress,
        *,
        window: AdaptiveWindow,
        limits: RateLimits,
        max_retries: int,
        knowledge: KnowledgeClients | None = None,
    ) -> None:
        self.client = client
        self.knowledge = knowledge
        self.sink = sink
        self.summary = summary
        self.progress = progress
        self.window = window
        self.limits = limits
        self.max_retries = max_retries

    async def run(self, rows: Iterator[Row | BadRow], concurrency: int) -> None:
        """Answer every row, ``concurrency`` workers taking them as they are read.

        A row's failure is its result line; a failure that stops the run (the output cannot be
        written, Ctrl-C) cancels every worker before it is raised, so none writes after it.
        """
        queue = _Queue(rows)
        workers = [asyncio.ensure_future(self._work(queue)) for _ in range(concurrency)]
        try:
            await asyncio.gather(*workers)
        except BaseException:  # as _fanout.arun_all: no task outlives the call (no TaskGroup)
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise

    async def _work(self, queue: _Queue) -> None:
        while (taken := await queue.next()) is not None:
            row, attempt = taken
            try:
                try:
                    line = await self._attempt(row, attempt, queue)
                except Exception as error:  # not ours: it fails this row, not the run
                    line = self._unexpected(row, error)
                if line is not None:
                    self._record(row, line)
            finally:
                queue.finished()

    def _unexpected(self, row: Row | BadRow, error: Exception) -> dict[str, Any]:
        knowledge = self.knowledge.secrets if self.knowledge else ()
        hide_secrets(error, (*self.client._config.secrets, *knowledge))
        return error_line(row.custom_id, error)

    async def _attempt(
        self, row: Row | BadRow, attempt: int, queue: _Queue
    ) -> dict[str, Any] | None:
        """The result line of one attempt, or None when the row was queued for a retry."""
        if isinstance(row, BadRow):
            return error_line(row.custom_id, row.error)
        try:
            send, arguments, to_line = self._request(row)
        except RequestValidationError as error:
            return error_line(row.custom_id, error)
        estimate = estimated_tokens(row.body) if self.limits.counts_tokens else 0
        if self.limits.limited:
            await self.limits.before_request(estimate)
        sent_in = await self.window.acquire()
        try:
            line = to_line(await send(**arguments))
        except RequestValidationError as error:  # refused before sending
            return error_line(row.custom_id, error)
        except OpenSearchLLMError as error:
            self.summary.requests += 1
            return self._failed(row, attempt, error, sent_in, queue)
        finally:
            self.window.release()
        self.summary.requests += 1
        self.window.answered()
        if self.limits.counts_tokens:
            await self.limits.settle(estimate, line_usage(line).get("total_tokens", 0))
        return line

    def _request(self, row: Row) -> _Ask:
        """How to ask for ``row``'s answer, with its arguments checked now, and its line."""
        if row.url == CHAT_URL:
            return self.client.create, chat_arguments(row.body), partial(result_line, row.custom_id)
        app = knowledge_app(row.url)
        if app is None:
            raise RequestValidationError("url", row.url, ONLINE_ENDPOINTS)
        if self.knowledge is None:
            raise RequestValidationError("url", row.url, f"{CHAT_URL} (knowledge-llm: batch.run)")
        client = self.knowledge.client(app)
        return client.answer, knowledge_arguments(row.body), partial(_knowledge_line, row.custom_id)

    def _failed(
        self, row: Row, attempt: int, error: OpenSearchLLMError, sent_in: int, queue: _Queue
    ) -> dict[str, Any] | None:
        if isinstance(error, RateLimitError):
            self.summary.rate_limited += 1
            self.window.throttled(sent_in)
        if attempt > self.max_retries or not retry_allowed(error, DEFAULT_MAX_RETRY_AFTER):
            return error_line(row.custom_id, error)
        self.summary.retries += 1
        retry_after = getattr(error, "retry_after", None)
        queue.later(row, attempt + 1, backoff_delay(attempt, retry_after))
        return None

    def _record(self, row: Row | BadRow, line: dict[str, Any]) -> None:
        self.sink(row, line)
        self.summary.count(line)
        if self.progress.shown:
            self.progress.update(self.summary, self.window.allowed)


#: A row's request: the client's method, its keyword arguments, and the answer's result line.
_Ask = tuple[Callable[..., Awaitable[Any]], dict[str, Any], Callable[[Any], dict[str, Any]]]


def _knowledge_line(custom_id: str, result: KnowledgeResult) -> dict[str, Any]:
    return result_line(custom_id, result.raw, result.request_id)


async def arun(
    input: str | Path,
    output: str | Path,
    *,
    model: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    max_retries: int = DEFAULT_BATCH_MAX_RETRIES,
    progress: bool = True,
    retry_failed: bool = False,
    app: str | None = None,
    knowledge_host: str | None = None,
    **client_options: Any,
) -> BatchSummary:
    """Answer every row of ``input`` (chat or knowledge-llm); append result lines to ``output``.

    Rows whose ``custom_id`` is already in ``output`` are skipped, so running it again after
    a crash or Ctrl-C finishes the job without sending a finished row twice. With
    ``retry_failed``, failed rows are sent again (all but those the service refused as requests:
    ``retried_on_rerun``): their lines are first taken out of ``output``, which is rewritten
    atomically. ``model`` fills chat rows without one; ``client_options`` go to
    :class:`~opensearch_llm.AsyncChatClient` (``api_key``, ``base_url``, ``region``,
    ``timeout``...), and their connection options to the
    :class:`~opensearch_llm.AsyncKnowledgeClient` of knowledge-llm rows, with
    ``knowledge_host`` (else ``OPENSEARCH_LLM_KNOWLEDGE_HOST``) and ``app`` (else
    ``OPENSEARCH_LLM_APP``), the application of rows that name none. Returns the summary; rows
    that failed are in ``output`` with their error.

    Example::

        summary = await arun("in.jsonl", "out.jsonl", model="qwen-plus", requests_per_minute=600)
        print(summary)
    """
    refuse_options(client_options, BATCH_API_OPTIONS, "via='batch-api'")
    window = AdaptiveWindow(concurrency)
    limits = RateLimits(requests_per_minute, tokens_per_minute)
    check_retries(max_retries)
    started = time.monotonic()
    auth = client_options.pop("auth", "bearer")  # knowledge-llm's; chat takes the key only
    client_options = {"max_connections": concurrency, **client_options, "max_retries": 0}
    async with contextlib.AsyncExitStack() as closing:
        client = AsyncChatClient(**client_options)  # checked before the output is touched
        closing.push_async_callback(client.aclose)
        knowledge = KnowledgeClients(knowledge_host, app, auth, client_options)
        closing.push_async_callback(knowledge.aclose)
        rows_in_input = await asyncio.to_thread(count_rows, input)
        journal = journal_path(output)
        retried = await asyncio.to_thread(_drop_retried, journal, input) if retry_failed else 0
        done = await asyncio.to_thread(finished_ids, journal)
        summary = BatchSummary(
            str(output), rows=rows_in_input, skipped=len(done), retried_failed=retried
        )
        rows = read_rows(input, model)
        if done:
            rows = (row for row in rows if row.custom_id not in done)
        writer = ResultWriter(output)
        closing.push_async_callback(asyncio.to_thread, writer.close)  # writes a CSV or Parquet
        bar = Progress(summary, enabled=progress)
        closing.callback(bar.close)
        closing.callback(lambda: setattr(summary, "seconds", time.monotonic() - started))
        runner = RowRunner(
            client,
            lambda row, line: writer.write_soon(line),
            summary,
            bar,
            window=window,
            limits=limits,
            max_retries=max_retries,
            knowledge=knowledge,
        )
        await runner.run(rows, concurrency)
    return summary


def _drop_retried(journal: Path, input: str | Path) -> int:
    """Take out of ``journal`` the failed lines a rerun sends again, of rows still in ``input``."""
    in_input = FinishedIds(row.custom_id for row in read_rows(input, None))
    return drop_lines(
        journal, lambda line: retried_on_rerun(line) and line_custom_id(line) in in_input
    )


def run(input: str | Path, output: str | Path, **options: Any) -> BatchSummary:
    """:func:`arun`, from synchronous code (on its own event loop; in a thread when one runs).

    ``via="batch-api"`` sends the file through the service's Batch API instead
    (:func:`opensearch_llm.batch.run_batch_api`).

    Unlike the core's sync clients, which have sync shells of their own, this runs the async
    runner, on purpose: one runner, one rate limiter and one adaptive window to get right, and
    it works in Jupyter, where a loop already runs (the job then gets a thread of its own).
    """
    via = options.pop("via", "online")
    if via == "batch-api":
        from opensearch_llm.batch._api import run_batch_api

        return run_batch_api(input, output, **options)
    if via != "online":
        raise RequestValidationError("via", via, "online or batch-api")
    return _run_sync(arun(input, output, **options))


def _run_sync(job: Coroutine[Any, Any, BatchSummary]) -> BatchSummary:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(job)
    # A loop runs in this thread (Jupyter): the job gets a loop of its own in another thread.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="opensearch-llm-batch") as pool:
        return pool.submit(asyncio.run, job).result()


def check_retries(max_retries: int) -> None:
    """Refuse a ``max_retries`` that is not an integer >= 0."""
    if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
        raise RequestValidationError("max_retries", max_retries, "an integer >= 0")
