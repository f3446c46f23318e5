"""Reading rows and writing results, streamed: memory grows only by 8 bytes per finished id.

Input: JSON Lines, CSV (columns ``custom_id``, ``prompt`` or ``messages``, ``system``, ``model``
and ``params``, a JSON object of other request parameters; ``question`` and ``content`` for
knowledge-llm rows) and, where ``pyarrow`` is installed, Parquet with the same columns. Output:
JSON Lines of result lines, appended and flushed one by one. For a CSV or Parquet output the JSON
Lines go to a journal beside it (``out.csv.jsonl``), and the table is written from the journal
when the run ends: a crash loses no result. The journal is only ever appended to, except by
``drop_lines``, which replaces it whole, atomically.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import os
import shutil
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic_core import to_json

from opensearch_llm._errors import RequestValidationError
from opensearch_llm.batch._formats import (
    INTEGER_COLUMNS,
    RESULT_COLUMNS,
    BadRow,
    Row,
    default_id,
    line_custom_id,
    parse_line,
    parse_record,
    result_columns,
)

#: Columns a CSV or Parquet input may have (others are ignored); ``content`` (the passages, a JSON
#: array or one passage) is read with ``question`` only.
TABLE_COLUMNS = (
    "custom_id", "prompt", "messages", "system", "model", "params", "question", "content"
)  # fmt: skip
#: The file a journal is rewritten into before it replaces the journal (``drop_lines``).
REWRITE_SUFFIX = ".rewrite"
TABLE_SUFFIXES = (".csv", ".parquet")
#: Result rows written to a table at a time.
TABLE_CHUNK = 4096


def _kind(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    return suffix[1:] if suffix in TABLE_SUFFIXES else "jsonl"


# --------------------------------------------------------------------------- input


def read_rows(path: str | Path, model: str | None = None) -> Iterator[Row | BadRow]:
    """The rows of an input file, one at a time."""
    kind = _kind(path)
    if kind == "jsonl":
        return _jsonl_rows(path, model)
    records = _csv_records(path) if kind == "csv" else _parquet_records(path)
    return (table_row(record, number, model) for number, record in enumerate(records, 1))


def count_rows(path: str | Path) -> int:
    """How many rows ``read_rows`` yields (read quickly, without parsing requests)."""
    if not os.path.isfile(path):
        raise RequestValidationError("input", str(path), "a file of requests (.jsonl, .csv...)")
    kind = _kind(path)
    if kind == "parquet":
        return int(_parquet_file(path).metadata.num_rows)
    if kind == "csv":
        return sum(1 for _ in _csv_records(path))
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def _jsonl_rows(path: str | Path, model: str | None) -> Iterator[Row | BadRow]:
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                yield parse_line(line, number, model)


def _csv_records(path: str | Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def _parquet_file(path: str | Path) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise RequestValidationError(
            "input", str(path), "JSON Lines or CSV", "Parquet needs pyarrow: pip install pyarrow"
        ) from None
    return pq.ParquetFile(path)


def _parquet_records(path: str | Path) -> Iterator[dict[str, Any]]:
    table = _parquet_file(path)
    columns = [name for name in TABLE_COLUMNS if name in table.schema_arrow.names]
    for batch in table.iter_batches(batch_size=TABLE_CHUNK, columns=columns):
        yield from batch.to_pylist()


def table_row(values: Mapping[str, Any], number: int, model: str | None) -> Row | BadRow:
    """A CSV or Parquet row as a request: JSON text columns decoded, ``params`` merged."""
    record = {k: values[k] for k in TABLE_COLUMNS if values.get(k) not in (None, "")}
    if "question" not in record:
        record.pop("content", None)
    elif isinstance(record.get("content"), str):
        record["content"] = _passages(record["content"])
    try:
        for key in ("messages", "params"):
            if isinstance(record.get(key), str):
                record[key] = json.loads(record[key])
    except ValueError as error:
        bad = RequestValidationError(f"row {number}: {key}", record[key], f"JSON ({error})")
        return BadRow(str(record.get("custom_id") or default_id(number)), bad)
    params = record.pop("params", None)
    if params is not None and not isinstance(params, dict):
        bad = RequestValidationError(f"row {number}: params", params, "a JSON object")
        return BadRow(str(record.get("custom_id") or default_id(number)), bad)
    return parse_record({**(params or {}), **record}, number, model)


def _passages(text: str) -> list[Any]:
    """A ``content`` cell: a JSON array of passages, else one passage (``[Source] ...`` too)."""
    try:
        decoded = json.loads(text)
    except ValueError:
        return [text]
    return decoded if isinstance(decoded, list) else [text]


# --------------------------------------------------------------------------- output


def journal_path(output: str | Path) -> Path:
    """Where result lines are appended: the output itself, or a journal beside a table."""
    output = Path(output)
    return output if _kind(output) == "jsonl" else output.with_name(output.name + ".jsonl")


class FinishedIds:
    """The ``custom_id``s already in an output: 8 bytes each (sorted 64-bit hashes).

    Two ids share a hash with a chance of about n²/2⁶⁵: 3 in 10⁸ for a million rows.
    """

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._hashes = array("Q", sorted(_hash(custom_id) for custom_id in ids))

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, custom_id: object) -> bool:
        if not isinstance(custom_id, str):
            return False
        key = _hash(custom_id)
        index = bisect_left(self._hashes, key)
        return index < len(self._hashes) and self._hashes[index] == key


def _hash(custom_id: str) -> int:
    digest = hashlib.blake2b(custom_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def read_results(path: str | Path) -> Iterator[dict[str, Any]]:
    """The result lines of an output journal (a line cut short by a crash is skipped)."""
    if not os.path.exists(path):
        return
    with open(path, "rb") as handle:
        for line in handle:
            try:
                yield json.loads(line)
            except ValueError:
                continue


def finished_ids(path: str | Path) -> FinishedIds:
    """The ids already answered or reported in ``path``; cuts off a last line left unfinished."""
    drop_unfinished_line(path)
    return FinishedIds(i for i in map(line_custom_id, read_results(path)) if i is not None)


def drop_unfinished_line(path: str | Path) -> None:
    """Truncate a last line without its newline (a write cut short): that row runs again."""
    if not os.path.exists(path):
        return
    with open(path, "rb+") as handle:
        size = handle.seek(0, io.SEEK_END)
        if size == 0:
            return
        end = size
        while end > 0:
            start = max(0, end - 65536)
            handle.seek(start)
            chunk = handle.read(end - start)
            if end == size and chunk.endswith(b"\n"):
                return
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                handle.truncate(start + newline + 1)
                return
            end = start
        handle.truncate(0)


def drop_lines(path: str | Path, dropped: Callable[[dict[str, Any]], bool]) -> int:
    """Rewrite the journal ``path`` without the result lines ``dropped`` picks; how many.

    Streamed into ``<path>.rewrite``, synced to disk, then renamed over ``path``
    (``os.replace``, atomic): a crash at any moment leaves the old journal or the new one,
    whole (and maybe a ``.rewrite`` file, which the next rewrite replaces). Lines that are not
    result lines are kept; a journal with nothing to drop is left as it is.
    """
    path = Path(path)
    if not path.exists():
        return 0
    drop_unfinished_line(path)
    rewrite = path.with_name(path.name + REWRITE_SUFFIX)
    count = 0
    try:
        with open(path, "rb") as old, open(rewrite, "wb") as new:
            for raw in old:
                if _picked(raw, dropped):
                    count += 1
                else:
                    new.write(raw)
            if count:
                new.flush()
                os.fsync(new.fileno())
        if count:
            shutil.copymode(path, rewrite)
            os.replace(rewrite, path)
            _sync_directory(path.parent)
    finally:
        rewrite.unlink(missing_ok=True)
    return count


def _picked(raw: bytes, dropped: Callable[[dict[str, Any]], bool]) -> bool:
    try:
        line = json.loads(raw)
    except ValueError:
        return False
    return isinstance(line, dict) and dropped(line)


def _sync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` survive a power cut (POSIX; elsewhere nothing to do)."""
    if os.name != "posix":
        return
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


