r"""The OpenAI-compatible files and Batch API: ``/compatible-mode/v1/files`` and ``/batches``.

Upload a JSON Lines file (multipart ``file``, ``purpose=batch``), create a batch from it, and the
emulator runs every line through its chat (or, for ``/v1/embeddings``, embeddings) logic at
once; what a poll shows follows the clock:
``validating`` when created, then ``in_progress`` with ``request_counts`` growing in step with
time, then ``completed`` after ``completion_delay`` seconds (``batch_store(emu)
.completion_delay``, default 1), when the output file (answered lines) and the error file
(failed lines) can be downloaded. A line asks for a fault with its model, as a chat request
does (``"model": "fault/500"`` fails that line); the HTTP requests themselves take every fault
(headers, ``script_faults``, ``fault_rate``). Input checks (one JSON object per line, unique
``custom_id``, ``method`` POST, ``url`` equal to the batch's ``endpoint``, the lines and bytes
per line of ``BATCH_FILE_LIMITS``) fail the batch with ``errors``; ``cancel`` stops it where the
clock is, keeping the lines done before. Listing batches ignores the query (``input_file_ids``,
``limit``...): it lists them all, newest first. Shapes and rules: docs/service-facts.md, "Batch".
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opensearch_llm.batch._limits import BATCH_FILE_LIMITS
from opensearch_llm.emulator._embeddings import EMBEDDINGS
from opensearch_llm.emulator._errors import ApiError, invalid, openai_error
from opensearch_llm.emulator._exchange import COMPATIBLE, Exchange, ReplyOptions, Route
from opensearch_llm.emulator._faults import FAULTS, FaultError, fault_from_model
from opensearch_llm.emulator._response import RESET, EmuResponse, head, json_response

PREFIX = "/compatible-mode/v1/"
METHODS = frozenset({"GET", "POST", "DELETE"})
FILE_PURPOSES = ("batch", "file-extract")
ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings", "/v1/chat/ds-test")
#: The route answering the lines of an endpoint other than chat.
LINE_ROUTES = {"/v1/embeddings": EMBEDDINGS}
FINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
#: ``completion_window``: an integer with ``h`` or ``d``, from 24 hours to 336 hours (14 days).
_WINDOW = re.compile(r"^(\d+)([hd])$")
_WINDOW_HOURS = (24, 336)
#: Downloadable files are the ones whose id starts so (docs/service-facts.md, "Batch").
OUTPUT_PREFIX = "file-batch_output"


@dataclass
class StoredFile:
    """An uploaded or produced file."""

    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int

    def as_object(self) -> dict[str, Any]:
        """The file object of the API."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


@dataclass
class StoredBatch:
    """A batch: its request, the results of its lines (worked out when it was created)."""

    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, Any] | None
    created_at: float
    delay: float
    results: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, Any] | None = None
    cancelled_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None

    def done_lines(self, now: float) -> int:
        """How many lines are done at ``now`` (a cancel stops the clock)."""
        if self.errors is not None:
            return 0
        clock = now if self.cancelled_at is None else self.cancelled_at
        if self.delay <= 0:
            return len(self.results)
        share = min(1.0, max(0.0, (clock - self.created_at) / self.delay))
        return math.floor(len(self.results) * share)

    def status(self, now: float) -> str:
        """The status at ``now``."""
        if self.errors is not None:
            return "failed"
        if self.cancelled_at is not None:
            return "cancelled" if now > self.cancelled_at else "cancelling"
        if self.done_lines(now) >= len(self.results):
            return "completed"
        return "in_progress"

    def as_object(self, now: float, status: str | None = None) -> dict[str, Any]:
        """The batch object of the API, as it stands at ``now``."""
        status = status or self.status(now)
        done = self.results[: self.done_lines(now)]
        failed = sum(1 for line in done if line["error"] is not None)
        final = status in FINAL_STATUSES
        stamp = int(now)
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": self.errors,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": status,
            "output_file_id": self.output_file_id if final else None,
            "error_file_id": self.error_file_id if final else None,
            "created_at": int(self.created_at),
            "in_progress_at": int(self.created_at) if status != "validating" else None,
            "expires_at": None,
            "finalizing_at": stamp if status == "completed" else None,
            "completed_at": stamp if status == "completed" else None,
            "failed_at": stamp if status == "failed" else None,
            "expired_at": None,
            "cancelling_at": int(self.cancelled_at) if self.cancelled_at else None,
            "cancelled_at": stamp if status == "cancelled" else None,
            "request_counts": {
                "total": len(self.results),
                "completed": len(done) - failed,
                "failed": failed,
            },
            "metadata": self.metadata,
        }


