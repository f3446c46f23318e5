"""Run every ```python block of README.md and its guides against a served emulator; report JSON.

Run as ``python -m tests.readme.runner`` (by ``test_readme.py``, in a process of its own so
that the blocks' global effects - environment, LlamaIndex ``Settings`` - stay there). The
environment points the examples at the emulator on 127.0.0.1, exactly as a user's environment
would point them at the service, and sockets to any other host are refused.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
#: The README and the guides it links whose examples must run, in this order.
DOCUMENTS = (
    README,
    ROOT / "docs" / "qwen.md",
    ROOT / "docs" / "embeddings-rerank.md",
    ROOT / "docs" / "batch.md",
)
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
HEADING = re.compile(r"^#+ (.+)$", re.M)
#: ``<!-- requires: pyspark, java -->`` on the line above a block: what it needs that may be
#: missing (a module, or ``java``); where one is, the block is reported skipped, with the reason.
REQUIRES = re.compile(r"^<!-- requires: ([^\n]+) -->\n```python\n(.*?)^```", re.S | re.M)


def all_blocks() -> list[tuple[str, str, str]]:
    """``(document, heading, code)`` of every block of every document."""
    return [
        (path.name, heading, code)
        for path in DOCUMENTS
        for heading, code in python_blocks(path.read_text("utf-8"))
    ]


def python_blocks(text: str) -> list[tuple[str, str]]:
    """Each ```python block of ``text``, with the heading above it."""
    blocks = []
    for match in BLOCK.finditer(text):
        headings = HEADING.findall(text[: match.start()])
        blocks.append((headings[-1] if headings else "", match.group(1)))
    return blocks


def requirements(code: str) -> list[str]:
    """What the comment above the block ``code`` says it requires (nothing, for most)."""
    for path in DOCUMENTS:
        for match in REQUIRES.finditer(path.read_text("utf-8")):
            if match.group(2) == code:
                return match.group(1).split(", ")
    return []


#: What a block may say it requires: a name not here is a mistake, not a reason to skip.
KNOWN_REQUIREMENTS = ("pyspark", "java")


def missing(requirement: str) -> bool:
    """Whether ``requirement`` (one of ``KNOWN_REQUIREMENTS``) is absent here."""
    if requirement not in KNOWN_REQUIREMENTS:
        raise ValueError(f"unknown requirement {requirement!r}: one of {KNOWN_REQUIREMENTS}")
    if requirement == "java":
        return shutil.which("java") is None and not os.environ.get("JAVA_HOME")
    return importlib.util.find_spec(requirement) is None


def run_block(code: str, name: str) -> dict[str, Any]:
    out = io.StringIO()
    namespace: dict[str, Any] = {"__name__": "__main__"}
    error = None
    with contextlib.redirect_stdout(out):
        try:
            exec(compile(code, name, "exec"), namespace)
        except BaseException:  # report everything, SystemExit included
            error = traceback.format_exc()
    return {"stdout": out.getvalue(), "error": error}


def main() -> None:
    from pytest_socket import socket_allow_hosts

    from opensearch_llm.emulator import Emulator, serve

    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    for name in ("OPENSEARCH_LLM_API_KEY", "DASHSCOPE_API_KEY", "OPENSEARCH_LLM_APP"):
        os.environ.pop(name, None)
    emulator = Emulator()
    report = []
    with serve(emulator) as server:
        os.environ["OPENSEARCH_LLM_API_KEY"] = "sk-readme"
        os.environ["OPENSEARCH_LLM_BASE_URL"] = server.compatible_base_url
        os.environ["OPENSEARCH_LLM_KNOWLEDGE_HOST"] = server.origin
        os.environ["PYSPARK_PYTHON"] = sys.executable  # Spark's workers: this venv's Python
        os.chdir(tempfile.mkdtemp(prefix="readme-"))  # files the examples write go there
        for index, (document, heading, code) in enumerate(all_blocks()):
            before, start = emulator.request_count, time.monotonic()
            absent = [name for name in requirements(code) if missing(name)]
            if absent:
                result = {"stdout": "", "error": None, "skipped": f"needs {', '.join(absent)}"}
            else:
                result = run_block(code, f"{document} block {index} ({heading})")
            seconds = round(time.monotonic() - start, 2)
            result.update(
                heading=heading, requests=emulator.request_count - before, seconds=seconds
            )
            report.append(result)
    sys.stdout.write(json.dumps(report))


if __name__ == "__main__":
    main()
