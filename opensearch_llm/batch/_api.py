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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

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
    refuse_batch_api_row,
    request_line,
)
from opensearch_llm.batch._limits import BATCH_FILE_LIMITS, FileLimits
from opensearch_llm.batch._options import ONLINE_OPTIONS, refuse_options
from opensearch_llm.batch._progress import Progress
from opensearch_llm.batch._summary import BatchSummary

T = TypeVar("T")

#: Statuses after which a batch changes no more (docs/service-facts.md, "Batch").
FINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
DEFAULT_COMPLETION_WINDOW = "24h"
#: Seconds between polls: retrieving is limited to 1,000 calls a minute per account.
DEFAULT_POLL_SECONDS = 10.0
#: The most batches one list call returns (docs/service-facts.md, "Batch").
MAX_LIST_LIMIT = 100
#: Where the batches made by ``run_batch_api`` are remembered until their results are
#: downloaded: ``<output>.batch.json`` (``RunState``).
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

    def find_batch(self, input_file_id: str) -> dict[str, Any] | None:
        """The latest batch made from ``input_file_id``, among the 100 latest (``GET /batches``)."""
        query = {"input_file_ids": _checked_id(input_file_id), "limit": MAX_LIST_LIMIT}
        listing = self._call(lambda: self._send("GET", "/batches", params=query))
        for batch in listing.get("data") or []:  # the filter is checked: the service may ignore it
            if isinstance(batch, dict) and batch.get("input_file_id") == input_file_id:
                return batch
        return None

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


# --------------------------------------------------------------------------- batch files


def batch_progress(batch: Mapping[str, Any]) -> tuple[int, int]:
    """Requests done (completed or failed) and in all, from a batch's ``request_counts``."""
    counts = batch.get("request_counts") or {}
    done = int(counts.get("completed") or 0) + int(counts.get("failed") or 0)
    return done, int(counts.get("total") or 0)


def request_bytes(row: Row, limits: FileLimits) -> bytes:
    """``row`` as a line of a batch file; a ``RequestValidationError`` naming it if too long."""
    line = json.dumps(request_line(row), ensure_ascii=False).encode()
    if len(line) > limits.line_bytes:
        allowed = f"at most {limits.line_bytes} bytes per line of a batch file"
        raise RequestValidationError(
            f"row {row.custom_id}", f"{len(line)} bytes", allowed, "Shorten it, or send it online."
        )
    return line + b"\n"


def checked_endpoint(rows: Iterable[Row | BadRow], limits: FileLimits) -> str:
    """The ``url`` the rows share, the batches' ``endpoint``, once every row is checked.

    The rows are the Batch API's (no knowledge-llm rows), name a model and share one ``url``
    and one model, and each line fits ``limits.line_bytes`` (docs/service-facts.md, "Batch");
    a ``RequestValidationError`` names a row that does not.
    """
    first: Row | None = None
    for row in rows:
        if isinstance(row, BadRow):
            continue
        refuse_batch_api_row(row)
        if not row.body.get("model"):
            raise RequestValidationError(
                f"row {row.custom_id}: model", None, "a model name", "Pass model=... (--model)."
            )
        first = first or row
        for name, mine, theirs in (
            ("url", row.url, first.url),
            ("model", row.body.get("model"), first.body.get("model")),
        ):
            if mine != theirs:
                allowed = f"{theirs!r} (the {name} of row {first.custom_id}): one per batch file"
                raise RequestValidationError(
                    f"row {row.custom_id}: {name}", mine, allowed, f"Split the file by {name}."
                )
        request_bytes(row, limits)
    return first.url if first else CHAT_URL


def split_files(
    lines: Iterable[tuple[str, bytes]], directory: Path, stem: str, limits: FileLimits
) -> Iterator[tuple[Path, list[str]]]:
    """``(custom_id, line)``s written into batch files within ``limits``: each file's path and ids.

    The files are ``<directory>/<stem>-1.jsonl``, ``-2``...; each is yielded as soon as it is
    full, before the next one is begun.
    """
    number, size = 0, 0
    ids: list[str] = []
    handle: BinaryIO | None = None
    try:
        for custom_id, line in lines:
            if handle is not None and (len(ids) == limits.lines or size + len(line) > limits.bytes):
                handle.close()
                yield Path(handle.name), ids
                handle = None
            if handle is None:
                number += 1
                handle = open(directory / f"{stem}-{number}.jsonl", "wb")  # noqa: SIM115
                ids, size = [], 0
            handle.write(line)
            ids.append(custom_id)
            size += len(line)
        if handle is not None:
            handle.close()
            yield Path(handle.name), ids
    finally:
        if handle is not None:
            handle.close()