class BatchStore:
    """The files and batches of one emulator; ``completion_delay`` is how long a batch runs."""

    def __init__(self) -> None:
        self.completion_delay = 1.0
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, StoredBatch] = {}
        self._lock = threading.Lock()
        self._count = 0

    def new_id(self, prefix: str) -> str:
        """A fresh id: ``file-batch-1``, ``batch_2``..."""
        with self._lock:
            self._count += 1
            return f"{prefix}{self._count}"

    def add_file(self, filename: str, purpose: str, content: bytes, prefix: str) -> StoredFile:
        """Store a file under a new id."""
        stored = StoredFile(self.new_id(prefix), filename, purpose, content, int(time.time()))
        self.files[stored.id] = stored
        return stored

    def finish(self, batch: StoredBatch, now: float) -> None:
        """Write the output and error files of a batch that reached a final status."""
        if batch.output_file_id is not None or batch.status(now) not in FINAL_STATUSES:
            return
        if batch.errors is not None:
            return
        done = batch.results[: batch.done_lines(now)]
        answered = [line for line in done if line["error"] is None]
        failed = [line for line in done if line["error"] is not None]
        out = self.add_file("output.jsonl", "batch_output", _jsonl(answered), OUTPUT_PREFIX + "-")
        batch.output_file_id = out.id
        if failed:
            errors = self.add_file(
                "error.jsonl", "batch_output", _jsonl(failed), OUTPUT_PREFIX + "-"
            )
            batch.error_file_id = errors.id


#: Each emulator's store (an ``Emulator``; typed loosely: ``_core`` imports this module).
_STORES: weakref.WeakKeyDictionary[Any, BatchStore] = weakref.WeakKeyDictionary()
_STORES_LOCK = threading.Lock()


def batch_store(emulator: Any) -> BatchStore:
    """The files and batches of ``emulator`` (set ``completion_delay`` here)."""
    with _STORES_LOCK:
        store = _STORES.get(emulator)
        if store is None:
            store = _STORES[emulator] = BatchStore()
        return store


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line, ensure_ascii=False).encode() + b"\n" for line in lines)


# --------------------------------------------------------------------------- routes


def find_batch_route(path: str) -> Route | None:
    """The files or batches route serving ``path``, if any."""
    if not path.startswith(PREFIX):
        return None
    resource = path[len(PREFIX) :].split("/", 1)[0]
    return {"files": FILES, "batches": BATCHES}.get(resource)


def _parts(exchange: Exchange) -> list[str]:
    return [part for part in exchange.path[len(PREFIX) :].split("/")[1:] if part]


def _store(exchange: Exchange) -> BatchStore:
    return batch_store(exchange.emulator)


Action = Callable[[Exchange, BatchStore, list[str]], EmuResponse]


def _action(parts: list[str]) -> str:
    """What a path asks for: the collection, one item (``id``), or an item's sub-resource."""
    if len(parts) == 2:
        return parts[1]
    return ("", "id")[len(parts)] if len(parts) < 2 else "?"


def _dispatch(table: dict[tuple[str, str], Action]) -> Callable[[Exchange, ReplyOptions], Any]:
    def handle(exchange: Exchange, options: ReplyOptions) -> EmuResponse:
        parts = _parts(exchange)
        action = table.get((exchange.method, _action(parts)))
        if action is None:
            error = ApiError(
                404, "not_found", f"No such endpoint: {exchange.method} {exchange.path}"
            )
            return exchange.error(error)
        return action(exchange, _store(exchange), parts)

    return handle


def _ok(exchange: Exchange, value: Any) -> EmuResponse:
    return json_response(200, exchange.request_id, value)


def _missing(exchange: Exchange, what: str, name: str) -> EmuResponse:
    return exchange.error(ApiError(404, "not_found", f"No such {what}: {name}"))


# --------------------------------------------------------------------------- files


def _upload(exchange: Exchange, store: BatchStore, parts: list[str]) -> EmuResponse:
    form = parse_multipart(exchange.headers.get("content-type", ""), exchange.raw)
    if form is None or "file" not in form:
        return exchange.error(invalid("file", "Send multipart/form-data with a file part."))
    purpose = form.get("purpose", (None, b""))[1].decode()
    if purpose not in FILE_PURPOSES:
        return exchange.error(invalid("purpose", f"purpose must be one of {FILE_PURPOSES}."))
    filename, content = form["file"]
    if purpose == "batch" and len(content) > BATCH_FILE_LIMITS.bytes:
        message = f"A batch file may have at most {BATCH_FILE_LIMITS.bytes} bytes."
        return exchange.error(invalid("file", message))
    stored = store.add_file(filename or "upload.jsonl", purpose, content, "file-batch-")
    return _ok(exchange, stored.as_object())