class ResultWriter:
    """Appends result lines to the journal, each written and flushed as it completes."""

    def __init__(self, output: str | Path) -> None:
        self.output = Path(output)
        self.journal = journal_path(output)
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.journal, "ab")  # noqa: SIM115 (closed by close())
        self._flush_due = False

    def write(self, line: Mapping[str, Any]) -> None:
        """Append one result line and flush it to the operating system."""
        self._handle.write(to_json(line) + b"\n")
        self._handle.flush()

    def write_soon(self, line: Mapping[str, Any]) -> None:
        """Append one result line, flushed before the event loop next waits for an answer.

        The lines of the answers that arrive together (one pass of the loop) go out in one
        write: a system call per pass rather than per row.
        """
        self._handle.write(to_json(line) + b"\n")
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        if not self._handle.closed:
            self._handle.flush()

    def close(self) -> None:
        """Close the journal, then write a CSV or Parquet output from it."""
        self._handle.close()
        if self.journal != self.output:
            export_table(self.journal, self.output)


def export_table(journal: str | Path, output: str | Path) -> None:
    """Write the result lines of ``journal`` as a CSV or Parquet table (``RESULT_COLUMNS``)."""
    rows = (result_columns(line) for line in read_results(journal))
    if _kind(output) == "csv":
        with open(output, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, RESULT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        return
    _write_parquet(rows, output)


def _write_parquet(rows: Iterator[dict[str, Any]], output: str | Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise RequestValidationError(
            "output", str(output), "JSON Lines or CSV", "Parquet needs pyarrow: pip install pyarrow"
        ) from None
    schema = pa.schema(
        [(name, pa.int64() if name in INTEGER_COLUMNS else pa.string()) for name in RESULT_COLUMNS]
    )
    with pq.ParquetWriter(str(output), schema) as writer:
        chunk: list[dict[str, Any]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == TABLE_CHUNK:
                writer.write_table(pa.Table.from_pylist(chunk, schema))
                chunk = []
        if chunk:
            writer.write_table(pa.Table.from_pylist(chunk, schema))
