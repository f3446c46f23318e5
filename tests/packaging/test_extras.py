"""Each extra pulls in only what it needs: LangChain and LlamaIndex never come together.

Resolved offline from the metadata of the installed distributions (what pip would install with
these versions); with OPENSEARCH_LLM_PYPI_TESTS=1 also by ``pip install --dry-run --report``
against PyPI.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from .support import ROOT, closure, project_requirements, run


def frameworks(names: set[str]) -> set[str]:
    return {n for n in names if n.startswith(("langchain", "llama-index", "llama-cloud"))}


def test_core_pulls_in_no_framework_and_no_server() -> None:
    names = closure(project_requirements())
    assert {"httpx", "pydantic", "tenacity"} <= names
    assert frameworks(names) == set()
    assert not names & {"uvicorn", "httptools", "uvloop", "openai"}


def test_langchain_extra_pulls_in_no_llama_index() -> None:
    names = closure(project_requirements(["langchain"]))
    assert "langchain-core" in names
    assert frameworks(names) <= {"langchain-core", "langchain-protocol"}
    assert "uvicorn" not in names


def test_llama_index_extra_pulls_in_no_langchain() -> None:
    names = closure(project_requirements(["llama-index"]))
    assert "llama-index-core" in names
    assert not {n for n in names if n.startswith("langchain")}
    assert "uvicorn" not in names


def test_emulator_extra_pulls_in_the_server_only() -> None:
    names = closure(project_requirements(["emulator"]))
    assert "uvicorn" in names and frameworks(names) == set()


def test_all_is_both_frameworks_and_the_emulator() -> None:
    names = closure(project_requirements(["all"]))
    assert {"langchain-core", "llama-index-core", "uvicorn"} <= names


def test_bench_extra_brings_the_reference_integrations() -> None:
    names = closure(project_requirements(["bench"]))
    assert {"langchain-openai", "llama-index-llms-openai-like", "pyinstrument"} <= names


def dry_run(tmp_path: Path, target: str) -> set[str]:
    report = tmp_path / "report.json"
    run(
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--ignore-installed",
        "--quiet",
        "--report",
        report,
        target,
        cwd=tmp_path,
    )
    installs = json.loads(report.read_text(encoding="utf-8"))["install"]
    return {item["metadata"]["name"].lower().replace("_", "-") for item in installs}


@pytest.mark.pypi
@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "wanted", "unwanted"),
    [
        ("langchain", "langchain-core", "llama-index"),
        ("llama-index", "llama-index-core", "langchain"),
    ],
)
def test_pip_resolution_of_an_extra(tmp_path: Path, extra: str, wanted: str, unwanted: str) -> None:
    names = dry_run(tmp_path, f"{ROOT}[{extra}]")
    assert wanted in names
    assert not {n for n in names if n.startswith(unwanted)}