def _list_files(exchange: Exchange, store: BatchStore, parts: list[str]) -> EmuResponse:
    data = [stored.as_object() for stored in store.files.values()]
    return _ok(exchange, {"object": "list", "data": data, "has_more": False})


def _retrieve_file(exchange: Exchange, store: BatchStore, parts: list[str]) -> EmuResponse:
    stored = store.files.get(parts[0])
    return _ok(exchange, stored.as_object()) if stored else _missing(exchange, "file", parts[0])


def _delete_file(exchange: Exchange, store: BatchStore, parts: list[str]) -> EmuResponse:
    if store.files.pop(parts[0], None) is None:
        return _missing(exchange, "file", parts[0])
    return _ok(exchange, {"id": parts[0], "object": "file", "deleted": True})


def _file_content(exchange: Exchange, store: BatchStore, parts: list[str]) -> EmuResponse:
    stored = store.files.get(parts[0])
    if stored is None:
        return _missing(exchange, "file", parts[0])
    if not stored.id.startswith(OUTPUT_PREFIX):
        message = f"Only files whose id starts with {OUTPUT_PREFIX} can be downloaded."
        return exchange.error(invalid("file_id", message))
    headers = head(exchange.request_id, b"application/octet-stream")
    headers.append((b"content-length", str(len(stored.content)).encode()))
    return EmuResponse(200, headers, [stored.content])


