"""The service's Batch API: upload the file, create the batch, poll it, download its results.

The asynchronous batch costs about half as much as online calls (docs/service-facts.md,
"Batch"). The core transport sends JSON POSTs only; this API also needs GET, DELETE and a
streamed multipart upload, so ``BatchAPIClient`` sends through httpx itself, with the core's
headers, error mapping (``_transport_httpx.map_httpx_error``, ``_bodies.decode_response``), size
limit (``max_response_bytes``), retry policy (``_retry``) and secrets masking: what the service
sends back (batch objects, result lines, errors) never shows the key. The result file is
written in the same format as the online runner's.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr

from opensearch_llm._bodies import decode_json, decode_response
from opensearch_llm._config import (
    DEFAULT_MAX_RETRIES,
    ClientConfig,
    Timeouts,
    make_config,
    resolve_api_key,
    resolve_base_url,
)
from opensearch_llm._errors import (
    NotFoundError,
    OpenSearchLLMError,
    RequestValidationError,
    ResponseDecodeError,
    _hidden,
    hide_secrets,
)
from opensearch_llm._retry import backoff_delay, retry_allowed
from opensearch_llm._senders import capped_join, declared_too_large, too_large
from opensearch_llm._transport import request_headers
from opensearch_llm._transport_httpx import map_httpx_error
from opensearch_llm.batch._files import (
    FinishedIds,
    ResultWriter,
    count_rows,
    finished_ids,
    journal_path,
    read_rows,
)
from opensearch_llm.batch._formats import (
    CHAT_URL,
    BadRow,
    Row,
    error_line,
    line_custom_id,
    normalised_line,
    request_line,
)
from opensearch_llm.batch._options import ONLINE_OPTIONS, refuse_options
from opensearch_llm.batch._progress import Progress
from opensearch_llm.batch._summary import BatchSummary

T = TypeVar("T")

#: Statuses after which a batch changes no more (docs/service-facts.md, "Batch").
FINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
DEFAULT_COMPLETION_WINDOW = "24h"
#: Seconds between polls: retrieving is limited to 1,000 calls a minute per account.
DEFAULT_POLL_SECONDS = 10.0
#: A batch file may hold at most this many requests (docs/service-facts.md, "Batch").
MAX_BATCH_REQUESTS = 50_000
#: Where a batch made by ``run_batch_api`` is remembered until its results are downloaded:
#: ``<output>.batch.json``.
STATE_SUFFIX = ".batch.json"


class BatchFailedError(OpenSearchLLMError):
    """The service refused a batch (``status: failed``): ``errors`` says why, line by line."""

    def __init__(self, batch: Mapping[str, Any]) -> None:
        self.batch = dict(batch)
        shown = "; ".join(failure_reasons(batch.get("errors"))[:5])
        super().__init__(f"Batch {batch.get('id')} failed: {shown or 'no reason given'}")


def failure_reasons(errors: Any) -> list[str]:
    """A failed batch's ``errors`` as text, one reason each: ``line 2: code: message``.

    Documented as ``{"data": [{"line", "code", "message"}]}``; a list, a text, or entries that
    are not objects are shown as they are.
    """
    if isinstance(errors, dict):
        errors = errors.get("data") if "data" in errors else [errors]
    if errors is None:
        return []
    if not isinstance(errors, list):
        return [str(errors)]
    return [_reason(entry) for entry in errors]


def _reason(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    line = entry.get("line")
    parts = [f"line {line}" if line is not None else None, entry.get("code"), entry.get("message")]
    return ": ".join(str(part) for part in parts if part is not None)


class BatchAPIClient:
    """The Batch API (files and batches, OpenAI-compatible), synchronous.

    Takes the chat client's ``api_key``, ``base_url`` (the compatible-mode base, e.g.
    ``https://dashscope-intl.aliyuncs.com/compatible-mode/v1``), ``region``, ``timeout``,
    ``max_retries``, ``default_headers`` and ``max_response_bytes`` (for a JSON answer, and for
    each line of a result file).

    Example::

        with BatchAPIClient(region="singapore") as api:
            file = api.upload("requests.jsonl")
            batch = api.create(file["id"])
            print(api.retrieve(batch["id"])["status"])
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        base_url: str | None = None,
        region: str | None = None,
        timeout: float | Timeouts | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        max_response_bytes: int | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._config: ClientConfig = make_config(
            resolve_api_key(api_key),
            resolve_base_url(base_url, region),
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
            max_response_bytes=max_response_bytes,
        )
        timeouts = self._config.timeouts
        self._http = http_client or httpx.Client(
            timeout=httpx.Timeout(timeouts.read, connect=timeouts.connect)
        )
        # A client dropped without close() closes the pool it made when collected, as the
        # core's transports do (_transport_httpx).
        self._release = None if http_client else weakref.finalize(self, self._http.close)
        self._headers = request_headers(self._config)

    def __repr__(self) -> str:
        return f"BatchAPIClient(base_url={self._config.base_url!r})"

    def __enter__(self) -> BatchAPIClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (unless ``http_client`` was passed in)."""
        if self._release is not None:
            self._release()

    def upload(self, path: str | Path, purpose: str = "batch") -> dict[str, Any]:
        """Upload a JSON Lines file (``POST /files``); the file object (``id``...)."""

        def send() -> httpx.Response:
            with open(path, "rb") as handle:  # opened per attempt: a retry sends it whole
                files = {"file": (Path(path).name, handle, "application/jsonl")}
                return self._send("POST", "/files", files=files, data={"purpose": purpose})

        return self._call(send)

    def create(
        self,
        input_file_id: str,
        *,
        endpoint: str = CHAT_URL,
        completion_window: str = DEFAULT_COMPLETION_WINDOW,
        metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create a batch from an uploaded file (``POST /batches``); the batch object.

        ``endpoint`` is the ``url`` of every line of the file.
        """
        body: dict[str, Any] = {
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": completion_window,
        }
        if metadata:
            body["metadata"] = dict(metadata)
        return self._call(lambda: self._send("POST", "/batches", json=body))

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        """The batch object: ``status``, ``request_counts``, ``output_file_id``..."""
        return self._call(lambda: self._send("GET", f"/batches/{_checked_id(batch_id)}"))

    def cancel(self, batch_id: str) -> dict[str, Any]:
        """Cancel a batch (``POST /batches/{id}/cancel``); requests already done stay done."""
        path = f"/batches/{_checked_id(batch_id)}/cancel"
        return self._call(lambda: self._send("POST", path))

    def delete_file(self, file_id: str) -> dict[str, Any]:
        """Delete a file (``DELETE /files/{id}``)."""
        return self._call(lambda: self._send("DELETE", f"/files/{_checked_id(file_id)}"))

    def file_lines(self, file_id: str) -> Iterator[dict[str, Any]]:
        """The JSON lines of a result file, streamed (``GET /files/{id}/content``)."""
        path = f"/files/{_checked_id(file_id)}/content"
        response = self._retrying(lambda: self._opened(path))
        limit = self._config.max_response_bytes
        try:
            pieces = response.iter_bytes()
            for number, line in enumerate(_capped_lines(pieces, limit, response.status_code), 1):
                if line.strip():
                    yield self._masked(_json_line(line, number))
        except httpx.HTTPError as error:
            raise self._hidden(map_httpx_error(error, self._url(path))) from error
        except OpenSearchLLMError as error:
            self._hidden(error)
            raise
        finally:
            response.close()

    # ------------------------------------------------------------------ HTTP

    def _url(self, path: str) -> str:
        return self._config.base_url + path

    def _send(self, method: str, path: str, **content: Any) -> httpx.Response:
        """The response once its head has arrived; its body is read by the caller."""
        headers = self._headers
        if "files" in content:  # httpx writes the multipart content type and its boundary
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        url = self._url(path)
        try:
            request = self._http.build_request(method, url, headers=headers, **content)
            return self._http.send(request, stream=True)
        except httpx.HTTPError as error:
            raise map_httpx_error(error, url) from error

    def _read(self, response: httpx.Response) -> bytes:
        """The body, at most ``max_response_bytes``; the response is closed."""
        limit = self._config.max_response_bytes
        try:
            if declared_too_large(response.headers, limit):
                raise too_large(response.status_code, limit)
            return capped_join(response.iter_bytes(), response.status_code, limit)
        except httpx.HTTPError as error:
            raise map_httpx_error(error, str(response.request.url)) from error
        finally:
            response.close()

    def _call(self, send: Callable[[], httpx.Response]) -> dict[str, Any]:
        def attempt() -> dict[str, Any]:
            response = send()
            content = self._read(response)
            body = decode_response(response.status_code, content, response.headers)
            if not isinstance(body, dict):
                raise ResponseDecodeError(
                    f"HTTP {response.status_code}: the body is not a JSON object",
                    status=response.status_code,
                    body=_shown(content),
                )
            return self._masked(body)

        return self._retrying(attempt)

    def _opened(self, path: str) -> httpx.Response:
        """A streamed response whose status is a success (an error status raises)."""
        response = self._send("GET", path)
        if response.status_code >= 300:
            decode_response(response.status_code, self._read(response), response.headers)
        return response

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """``attempt()``, retried as the core retries (``_retry``); errors keep no secret."""
        config = self._config
        for number in range(1, config.max_retries + 2):
            try:
                return attempt()
            except OpenSearchLLMError as error:
                self._hidden(error)
                if number > config.max_retries or not retry_allowed(error, config.max_retry_after):
                    raise
                delay = backoff_delay(
                    number,
                    getattr(error, "retry_after", None),
                    initial=config.backoff_initial,
                    maximum=config.backoff_max,
                )
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _hidden(self, error: OpenSearchLLMError) -> OpenSearchLLMError:
        hide_secrets(error, self._config.secrets)
        return error

    def _masked(self, value: dict[str, Any]) -> dict[str, Any]:
        """An answer of the service with every secret masked (a server may echo the key)."""
        masked: dict[str, Any] = _hidden(value, self._config.secrets)
        return masked


