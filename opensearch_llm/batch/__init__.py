"""Bulk inference: every row of a file answered, resumable, within rate limits.

Online (``run``/``arun``): the async chat client at a bounded, adaptive concurrency, with
requests and tokens per minute limits, retries, a progress bar, and a result line flushed per
row; running again skips every ``custom_id`` already in the output. Batch API
(``run(..., via="batch-api")``, ``BatchAPIClient``): the service's asynchronous batch, about half
the price. Files: the Batch API's JSON Lines (plain ``messages``/``prompt`` lines too), CSV, and
Parquet where pyarrow is installed. Ray Data: ``ChatPredictor`` for ``Dataset.map_batches``.

Example::

    from opensearch_llm import batch

    summary = batch.run("in.jsonl", "out.jsonl", model="qwen-plus", requests_per_minute=600)
    print(summary)          # rows, failures by error code, tokens, wall time
"""

from typing import TYPE_CHECKING, Any

from opensearch_llm.batch._formats import RESULT_COLUMNS, BadRow, Row, parse_line, parse_record
from opensearch_llm.batch._runner import DEFAULT_BATCH_MAX_RETRIES, DEFAULT_CONCURRENCY, arun, run
from opensearch_llm.batch._summary import BatchSummary

if TYPE_CHECKING:
    from opensearch_llm.batch._api import BatchAPIClient, BatchFailedError, run_batch_api
    from opensearch_llm.batch._ray import ChatPredictor

__all__ = [
    "DEFAULT_BATCH_MAX_RETRIES",
    "DEFAULT_CONCURRENCY",
    "RESULT_COLUMNS",
    "BadRow",
    "BatchAPIClient",
    "BatchFailedError",
    "BatchSummary",
    "ChatPredictor",
    "Row",
    "arun",
    "parse_line",
    "parse_record",
    "run",
    "run_batch_api",
]

_LAZY = {
    "BatchAPIClient": "opensearch_llm.batch._api",
    "BatchFailedError": "opensearch_llm.batch._api",
    "run_batch_api": "opensearch_llm.batch._api",
    "ChatPredictor": "opensearch_llm.batch._ray",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
