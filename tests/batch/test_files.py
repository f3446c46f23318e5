"""Reading rows and writing results: JSON Lines, CSV, Parquet; resume bookkeeping."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from opensearch_llm.batch._files import (
    FinishedIds,
    ResultWriter,
    count_rows,
    drop_lines,
    drop_unfinished_line,
    finished_ids,
    journal_path,
    read_results,
    read_rows,
)
from opensearch_llm.batch._formats import (
    CHAT_URL,
    KNOWLEDGE_URL,
    RESULT_COLUMNS,
    BadRow,
    Row,
    result_line,
)

from .support import write_prompts


def test_jsonl_rows_are_streamed_and_counted_without_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"prompt": "a"}\n\n{"custom_id": "x", "prompt": "b"}\n{broken\n')
    rows = read_rows(path, model="qwen-plus")
    first = next(rows)  # a generator: nothing is read ahead
    assert first == Row(
        "row-1", CHAT_URL, {"model": "qwen-plus", "messages": [{"role": "user", "content": "a"}]}
    )
    rest = list(rows)
    assert [r.custom_id for r in rest] == ["x", "row-4"] and isinstance(rest[1], BadRow)
    assert count_rows(path) == 3


def test_csv_rows_take_the_documented_columns(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(
            handle, ["custom_id", "prompt", "messages", "model", "params", "note"]
        )
        writer.writeheader()
        writer.writerow(
            {"custom_id": "a", "prompt": "hi", "params": '{"temperature": 0.5}', "note": "ignored"}
        )
        writer.writerow(
            {"messages": json.dumps([{"role": "user", "content": "yo"}]), "model": "qwen-max"}
        )
        writer.writerow({"custom_id": "c", "prompt": "x", "params": "[1]"})
    rows = list(read_rows(path, model="qwen-plus"))
    assert rows[0] == Row(
        "a",
        CHAT_URL,
        {"temperature": 0.5, "model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert rows[1] == Row(
        "row-2", CHAT_URL, {"messages": [{"role": "user", "content": "yo"}], "model": "qwen-max"}
    )
    assert isinstance(rows[2], BadRow) and rows[2].error.field == "row 3: params"
    assert count_rows(path) == 3


def test_parquet_in_and_out(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    source = tmp_path / "in.parquet"
    pq.write_table(
        pa.table({"custom_id": ["a", "b"], "prompt": ["one", "two"], "other": [1, 2]}), source
    )
    rows = list(read_rows(source, model="m"))
    assert [r.custom_id for r in rows] == ["a", "b"] and count_rows(source) == 2

    out = tmp_path / "out.parquet"
    writer = ResultWriter(out)
    writer.write(
        result_line(
            "a",
            {
                "request_id": "r",
                "choices": [{"message": {"content": "hi"}}],
                "usage": {"total_tokens": 3},
            },
        )
    )
    writer.close()
    table = pq.read_table(out)
    assert table.column_names == list(RESULT_COLUMNS)
    assert table.to_pylist()[0]["content"] == "hi" and table.to_pylist()[0]["total_tokens"] == 3
    assert journal_path(out).exists()  # kept: the next run resumes from it


def test_csv_output_is_written_from_the_journal(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    writer = ResultWriter(out)
    writer.write(
        result_line(
            "a",
            {
                "request_id": "r",
                "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
            },
        )
    )
    writer.close()
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [
        {
            **dict.fromkeys(RESULT_COLUMNS, ""),
            "custom_id": "a",
            "status_code": "200",
            "request_id": "r",
            "content": "hi",
            "finish_reason": "stop",
        }
    ]


def test_finished_ids_hold_8_bytes_each_and_answer_membership() -> None:
    ids = [f"id-{n}" for n in range(5000)]
    finished = FinishedIds(ids)
    assert len(finished) == 5000 and finished._hashes.itemsize == 8
    assert all(i in finished for i in ids[::97])
    assert "id-5000" not in finished and "" not in finished and 7 not in finished


def test_a_line_cut_short_by_a_crash_is_dropped_and_its_row_runs_again(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"custom_id": "a"}\n{"custom_id": "b"}\n{"custom_id": "c", "respo')
    done = finished_ids(path)
    assert "a" in done and "b" in done and "c" not in done
    assert path.read_bytes() == b'{"custom_id": "a"}\n{"custom_id": "b"}\n'
    drop_unfinished_line(path)  # a whole file is left alone
    assert len(list(read_results(path))) == 2


def test_a_long_unfinished_line_is_dropped_whole(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"custom_id": "a"}\n' + b"x" * 200_000)
    drop_unfinished_line(path)
    assert path.read_bytes() == b'{"custom_id": "a"}\n'
    path.write_bytes(b"y" * 100_000)
    drop_unfinished_line(path)
    assert path.read_bytes() == b""


def test_results_are_appended_and_flushed_line_by_line(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "out.jsonl"
    writer = ResultWriter(out)
    writer.write({"custom_id": "a"})
    assert json.loads(out.read_text()) == {"custom_id": "a"}  # on disk before close
    writer.close()
    writer = ResultWriter(out)
    writer.write({"custom_id": "b"})
    writer.close()
    assert [line["custom_id"] for line in read_results(out)] == ["a", "b"]


def test_prompt_files_written_by_the_helper_round_trip(tmp_path: Path) -> None:
    path = write_prompts(tmp_path / "in.jsonl", 3)
    assert [r.custom_id for r in read_rows(path)] == ["id-0", "id-1", "id-2"]


def test_a_missing_input_is_a_validation_error(tmp_path: Path) -> None:
    from opensearch_llm import RequestValidationError

    with pytest.raises(RequestValidationError, match="input"):
        count_rows(tmp_path / "nowhere.jsonl")


def test_csv_knowledge_rows_take_question_and_content(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["custom_id", "prompt", "question", "content"])
        writer.writeheader()
        writer.writerow({"custom_id": "a", "question": "q", "content": '["p1", "p2"]'})
        writer.writerow({"custom_id": "b", "question": "q", "content": "one passage, [1]"})
        writer.writerow({"custom_id": "c", "prompt": "hi", "content": "not a knowledge row"})
        writer.writerow({"custom_id": "d", "question": "q", "content": "[Source: wiki] OpenSearch"})
        writer.writerow({"custom_id": "e", "question": "q", "content": '{"not": "a list"}'})
    rows = list(read_rows(path, model="qwen-plus"))
    assert rows[0] == Row("a", KNOWLEDGE_URL, {"question": "q", "content": ["p1", "p2"]})
    assert rows[1] == Row("b", KNOWLEDGE_URL, {"question": "q", "content": ["one passage, [1]"]})
    assert rows[2] == Row(
        "c", CHAT_URL, {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]}
    )
    # a cell that is not a JSON array is one passage, whatever it starts with
    assert rows[3] == Row(
        "d", KNOWLEDGE_URL, {"question": "q", "content": ["[Source: wiki] OpenSearch"]}
    )
    assert rows[4] == Row("e", KNOWLEDGE_URL, {"question": "q", "content": ['{"not": "a list"}']})


def _journal(path: Path, lines: list[dict[str, object]]) -> bytes:
    path.write_bytes(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
    return path.read_bytes()


def test_drop_lines_rewrites_the_journal_without_the_picked_lines(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    lines = [
        {"custom_id": f"id-{n}", "error": {"code": "x"} if n % 3 == 0 else None} for n in range(9)
    ]
    _journal(path, lines)
    with open(path, "ab") as handle:
        handle.write(
            b"not json, kept\n" + b'{"custom_id": "cut", "error": {"code": "x"}'
        )  # cut short

    dropped = drop_lines(path, lambda line: line["error"] is not None)

    assert dropped == 3
    kept = [json.dumps(line).encode() + b"\n" for line in lines if line["error"] is None]
    assert path.read_bytes() == b"".join(kept) + b"not json, kept\n"  # the others byte for byte
    assert list(tmp_path.iterdir()) == [path]  # no rewrite file left behind


def test_drop_lines_leaves_a_journal_with_nothing_to_drop_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    before = _journal(path, [{"custom_id": "a", "error": None}])
    inode = path.stat().st_ino
    assert drop_lines(path, lambda line: line["error"] is not None) == 0
    assert path.read_bytes() == before and path.stat().st_ino == inode
    assert list(tmp_path.iterdir()) == [path]
    assert drop_lines(tmp_path / "missing.jsonl", lambda line: True) == 0
    assert not (tmp_path / "missing.jsonl").exists()


def test_lines_written_soon_are_flushed_together_before_the_loop_waits(tmp_path: Path) -> None:
    import asyncio

    writer = ResultWriter(tmp_path / "out.jsonl")

    async def answers_arriving_together() -> list[int]:
        seen = []
        for custom_id in ("a", "b", "c"):
            writer.write_soon({"custom_id": custom_id})
            seen.append(len((tmp_path / "out.jsonl").read_bytes()))  # not flushed yet
        await asyncio.sleep(0)  # the loop's next pass, before it waits for I/O
        seen.append(len((tmp_path / "out.jsonl").read_text().splitlines()))
        return seen

    assert asyncio.run(answers_arriving_together()) == [0, 0, 0, 3]
    writer.close()