def _checked_id(value: str) -> str:
    if not isinstance(value, str) or not value or "/" in value or "?" in value:
        raise RequestValidationError("id", value, "a file or batch id such as batch_...")
    return value


def _capped_lines(pieces: Iterator[bytes], limit: int, status: int) -> Iterator[bytes]:
    """The lines of a body as they arrive; ``ResponseTooLargeError`` for a line over ``limit``."""
    pending: list[bytes] = []  # the start of a line not ended yet
    size = 0
    for piece in pieces:
        *ends, rest = piece.split(b"\n")
        for end in ends:
            if size + len(end) > limit:
                raise too_large(status, limit)
            yield b"".join([*pending, end])
            pending, size = [], 0
        pending.append(rest)
        size += len(rest)
        if size > limit:
            raise too_large(status, limit)
    if size:
        yield b"".join(pending)


def _json_line(line: bytes, number: int) -> dict[str, Any]:
    try:
        value = decode_json(line)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        message = f"line {number} of the result file is not a JSON object: {_shown(line)}"
        raise ResponseDecodeError(message, status=200, body=_shown(line))
    return value


def _shown(content: bytes, limit: int = 200) -> str:
    text = content.decode("utf-8", "replace")
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- a whole run


def batch_progress(batch: Mapping[str, Any]) -> tuple[int, int]:
    """Requests done (completed or failed) and in all, from a batch's ``request_counts``."""
    counts = batch.get("request_counts") or {}
    done = int(counts.get("completed") or 0) + int(counts.get("failed") or 0)
    return done, int(counts.get("total") or 0)


