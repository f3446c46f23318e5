"""Helpers of the batch tests: input files, result files, request counts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from opensearch_llm.emulator import Emulator, EmulatorServer

KEY = "sk-batch-test-key-0123456789"


def write_prompts(path: Path, count: int, start: int = 0, **extra: Any) -> Path:
    """``count`` plain prompt lines ``{"custom_id": "id-N", "prompt": "question N"}``."""
    with open(path, "w", encoding="utf-8") as handle:
        for number in range(start, start + count):
            line = {"custom_id": f"id-{number}", "prompt": f"question {number}", **extra}
            handle.write(json.dumps(line) + "\n")
    return path


def results(path: Path) -> list[dict[str, Any]]:
    """The result lines of an output file."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def id_counts(path: Path) -> Counter[str]:
    """How many result lines each ``custom_id`` has."""
    return Counter(line["custom_id"] for line in results(path))


def prompt_ids(emulator: Emulator) -> Counter[str]:
    """How many chat requests the emulator received for each row (``question N`` -> ``id-N``)."""
    counts: Counter[str] = Counter()
    for request in emulator.requests:
        if request.path.endswith("/chat/completions") and isinstance(request.json, dict):
            text = request.json["messages"][-1]["content"]
            counts["id-" + text.rsplit(" ", 1)[1]] += 1
    return counts


def client_options(server: EmulatorServer) -> dict[str, Any]:
    """Options pointing a batch run at a served emulator."""
    return {"api_key": KEY, "base_url": server.compatible_base_url, "progress": False}
