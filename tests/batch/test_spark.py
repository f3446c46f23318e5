"""Spark: ChatPredictor in a pandas_udf (docs/batch.md's recipe) on local[2], against the emulator."""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from opensearch_llm.batch import ChatPredictor
from opensearch_llm.emulator import Emulator

from .support import KEY

pytestmark = [
    pytest.mark.slow,  # a JVM and Python workers: about 13 s
    # PySpark 4.3 warns that it does not fully support pandas 3: these tests check what we use.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
]

pytest.importorskip("pyspark", reason="pyspark is optional: pip install pyspark")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("pyspark needs Java: no java on PATH and no JAVA_HOME", allow_module_level=True)

import pandas as pd  # noqa: E402  (after the skips: pyspark brings pandas and pyarrow)
from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql.functions import pandas_udf  # noqa: E402

FIELDS = ["content", "finish_reason", "total_tokens", "error_code", "error_message"]
ANSWER = ", ".join(f"{name} {'long' if name == 'total_tokens' else 'string'}" for name in FIELDS)


class OutcomeLog(Emulator):
    """An emulator that keeps, for each chat request, its last message and the status it got."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.outcomes: list[tuple[str, int]] = []  # status 0: the connection was reset

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> Any:
        response = super().handle(method, path, headers, body)
        if path.endswith("/chat/completions"):
            prompt = json.loads(body)["messages"][-1]["content"]
            self.outcomes.append((prompt, response.status))
        return response


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYSPARK_PYTHON", sys.executable)  # the workers' Python: not PATH's python3
        session = (
            SparkSession.builder.master("local[2]")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        yield session
        session.stop()


def test_two_hundred_rows_through_a_pandas_udf_each_answered_once(spark: Any, served: Any) -> None:
    emulator = OutcomeLog(fault_rate={"429": 0.05, "reset": 0.02}, seed=3, max_recorded=None)
    connection = {"api_key": KEY, "base_url": served(emulator).compatible_base_url}

    @pandas_udf(f"{ANSWER}, worker long, predictor string")
    def answer(prompts: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        predictor = ChatPredictor("qwen-plus", concurrency=8, **connection)  # one per task
        name = uuid.uuid4().hex  # not id(): a worker runs several tasks, and ids are reused
        try:
            for batch in prompts:
                columns = pd.DataFrame(predictor({"prompt": batch}))[FIELDS]
                yield columns.assign(worker=os.getpid(), predictor=name)
        finally:
            predictor.close()

    prompts = [(f"id-{n}", f"question {n}") for n in range(200)]
    prompts[5] = ("id-5", "")  # a bad row: reported in its error columns, never sent
    questions = spark.createDataFrame(prompts, ["custom_id", "prompt"]).repartition(4)
    rows = questions.select("custom_id", "prompt", answer("prompt").alias("a")).select(
        "custom_id", "prompt", "a.*"
    )
    by_id = {row["custom_id"]: row.asDict() for row in rows.collect()}

    assert len(by_id) == 200
    bad = by_id.pop("id-5")
    assert bad["error_code"] == "request_validation_error" and "prompt" in bad["error_message"]
    assert bad["content"] is None and bad["total_tokens"] is None
    for row in by_id.values():
        assert row["content"] == f"You said: {row['prompt']}", row
        assert row["error_code"] is None and row["finish_reason"] == "stop"
        assert row["total_tokens"] > 0
    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    for prompt, status in emulator.outcomes:
        statuses[prompt][status] += 1
    assert set(statuses) == {row["prompt"] for row in by_id.values()}  # the bad row never sent
    assert all(counts[200] == 1 for counts in statuses.values())  # requests = 1 + retries
    faults = Counter(status for _, status in emulator.outcomes if status != 200)
    assert faults[429] > 0 and faults[0] > 0  # 429s and resets happened, and were retried
    workers = {(row["worker"], row["predictor"]) for row in [*by_id.values(), bad]}
    assert len(workers) == 4 and os.getpid() not in {pid for pid, _ in workers}  # one per task


def test_a_used_predictor_sent_to_the_workers_arrives_without_its_client(
    spark: Any, served: Any
) -> None:
    server = served(Emulator())
    used = ChatPredictor("qwen-plus", api_key=KEY, base_url=server.compatible_base_url)
    assert used({"prompt": ["on the driver"]})["content"] == ["You said: on the driver"]
    assert used._client is not None and used._loop is not None  # a live pool and loop

    @pandas_udf("content string, fresh boolean")
    def answer(prompts: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        fresh = used._client is None and used._loop is None  # `used` is the task's own copy
        for batch in prompts:
            yield pd.DataFrame({"content": used({"prompt": batch})["content"], "fresh": fresh})

    questions = spark.createDataFrame([(f"question {n}",) for n in range(20)], ["prompt"])
    rows = questions.repartition(2).select(answer("prompt").alias("a")).select("a.*").collect()

    assert sorted(row["content"] for row in rows) == sorted(
        f"You said: question {n}" for n in range(20)
    )
    assert all(row["fresh"] for row in rows)
    assert used({"prompt": ["again"]})["content"] == ["You said: again"]  # the driver's still works
    used.close()