FILES = Route(
    "files",
    _dispatch(
        {
            ("POST", ""): _upload,
            ("GET", ""): _list_files,
            ("GET", "id"): _retrieve_file,
            ("DELETE", "id"): _delete_file,
            ("GET", "content"): _file_content,
        }
    ),
    openai_error,
    methods=METHODS,
)


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]] | None:
    """The parts of a ``multipart/form-data`` body: name -> (filename, content); None if not one."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/form-data") or match is None:
        return None
    form: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(b"--" + match.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head_bytes, _, content = part.partition(b"\r\n\r\n")
        disposition = head_bytes.decode("utf-8", "replace")
        name = re.search(r'name="([^"]*)"', disposition)
        filename = re.search(r'filename="([^"]*)"', disposition)
        if name:
            form[name.group(1)] = (filename.group(1) if filename else None, content[:-2])
    return form


# --------------------------------------------------------------------------- batches


def _create(exchange: Exchange, store: BatchStore, parts: list[str]) -> EmuResponse:
    body = exchange.body if isinstance(exchange.body, dict) else {}
    problem = _create_problem(body, store)
    if problem is not None:
        return exchange.error(problem)
    now = time.time()
    batch = StoredBatch(
        store.new_id("batch_"),
        body["input_file_id"],
        body["endpoint"],
        body["completion_window"],
        body.get("metadata"),
        now,
        store.completion_delay,
    )
    lines, batch.errors = _checked_lines(store.files[batch.input_file_id].content, batch.endpoint)
    batch.results = [_run_line(exchange, batch.id, i, line) for i, line in enumerate(lines)]
    store.batches[batch.id] = batch
    return _ok(exchange, batch.as_object(now, "failed" if batch.errors else "validating"))


def _create_problem(body: dict[str, Any], store: BatchStore) -> ApiError | None:
    file_id = body.get("input_file_id")
    if not isinstance(file_id, str) or file_id not in store.files:
        return invalid("input_file_id", f"No such file: {file_id!r}; upload it first.")
    if body.get("endpoint") not in ENDPOINTS:
        return invalid("endpoint", f"endpoint must be one of {ENDPOINTS}.")
    window = _WINDOW.match(str(body.get("completion_window", "")))
    hours = int(window.group(1)) * (24 if window.group(2) == "d" else 1) if window else 0
    if not _WINDOW_HOURS[0] <= hours <= _WINDOW_HOURS[1]:
        return invalid("completion_window", "from 24h to 336h, as hours (h) or days (d).")
    return None


def _checked_lines(content: bytes, endpoint: str) -> tuple[list[dict[str, Any]], Any]:
    """The lines of an input file, or the errors that fail the batch."""
    problems: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, text in enumerate(content.splitlines(), 1):
        if not text.strip():
            continue
        message = _line_problem(text, endpoint, seen)
        if message:
            problems.append({"code": "invalid_request", "message": message, "line": number})
        else:
            lines.append(json.loads(text))
    most = BATCH_FILE_LIMITS.lines
    if len(lines) > most:
        problems.append({"code": "too_many_requests", "message": f"At most {most} lines."})
    if not lines and not problems:
        problems.append({"code": "empty_file", "message": "The input file has no requests."})
    return lines, ({"object": "list", "data": problems} if problems else None)


def _line_problem(text: bytes, endpoint: str, seen: set[str]) -> str | None:
    if len(text) > BATCH_FILE_LIMITS.line_bytes:
        return f"a line may have at most {BATCH_FILE_LIMITS.line_bytes} bytes"
    try:
        line = json.loads(text)
    except ValueError:
        return "not a JSON object"
    if not isinstance(line, dict) or not isinstance(line.get("body"), dict):
        return "a line needs custom_id, method, url and a body object"
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or custom_id in seen:
        return f"custom_id must be a unique non-empty string: {custom_id!r}"
    seen.add(custom_id)
    if line.get("method") != "POST":
        return "method must be POST"
    if line.get("url") != endpoint:
        return f"url must equal the batch endpoint {endpoint}"
    return None


def _run_line(parent: Exchange, batch_id: str, index: int, line: dict[str, Any]) -> dict[str, Any]:
    """One line through the chat or embeddings logic (a ``fault/...`` model applies)."""
    request_id = f"{batch_id}-{index:06d}"
    body = {k: v for k, v in line["body"].items() if k not in ("stream", "stream_options")}
    route = LINE_ROUTES.get(line["url"], COMPATIBLE)
    exchange = Exchange(request_id, route, parent.headers, body, parent.api_key, parent.started)
    try:
        fault = fault_from_model(body.get("model"))
    except FaultError as error:
        return _error_line(line, request_id, 400, ApiError(400, "invalid_fault", str(error)), None)
    response = FAULTS[fault.name](exchange, fault) if fault else exchange.normal()
    return _line_result(line, request_id, response)


def _line_result(line: dict[str, Any], request_id: str, response: EmuResponse) -> dict[str, Any]:
    broken = ApiError(500, "internal_error", "The request failed inside the batch.")
    if RESET in response.prelude or response.streamed:
        return _error_line(line, request_id, 500, broken, None)
    try:
        body = json.loads(b"".join(p for p in response.body if isinstance(p, bytes)))
    except ValueError:
        return _error_line(line, request_id, 500, broken, None)
    if response.status == 200 and isinstance(body, dict) and "error" not in body:
        response_part = {"status_code": 200, "request_id": request_id, "body": body}
        return {
            "id": request_id,
            "custom_id": line["custom_id"],
            "response": response_part,
            "error": None,
        }
    inner = body.get("error") if isinstance(body, dict) else None
    shape = inner if isinstance(inner, dict) else body if isinstance(body, dict) else {}
    error = ApiError(response.status, str(shape.get("code")), str(shape.get("message")))
    return _error_line(line, request_id, response.status, error, body)


def _error_line(
    line: dict[str, Any], request_id: str, status: int, error: ApiError, body: Any
) -> dict[str, Any]:
    return {
        "id": request_id,
        "custom_id": line["custom_id"],
        "response": {"status_code": status, "request_id": request_id, "body": body},
        "error": {"code": error.code, "message": error.message},
    }


def _retrieve(exchange: Exchange, store: BatchStore, parts: list[str]) -> EmuResponse:
    batch = store.batches.get(parts[0])
    if batch is None:
        return _missing(exchange, "batch", parts[0])
    now = time.time()
    store.finish(batch, now)
    return _ok(exchange, batch.as_object(now))


def _list_batches(exchange: Exchange, store: BatchStore, parts: list[str]) -> EmuResponse:
    now = time.time()
    for batch in store.batches.values():
        store.finish(batch, now)
    data = [batch.as_object(now) for batch in reversed(store.batches.values())]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    listing = {"object": "list", "data": data, "first_id": first, "last_id": last}
    return _ok(exchange, {**listing, "has_more": False})


def _cancel(exchange: Exchange, store: BatchStore, parts: list[str]) -> EmuResponse:
    batch = store.batches.get(parts[0])
    if batch is None:
        return _missing(exchange, "batch", parts[0])
    now = time.time()
    if batch.status(now) not in FINAL_STATUSES and batch.cancelled_at is None:
        batch.cancelled_at = now
    return _ok(exchange, batch.as_object(now))


BATCHES = Route(
    "batches",
    _dispatch(
        {
            ("POST", ""): _create,
            ("GET", ""): _list_batches,
            ("GET", "id"): _retrieve,
            ("POST", "cancel"): _cancel,
        }
    ),
    openai_error,
    methods=METHODS,
)