class BatchFile:
    """The rows of one batch file: one ``url``, one model, ``MAX_BATCH_REQUESTS`` at most.

    The service's rules: docs/service-facts.md, "Batch".
    """

    def __init__(self, input: str | Path) -> None:
        self.input = str(input)
        self.count = 0
        self._first: Row | None = None

    @property
    def endpoint(self) -> str:
        """The ``url`` of the rows: the batch's ``endpoint``."""
        return self._first.url if self._first else CHAT_URL

    def add(self, row: Row) -> None:
        """Count ``row``; a ``RequestValidationError`` naming it if it does not fit the file."""
        first = self._first = self._first or row
        for name, mine, theirs in (
            ("url", row.url, first.url),
            ("model", row.body.get("model"), first.body.get("model")),
        ):
            if mine != theirs:
                allowed = f"{theirs!r} (the {name} of row {first.custom_id}): one per batch file"
                raise RequestValidationError(
                    f"row {row.custom_id}: {name}", mine, allowed, f"Split the file by {name}."
                )
        self.count += 1
        if self.count > MAX_BATCH_REQUESTS:
            allowed = f"at most {MAX_BATCH_REQUESTS} requests per batch file"
            raise RequestValidationError("input", self.input, allowed, "Split the file.")


def write_request_file(
    input: str | Path,
    target: str | Path,
    done: FinishedIds,
    writer: ResultWriter,
    summary: BatchSummary,
    model: str | None,
) -> BatchFile:
    """Write the rows not yet in the output as Batch API lines, then bad rows to the output.

    Rows for two endpoints or two models, or too many rows, are refused (``BatchFile.add``)
    before anything is written to the output. Returns the ``BatchFile``: endpoint and count.
    """
    batch_file = BatchFile(input)
    with open(target, "wb") as handle:
        for row in read_rows(input, model):
            if isinstance(row, Row) and row.custom_id not in done:
                batch_file.add(row)
                handle.write(json.dumps(request_line(row), ensure_ascii=False).encode() + b"\n")
    for row in read_rows(input, model):  # read again rather than kept: the file was accepted
        if isinstance(row, BadRow) and row.custom_id not in done:
            line = error_line(row.custom_id, row.error)
            writer.write(line)
            summary.count(line)
    return batch_file