def download(
    api: BatchAPIClient,
    batch: Mapping[str, Any],
    writer: ResultWriter,
    summary: BatchSummary,
    done: FinishedIds | None = None,
) -> int:
    """Append the output and error files' lines whose ``custom_id`` is not in ``done``.

    ``done``: the ids already in the output (read from it by default). Returns how many lines
    were left out as already there.
    """
    done = finished_ids(writer.journal) if done is None else done
    already = 0
    for file_id in (batch.get("output_file_id"), batch.get("error_file_id")):
        if not file_id:
            continue
        for line in api.file_lines(file_id):
            custom_id = line_custom_id(line)
            if custom_id is None:
                continue
            if custom_id in done:
                already += 1
                continue
            result = normalised_line(line)
            writer.write(result)
            summary.count(result)
    return already


# --------------------------------------------------------------------------- the state file


@dataclass
class Part:
    """One batch file of a run, as its ``RunState`` remembers it."""

    file_id: str | None
    batch_id: str | None = None
    endpoint: str = CHAT_URL
    #: The ids of the rows in the file; None for the batch of the single-batch state file of
    #: earlier versions, which holds every row not in the output.
    rows: FinishedIds | None = None
    #: The batch's final status once its results are written, or ``failed``/``gone``: forgotten.
    ended: str | None = None

    def holds(self, custom_id: str) -> bool:
        """Whether the row ``custom_id`` may be in this part's batch."""
        return self.rows is None or custom_id in self.rows

    def key(self) -> dict[str, str]:
        """The field naming this part in the lines of the state file."""
        return {"file_id": self.file_id} if self.file_id else {"batch_id": str(self.batch_id)}


