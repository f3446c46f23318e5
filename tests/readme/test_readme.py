"""README.md: every Python block runs (against a served emulator), and its facts hold.

The blocks run in one subprocess (``tests/readme/runner.py``) with the environment pointing at
``serve()``'s URLs; each must succeed, print, and either reach the served emulator or make an
emulator of its own. The set-up commands are run too (the CLI, offline), and the configuration
and error tables are checked against the code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import opensearch_llm
from opensearch_llm import OpenSearchLLMError
from opensearch_llm._config import (
    API_KEY_ENV_VARS,
    BASE_URL_ENV_VAR,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MODEL,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_STREAM_IDLE_TIMEOUT,
    KNOWLEDGE_APP_ENV_VAR,
    KNOWLEDGE_HOST_ENV_VAR,
    REGION_BASE_URLS,
)

from .runner import (
    KNOWN_REQUIREMENTS,
    README,
    ROOT,
    all_blocks,
    missing,
    python_blocks,
    requirements,
)

TEXT = README.read_text(encoding="utf-8")
BLOCKS = all_blocks()
SETUP_TRY = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[all]' && "
    'opensearch-llm chat "Recommend one science fiction book" && '
    'opensearch-llm ask "What is OpenSearch?" --content '
    '"OpenSearch is a search service of Alibaba Cloud."'
)
SETUP_TEST = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[dev]' && python -m pytest"
)


@cache
def report() -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSEARCH_LLM_")}
    result = subprocess.run(
        [sys.executable, "-m", "tests.readme.runner"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_readme_has_python_examples() -> None:
    assert len(python_blocks(TEXT)) >= 8
    assert {document for document, _, _ in BLOCKS} == {
        "README.md",
        "qwen.md",
        "embeddings-rerank.md",
        "batch.md",
    }


@pytest.mark.parametrize(
    "index", range(len(BLOCKS)), ids=[f"{i}-{d}-{h}" for i, (d, h, _) in enumerate(BLOCKS)]
)
def test_python_block_runs(index: int) -> None:
    result = report()[index]
    if "skipped" in result:  # its <!-- requires: ... --> names something missing here
        pytest.skip(f"{BLOCKS[index][0]} block {index} {result['skipped']}")
    assert result["error"] is None, result["error"]
    assert result["stdout"].strip(), "the example printed nothing"
    code = BLOCKS[index][2]
    assert result["requests"] > 0 or "Emulator(" in code, "the example reached no service"
    assert "Traceback" not in result["stdout"]


def test_setup_commands_are_the_documented_ones() -> None:
    assert SETUP_TRY in TEXT and SETUP_TEST in TEXT
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == "python -m pytest"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("opensearch-llm")
    argv = [str(command)] if command.exists() else [sys.executable, "-m", "opensearch_llm.cli"]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENSEARCH_LLM_API_KEY", "DASHSCOPE_API_KEY")
    }
    return subprocess.run(
        [*argv, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_setup_try_it_commands_answer_offline() -> None:
    chat = cli("chat", "Recommend one science fiction book")
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.strip() == "You said: Recommend one science fiction book"
    assert "emulator" in chat.stderr and "offline" in chat.stderr
    ask = cli(
        "ask",
        "What is OpenSearch?",
        "--content",
        "OpenSearch is a search service of Alibaba Cloud.",
    )
    assert ask.returncode == 0, ask.stderr
    assert ask.stdout.strip() == (
        "Answer to: What is OpenSearch? | Sources: OpenSearch is a search service of Alibaba Cloud."
    )


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", TEXT, re.S | re.M)
    assert match, f"no section {title!r}"
    return match.group(1)


def doc(name: str) -> str:
    """A page of ``docs/``, which the README must link."""
    assert f"[docs/{name}](docs/{name})" in TEXT, f"the README does not link docs/{name}"
    return (ROOT / "docs" / name).read_text(encoding="utf-8")


def test_configuration_names_every_variable_region_and_default() -> None:
    config = section("Configuration")
    for name in (
        *API_KEY_ENV_VARS,
        BASE_URL_ENV_VAR,
        KNOWLEDGE_HOST_ENV_VAR,
        KNOWLEDGE_APP_ENV_VAR,
    ):
        assert f"| `{name}` |" in config, name
    for region, url in REGION_BASE_URLS.items():
        assert re.search(rf"\| `{region}`( \(default\))? \| `{re.escape(url)}` \|", config), region
    settings = doc("configuration.md")  # every setting, with its default
    rows = {
        "connect timeout": DEFAULT_CONNECT_TIMEOUT,
        "read timeout": DEFAULT_READ_TIMEOUT,
        "stream idle timeout": DEFAULT_STREAM_IDLE_TIMEOUT,
        "retries": DEFAULT_MAX_RETRIES,
    }
    for row, default in rows.items():
        line = next(line for line in settings.splitlines() if line.startswith(f"| {row}"))
        assert line.rstrip().endswith(f"| {default:g} |"), line
    assert f"`{DEFAULT_MODEL}`" in settings


def test_errors_table_covers_every_error_class() -> None:
    assert "[docs/errors.md](docs/errors.md)" in section("Errors")
    errors = doc("errors.md")
    classes = [
        name
        for name in opensearch_llm.__all__
        if isinstance(getattr(opensearch_llm, name), type)
        and issubclass(getattr(opensearch_llm, name), OpenSearchLLMError)
        and name != "OpenSearchLLMError"
    ]
    assert len(classes) >= 14
    for name in classes:
        assert re.search(rf"^\| `{name}`", errors, re.M), name


def test_links_and_commands_point_at_real_things() -> None:
    for target in re.findall(r"\]\(([^)#]+)\)", TEXT):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target
    assert "see\n[benchmarks/README.md](benchmarks/README.md)" in TEXT or (
        "[benchmarks/README.md](benchmarks/README.md)" in TEXT
    )
    assert "python -m benchmarks.run" in TEXT and (ROOT / "benchmarks" / "run.py").exists()
    assert "[docs/reliability.md](docs/reliability.md)" in TEXT
    assert "python -m scripts.record_cassettes --live" in TEXT
    for name in ("comparison.md", "configuration.md", "errors.md"):
        for target in re.findall(r"\]\(([^)#]+)\)", doc(name)):
            if not target.startswith("http"):
                assert (ROOT / "docs" / target).resolve().exists(), f"docs/{name}: {target}"


def test_install_commands_work_without_the_package_index() -> None:
    """The distribution is not on the index: no install line may name it as if it were."""
    install = section("Install")
    from_index = re.compile(r"pip install (-U )?['\"]?opensearch-llm\b")
    assert not from_index.search(TEXT), from_index.search(TEXT)
    assert "pip install -e '.[langchain]'" in install and "pip install -e ." in install
    wheel = f"dist/opensearch_llm-{opensearch_llm.__version__}-py3-none-any.whl"
    assert f"pip install '{wheel}[langchain]'" in install


def test_the_comparison_says_what_it_was_checked_against_and_when() -> None:
    comparison = doc("comparison.md")
    assert re.search(r"Checked on \d{4}-\d{2}-\d{2}", comparison)
    for package in (
        "langchain-openai",
        "langchain-qwq",
        "llama-index-llms-openai-like",
        "llama-index-llms-dashscope",
    ):
        assert re.search(rf"`{package}`\]\([^)]+\) \d+\.\d+\.\d+", comparison), package
    assert "| | this package | ChatOpenAI | ChatQwen | OpenAILike |" in comparison
    assert "| | this package |" not in TEXT  # the table lives in one place


def test_the_emulator_quickstart_says_the_command_holds_the_terminal() -> None:
    quickstart, emulator = section("Quickstart"), section("The emulator")
    assert "opensearch-llm emulator" in quickstart and "terminal of its own" in quickstart
    assert "holds its terminal until Ctrl-C" in emulator


def test_a_block_s_requirements_are_known_names_so_a_typo_is_no_skip() -> None:
    named = {name for _, _, code in BLOCKS for name in requirements(code)}
    assert named and named <= set(KNOWN_REQUIREMENTS)
    with pytest.raises(ValueError, match="unknown requirement"):
        missing("pyspak")
