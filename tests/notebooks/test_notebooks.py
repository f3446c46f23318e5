"""The notebooks run top to bottom offline, and their committed outputs are what they print.

Each notebook is executed afresh (nbclient, the ``python3`` kernel of this environment, no API
key in the environment, so against the emulator) and every code cell's outputs must equal the
committed ones: the committed notebooks are therefore stable, and current. ``pytest --nbmake
notebooks/`` runs them too (without comparing outputs).

To refresh the committed outputs after changing a notebook: ``python -m
tests.notebooks.test_notebooks`` (or run it in Jupyter with no key set, and save).
"""

from __future__ import annotations

import copy
import os
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NAMES = [
    "01_langchain_quickstart.ipynb",
    "02_llama_index_quickstart.ipynb",
    "03_knowledge_llm_rag.ipynb",
    "04_errors_retries_offline_testing.ipynb",
    "05_bulk_inference.ipynb",
]
KEY_VARS = (
    "OPENSEARCH_LLM_API_KEY",
    "DASHSCOPE_API_KEY",
    "OPENSEARCH_LLM_BASE_URL",
    "OPENSEARCH_LLM_KNOWLEDGE_HOST",
    "OPENSEARCH_LLM_APP",
)
#: Things that make an output unstable from run to run.
UNSTABLE = {
    "memory address": re.compile(r"\b0x[0-9a-fA-F]{6,}\b"),
    "timestamp": re.compile(r"\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}"),
    "port": re.compile(r"127\.0\.0\.1:\d+"),
    "path": re.compile(r"/(?:tmp|home|root|work)/"),
}
MAX_OUTPUT_CHARS = 1_500
#: The tag of a cell whose stderr is another library's log (Ray's workers, with ids and times):
#: neither committed nor compared. Every other cell must print to stdout only.
STDERR_IGNORED = "stderr-ignored"


def load(name: str) -> Any:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def execute(notebook: Any) -> Any:
    """A copy of ``notebook``, run top to bottom in this environment's ``python3`` kernel."""
    executed = copy.deepcopy(notebook)
    client = NotebookClient(
        executed,
        timeout=120,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    return executed


def outputs(notebook: Any) -> list[list[dict[str, Any]]]:
    """Each code cell's outputs, as comparable plain data (stream pieces joined)."""
    return [
        _joined([_plain(output) for output in kept_outputs(cell)])
        for cell in notebook.cells
        if cell.cell_type == "code"
    ]


def kept_outputs(cell: Any) -> list[Any]:
    """A code cell's outputs, without its stderr if the cell is tagged ``STDERR_IGNORED``."""
    ignored = STDERR_IGNORED in cell.get("metadata", {}).get("tags", [])
    return [
        output
        for output in cell.get("outputs", [])
        if not (ignored and output["output_type"] == "stream" and output["name"] == "stderr")
    ]


def _joined(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # The kernel flushes stdout on a timer, so one print may land in one output or in two.
    joined: list[dict[str, Any]] = []
    for item in items:
        if joined and "stream" in item and joined[-1].get("stream") == item["stream"]:
            joined[-1] = {**joined[-1], "text": joined[-1]["text"] + item["text"]}
        else:
            joined.append(item)
    return joined


def coalesce_streams(notebook: Any) -> None:
    """Join consecutive stream outputs of each cell, drop ignored stderr: what is compared."""
    for cell in notebook.cells:
        merged: list[Any] = []
        for output in kept_outputs(cell):
            previous = merged[-1] if merged else None
            if (
                previous is not None
                and output["output_type"] == previous["output_type"] == "stream"
                and output["name"] == previous["name"]
            ):
                previous["text"] += output["text"]
            else:
                merged.append(output)
        if cell.cell_type == "code":
            cell["outputs"] = merged


def _plain(output: Any) -> dict[str, Any]:
    if output["output_type"] == "stream":
        return {"stream": output["name"], "text": output["text"]}
    if output["output_type"] == "error":
        return {"error": output["ename"], "value": output["evalue"]}
    return {output["output_type"]: dict(output.get("data", {}))}


def test_the_notebooks_are_there() -> None:
    assert sorted(path.name for path in NOTEBOOKS.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_is_small_clean_and_stable(name: str) -> None:
    notebook = load(name)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    assert [cell.id for cell in notebook.cells] == [
        f"cell-{n:02d}" for n in range(1, len(notebook.cells) + 1)
    ]
    assert notebook.metadata["language_info"] == {"name": "python"}  # no interpreter version
    for cell_outputs in outputs(notebook):
        for output in cell_outputs:
            assert "error" not in output and output.get("stream") == "stdout", output
            text = output["text"]
            assert len(text) <= MAX_OUTPUT_CHARS
            for what, pattern in UNSTABLE.items():
                assert not pattern.search(text), f"{name}: {what} in output: {text!r}"
    assert any(outputs(notebook)), "committed without outputs"
    assert (NOTEBOOKS / name).stat().st_size < 40_000


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_offline_and_prints_what_is_committed(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in KEY_VARS:
        monkeypatch.delenv(variable, raising=False)
    committed = load(name)
    fresh = execute(committed)
    assert outputs(fresh) == outputs(committed)
    first = outputs(fresh)[0][0]["text"]
    assert name.startswith("04") or ("emulator" in first and "offline" in first.lower())


def refresh(names: list[str]) -> None:
    """Re-run the notebooks offline and save them with their new outputs."""
    for variable in KEY_VARS:
        os.environ.pop(variable, None)
    for name in names:
        notebook = execute(load(name))
        coalesce_streams(notebook)
        notebook.metadata = {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        }
        nbformat.write(notebook, NOTEBOOKS / name)
        print("refreshed", name)


if __name__ == "__main__":
    refresh(sys.argv[1:] or NAMES)
