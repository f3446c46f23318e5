"""Ray Data: ChatPredictor on a local Ray cluster (2 CPUs) against the served emulator."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from opensearch_llm.batch import RESULT_COLUMNS, ChatPredictor
from opensearch_llm.emulator import Emulator

from .support import KEY

ray = pytest.importorskip(
    "ray", reason="Ray is an optional extra: pip install 'opensearch-llm[ray]'"
)


@pytest.fixture(scope="module")
def local_ray() -> Any:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_a_thousand_rows_through_map_batches_each_answered_once(
    local_ray: Any, served: Any
) -> None:
    emulator = Emulator(fault_rate={"503": 0.03}, seed=4, max_recorded=None)
    server = served(emulator)
    items = [
        {"custom_id": f"id-{n}", "prompt": f"question {n}", "topic": n % 7} for n in range(1000)
    ]
    items[5] = {"custom_id": "id-5", "prompt": "", "topic": 5}  # a bad row: reported, not sent
    predictor = {
        "model": "qwen-plus",
        "api_key": KEY,
        "base_url": server.compatible_base_url,
        "concurrency": 8,
    }

    answered = ray.data.from_items(items).map_batches(
        ChatPredictor,
        fn_constructor_kwargs=predictor,
        compute=ray.data.ActorPoolStrategy(size=2),
        batch_size=250,
    )
    rows = answered.take_all()

    assert len(rows) == 1000 and set(rows[0]) == {"custom_id", "prompt", "topic", *RESULT_COLUMNS}
    by_id = {row["custom_id"]: row for row in rows}
    assert by_id["id-7"]["content"] == "You said: question 7" and by_id["id-7"]["topic"] == 0
    assert (
        by_id["id-5"]["error_code"] == "request_validation_error"
        and by_id["id-5"]["content"] is None
    )
    assert sum(1 for row in rows if row["error_code"] is None) == 999
    sent = [r.json["messages"][-1]["content"] for r in emulator.requests]
    retried = len(sent) - len(set(sent))
    assert len(set(sent)) == 999 and retried > 0  # each row answered once, 503s retried


def test_a_predictor_pickles_without_its_client_and_rebuilds_it(served: Any) -> None:
    server = served(Emulator())
    predictor = ChatPredictor(
        "qwen-plus", api_key=KEY, base_url=server.compatible_base_url, concurrency=2
    )
    first = predictor({"prompt": ["a", "b"]})
    copy = pickle.loads(pickle.dumps(predictor))
    second = copy({"prompt": ["c"]})
    assert first["content"] == ["You said: a", "You said: b"] and second["content"] == [
        "You said: c"
    ]
    assert KEY not in repr(copy)
    predictor.close()
    copy.close()