def submit(
    api: BatchAPIClient,
    input: str | Path,
    done: FinishedIds,
    writer: ResultWriter,
    summary: BatchSummary,
    *,
    model: str | None = None,
    completion_window: str = DEFAULT_COMPLETION_WINDOW,
) -> dict[str, Any] | None:
    """Upload the rows not in ``done`` and create their batch (None: nothing to send)."""
    fd, name = tempfile.mkstemp(suffix=".jsonl", dir=writer.journal.parent)
    os.close(fd)
    try:
        batch_file = write_request_file(input, name, done, writer, summary, model)
        summary.requests = batch_file.count
        if batch_file.count == 0:
            return None
        uploaded = api.upload(name)
    finally:
        os.unlink(name)
    return api.create(
        uploaded["id"], endpoint=batch_file.endpoint, completion_window=completion_window
    )


def wait(
    api: BatchAPIClient,
    batch: dict[str, Any],
    progress: Progress,
    summary: BatchSummary,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
) -> dict[str, Any]:
    """Poll until the batch reaches a final status; the progress bar follows its counts."""
    while batch.get("status") not in FINAL_STATUSES:
        time.sleep(poll_seconds)
        batch = api.retrieve(batch["id"])
        done, total = batch_progress(batch)
        progress.set(summary, summary.skipped + done, summary.skipped + total or None)
    if batch.get("status") == "failed":
        raise BatchFailedError(batch)
    return batch


def download(
    api: BatchAPIClient, batch: Mapping[str, Any], writer: ResultWriter, summary: BatchSummary
) -> None:
    """Append the output and error files' lines whose ``custom_id`` is not in the output yet."""
    done = finished_ids(writer.journal)
    for file_id in (batch.get("output_file_id"), batch.get("error_file_id")):
        if not file_id:
            continue
        for line in api.file_lines(file_id):
            custom_id = line_custom_id(line)
            if custom_id is None or custom_id in done:
                continue
            result = normalised_line(line)
            writer.write(result)
            summary.count(result)


def state_path(output: str | Path) -> Path:
    """Where the batch of a run into ``output`` is remembered: ``<output>.batch.json``."""
    return Path(str(output) + STATE_SUFFIX)


def run_batch_api(
    input: str | Path,
    output: str | Path,
    *,
    model: str | None = None,
    completion_window: str = DEFAULT_COMPLETION_WINDOW,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    progress: bool = True,
    **client_options: Any,
) -> BatchSummary:
    """Answer ``input`` through the Batch API: upload, create, poll, download into ``output``.

    The batch id is kept in ``<output>.batch.json`` until its results are written, so running
    it again after Ctrl-C goes on with the same batch instead of sending the rows twice; a
    batch that failed, or that the service no longer has, is forgotten, and the rows are sent
    again. The summary's ``status`` is the batch's final status: ``ok`` only when it completed
    with every row answered. ``client_options`` go to :class:`BatchAPIClient`.
    """
    refuse_options(client_options, ONLINE_OPTIONS, "via='online'")
    started = time.monotonic()
    with BatchAPIClient(**client_options) as api:
        done = finished_ids(journal_path(output))
        summary = BatchSummary(str(output), rows=count_rows(input), skipped=len(done))
        writer = ResultWriter(output)
        bar = Progress(summary, enabled=progress)
        try:
            state = state_path(output)
            batch = _resumed(api, state) or submit(
                api, input, done, writer, summary, model=model, completion_window=completion_window
            )
            if batch is not None:
                _finish(api, batch, state, writer, summary, bar, poll_seconds)
        finally:
            summary.seconds = time.monotonic() - started
            bar.close()
            writer.close()
    return summary


def _resumed(api: BatchAPIClient, state: Path) -> dict[str, Any] | None:
    """The batch remembered in ``state``; None, and forgotten, if it failed or is gone."""
    if not state.exists():
        return None
    try:
        batch: dict[str, Any] | None = api.retrieve(json.loads(state.read_text())["batch_id"])
    except (ValueError, KeyError, TypeError, NotFoundError):
        batch = None
    if batch is None or batch.get("status") == "failed":
        state.unlink()
        return None
    return batch


def _finish(
    api: BatchAPIClient,
    batch: dict[str, Any],
    state: Path,
    writer: ResultWriter,
    summary: BatchSummary,
    progress: Progress,
    poll_seconds: float,
) -> None:
    """Wait for ``batch`` and write its results, remembering it in ``state`` until then."""
    summary.batch_id = batch["id"]
    summary.requests = summary.requests or batch_progress(batch)[1]
    state.write_text(json.dumps({"batch_id": batch["id"]}))
    try:
        batch = wait(api, batch, progress, summary, poll_seconds)
    except BatchFailedError:
        state.unlink()  # a rerun sends the rows again, once the input is mended
        raise
    summary.status = batch.get("status")
    download(api, batch, writer, summary)
    state.unlink()