class RunState:
    """The batch files of a run into one output, remembered in ``<output>.batch.json``.

    JSON Lines, appended, each line synced to disk before the next step: ``{"file_id",
    "endpoint", "custom_ids"}`` once a file is uploaded, ``{"file_id", "batch_id"}`` once its
    batch is created, ``{"file_id", "ended": status}`` once the batch's results are written, or
    once it failed or vanished (``failed``, ``gone``: its rows may be sent again). The line
    ``{"batch_id"}`` of the single-batch state file of earlier versions is a batch holding every
    row not in the output. The file is removed once every batch in it has ended.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.parts: dict[str, Part] = {}
        for number, line in enumerate(self._lines(), 1):
            try:
                self._apply(json.loads(line))
            except (ValueError, TypeError, AttributeError):
                allowed = "the JSON Lines that batch runs write"
                hint = "Remove it to start afresh: the rows of the batches it names are sent again."
                raise RequestValidationError(
                    f"{path}: line {number}", _shown(line), allowed, hint
                ) from None

    def live(self) -> list[Part]:
        """The parts whose batch has not ended, in the order they were made."""
        return [part for part in self.parts.values() if part.ended is None]

    def uploaded(self, file_id: str, endpoint: str, custom_ids: list[str]) -> Part:
        """Remember the uploaded file ``file_id`` and the rows in it."""
        self._append({"file_id": file_id, "endpoint": endpoint, "custom_ids": custom_ids})
        return self.parts[file_id]

    def created(self, part: Part, batch_id: str) -> None:
        """Remember the batch made from ``part``'s file."""
        self._append({**part.key(), "batch_id": batch_id})

    def end(self, part: Part, status: str) -> None:
        """Remember that ``part``'s batch ended (results written, or failed, or vanished)."""
        self._append({**part.key(), "ended": status})

    def remove_if_ended(self) -> None:
        """Remove the file once no batch in it is left to wait for."""
        if not self.live():
            self.path.unlink(missing_ok=True)

    def _append(self, event: dict[str, Any]) -> None:
        with open(self.path, "ab") as handle:
            handle.write(json.dumps(event, ensure_ascii=False).encode() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        self._apply(event)

    def _apply(self, event: dict[str, Any]) -> None:
        key = event.get("file_id") or event.get("batch_id")
        if not isinstance(key, str):
            raise TypeError(key)
        part = self.parts.setdefault(key, Part(event.get("file_id")))
        if "custom_ids" in event:
            if not isinstance(event["custom_ids"], list):
                raise TypeError(event["custom_ids"])
            part.rows = FinishedIds(event["custom_ids"])
            part.endpoint = str(event.get("endpoint") or CHAT_URL)
        part.batch_id = event.get("batch_id", part.batch_id)
        part.ended = event.get("ended", part.ended)

    def _lines(self) -> list[bytes]:
        """The lines of the file, mended: a last line cut short by a crash is cut off.

        Its step is done again. The single-batch state, written without a newline, gets one.
        """
        if not self.path.exists():
            return []
        with open(self.path, "rb+") as handle:
            *lines, tail = handle.read().split(b"\n")
            if tail.strip():
                try:
                    json.loads(tail)
                except ValueError:
                    handle.truncate(handle.tell() - len(tail))
                else:
                    handle.write(b"\n")
                    lines.append(tail)
        return [line for line in lines if line.strip()]


def state_path(output: str | Path) -> Path:
    """Where the batches of a run into ``output`` are remembered: ``<output>.batch.json``."""
    return Path(str(output) + STATE_SUFFIX)


# --------------------------------------------------------------------------- a whole run


@dataclass
class _Waiting:
    """A batch a run waits for: its part, its latest batch object, its lines if known."""

    part: Part
    batch: dict[str, Any]
    lines: int = 0


class _Run:
    """The batches of a run: made or resumed, polled, their results written as each ends."""

    def __init__(
        self,
        api: BatchAPIClient,
        state: RunState,
        writer: ResultWriter,
        summary: BatchSummary,
        done: FinishedIds,
        progress: Progress,
    ) -> None:
        self.api, self.state, self.writer, self.summary = api, state, writer, summary
        self.done, self.progress = done, progress
        self.waiting: list[_Waiting] = []
        self.failures: list[BatchFailedError] = []
        self.bad_rows = 0
        #: Result lines downloaded but left out, their row being in the output already.
        self.already = 0

    def resume(self, completion_window: str) -> None:
        """Go on with the batches the state remembers; forget those that failed or vanished."""
        for part in self.state.live():
            batch = self._batch_of(part, completion_window)
            if batch is None or batch.get("status") == "failed":
                self.state.end(part, "gone" if batch is None else "failed")
            else:
                self.waiting.append(_Waiting(part, batch))

    def _batch_of(self, part: Part, completion_window: str) -> dict[str, Any] | None:
        if part.batch_id is None:  # uploaded; its batch may have been made as the run stopped
            file_id = str(part.file_id)
            batch = self.api.find_batch(file_id) or self.api.create(
                file_id, endpoint=part.endpoint, completion_window=completion_window
            )
            self.state.created(part, batch["id"])
            return batch
        try:
            return self.api.retrieve(part.batch_id)
        except NotFoundError:
            return None

    def submit(
        self, input: str | Path, model: str | None, completion_window: str, limits: FileLimits
    ) -> None:
        """Upload the rows in no batch and not in the output, a batch from each file as it goes.

        The files are within ``limits``; bad rows go to the output. Every row is checked first
        (``checked_endpoint``): nothing is written or sent if one is refused.
        """
        live = self.state.live()
        if any(part.rows is None for part in live):
            return  # the batch of the single-batch state holds every row not in the output

        def pending() -> Iterator[Row | BadRow]:
            for row in read_rows(input, model):
                taken = row.custom_id in self.done or any(p.holds(row.custom_id) for p in live)
                if not taken:
                    yield row

        endpoint = checked_endpoint(pending(), limits)
        journal = self.writer.journal
        with tempfile.TemporaryDirectory(prefix=journal.name + ".", dir=journal.parent) as temp:
            lines = self._request_lines(pending(), limits)
            for path, ids in split_files(lines, Path(temp), journal.stem, limits):
                file_id = self.api.upload(path)["id"]
                path.unlink()
                part = self.state.uploaded(file_id, endpoint, ids)
                batch = self.api.create(
                    file_id, endpoint=endpoint, completion_window=completion_window
                )
                self.state.created(part, batch["id"])
                self.waiting.append(_Waiting(part, batch, len(ids)))

    def _request_lines(
        self, rows: Iterable[Row | BadRow], limits: FileLimits
    ) -> Iterator[tuple[str, bytes]]:
        """The batch file lines of ``rows``; a bad row's error line goes to the output."""
        for row in rows:
            if isinstance(row, BadRow):
                line = error_line(row.custom_id, row.error)
                self.writer.write(line)
                self.summary.count(line)
                self.bad_rows += 1
            else:
                yield row.custom_id, request_bytes(row, limits)

    def finish(self, poll_seconds: float) -> None:
        """Poll the batches until every one has ended, writing each one's results as it ends.

        A batch that failed raises ``BatchFailedError`` once the others are written.
        """
        pending = [waiting for waiting in self.waiting if not self.ended(waiting)]
        self._show()
        while pending:
            time.sleep(poll_seconds)
            for waiting in list(pending):
                waiting.batch = self.api.retrieve(waiting.batch["id"])
                if self.ended(waiting):
                    pending.remove(waiting)
            self._show()
        if self.failures:
            raise self.failures[0]

    def ended(self, waiting: _Waiting) -> bool:
        """Whether the batch has ended; if it has, its results are written, and it is forgotten."""
        status = waiting.batch.get("status")
        if status not in FINAL_STATUSES:
            return False
        if status == "failed":  # forgotten: a rerun sends the rows again, once they are mended
            self.failures.append(BatchFailedError(waiting.batch))
        else:
            self.already += download(self.api, waiting.batch, self.writer, self.summary, self.done)
        self.state.end(waiting.part, str(status))
        return True

    def _show(self) -> None:
        """The progress bar: the sum of the batches' request counts."""
        done = total = 0
        for waiting in self.waiting:
            finished, requests = batch_progress(waiting.batch)
            done, total = done + finished, total + max(requests, waiting.lines)
        before = self.summary.skipped + self.bad_rows
        self.progress.set(self.summary, before + done, before + total or None)

    def summarise(self) -> None:
        """The batches' ids, their overall status, and their requests, into the summary."""
        if not self.waiting:
            return
        batches = [waiting.batch for waiting in self.waiting]
        statuses = {batch.get("status") for batch in batches}
        self.summary.batch_id = ", ".join(str(batch["id"]) for batch in batches)
        self.summary.status = next(
            (status for status in ("failed", "expired", "cancelled") if status in statuses),
            "completed",
        )
        self.summary.requests = sum(
            max(batch_progress(waiting.batch)[1], waiting.lines) for waiting in self.waiting
        )


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

    The rows not yet in ``output`` go up in as many batch files as the service's limits need
    (``BATCH_FILE_LIMITS``), a batch each; their results are written as each batch ends. The
    batches are remembered in ``<output>.batch.json`` (``RunState``) until their results are
    written, so running it again after Ctrl-C or a crash goes on with them instead of sending
    their rows twice; a batch that failed, or that the service no longer has, is forgotten, and
    its rows are sent again. The summary's ``status`` is the batches' final status (``cancelled``
    or ``expired`` if one was): ``ok`` only when all completed with every row answered.
    ``client_options`` go to :class:`BatchAPIClient`.
    """
    refuse_options(client_options, ONLINE_OPTIONS, "via='online'")
    started = time.monotonic()
    with BatchAPIClient(**client_options) as api:
        done = finished_ids(journal_path(output))
        summary = BatchSummary(str(output), rows=count_rows(input), skipped=len(done))
        state = RunState(state_path(output))
        writer = ResultWriter(output)
        bar = Progress(summary, enabled=progress)
        run = _Run(api, state, writer, summary, done, bar)
        try:
            run.resume(completion_window)
            run.submit(input, model, completion_window, BATCH_FILE_LIMITS)
            run.finish(poll_seconds)
        finally:
            run.summarise()
            state.remove_if_ended()
            summary.seconds = time.monotonic() - started
            bar.close()
            writer.close()
    return summary


def download_remembered(api: BatchAPIClient, output: str | Path) -> tuple[BatchSummary, list[str]]:
    """Write the results of the ended batches ``<output>.batch.json`` remembers into ``output``.

    Returns the summary (the rows of the batches written) and one line for each batch not
    written: still running, not made yet, or gone. A failed batch raises ``BatchFailedError``
    once the others are written.
    """
    state = RunState(state_path(output))
    summary = BatchSummary(str(output))
    writer = ResultWriter(output)
    done = finished_ids(writer.journal)
    run = _Run(api, state, writer, summary, done, Progress(summary, enabled=False))
    left: list[str] = []
    try:
        for part in state.live():
            if part.batch_id is None:
                left.append(f"file {part.file_id}: uploaded, no batch made yet (run again)")
                continue
            try:
                waiting = _Waiting(part, api.retrieve(part.batch_id))
            except NotFoundError:
                state.end(part, "gone")
                left.append(f"batch {part.batch_id}: gone from the service (run again)")
                continue
            if run.ended(waiting):
                run.waiting.append(waiting)
            else:
                status = waiting.batch.get("status")
                left.append(f"batch {part.batch_id} is {status}: not finished yet")
        if run.failures:
            raise run.failures[0]
    finally:
        run.summarise()
        summary.rows, summary.skipped = summary.requests, run.already
        state.remove_if_ended()
        writer.close()
    return summary, left
