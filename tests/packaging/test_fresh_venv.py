"""The wheel and the sdist install into fresh virtual environments and work there.

Offline by default: the new environment gets the built distribution (``--no-index
--no-deps``) and, through a ``.pth`` file, exactly the core dependencies (the closure of
``[project].dependencies``) linked from this environment - no LangChain, no LlamaIndex, no
uvicorn. With OPENSEARCH_LLM_PYPI_TESTS=1 one more test installs the wheel with pip resolving
the core dependencies from PyPI (pip's cache makes it quick).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from opensearch_llm import __version__

from .conftest import Dist
from .support import (
    Env,
    bare_env,
    clean_env,
    closure,
    link_distributions,
    project_requirements,
    run,
)

pytestmark = pytest.mark.slow

#: Runs inside the new environment: the core imports without either framework and answers
#: (through the in-process emulator, which needs no extra); both adapters need their framework.
CHECK = r"""
import importlib.util, json, sys, httpx
import opensearch_llm
from opensearch_llm import ChatClient, KnowledgeClient, __version__
from opensearch_llm.emulator import Emulator

emu = Emulator()
client = ChatClient("sk-test", base_url="http://emu.local/compatible-mode/v1",
                    http_client=httpx.Client(transport=emu.transport()))
answer = client.create(model="qwen-plus", messages=[{"role": "user", "content": "hi"}])
kb = KnowledgeClient("sk-test", host="http://emu.local", app="app",
                     http_client=httpx.Client(transport=emu.transport()))
adapters = {}
for name in ("langchain_opensearch_llm", "llama_index_opensearch_llm"):
    try:
        __import__(name)
        adapters[name] = "imported"
    except ImportError as error:
        adapters[name] = error.name
print(json.dumps({
    "file": opensearch_llm.__file__,
    "version": __version__,
    "answer": answer["choices"][0]["message"]["content"],
    "knowledge": kb.answer("q", ["c"]).answer,
    "frameworks": [m for m in ("langchain_core", "llama_index", "uvicorn", "openai")
                   if importlib.util.find_spec(m) is not None],
    "loaded": sorted(m for m in sys.modules if m.startswith(("langchain", "llama_index"))),
    "adapters": adapters,
}))
"""


def core_only_env(path: Path) -> Env:
    """A fresh environment that sees exactly the core dependencies, linked from this one."""
    env = bare_env(path / "venv")
    deps = path / "core-deps"
    link_distributions(closure(project_requirements()), deps)
    (env.site_packages / "core_deps.pth").write_text(f"{deps}\n", encoding="utf-8")
    return env


def check(env: Env, cwd: Path) -> dict:
    report = json.loads(env.python_run(CHECK, cwd))
    assert Path(report["file"]).is_relative_to(env.path), (
        "imported the source tree, not the install"
    )
    assert report["version"] == __version__
    assert report["answer"] == "You said: hi"
    assert report["knowledge"] == "Answer to: q | Sources: c"
    assert report["frameworks"] == [] and report["loaded"] == []
    assert report["adapters"] == {
        "langchain_opensearch_llm": "langchain_core",
        "llama_index_opensearch_llm": "llama_index",
    }
    return report


def test_wheel_installs_and_the_core_runs_without_frameworks(dist: Dist, tmp_path: Path) -> None:
    env = core_only_env(tmp_path)
    env.pip("install", "--no-index", "--no-deps", dist.wheel, cwd=tmp_path)
    check(env, tmp_path)
    typed = env.site_packages / "opensearch_llm" / "py.typed"
    assert typed.exists()
    # The console script works from the wheel, offline, on the emulator.
    out = run(env.path / "bin" / "opensearch-llm", "chat", "hello", cwd=tmp_path, env=clean_env())
    assert out.strip() == "You said: hello"


def test_sdist_installs_and_the_core_runs_without_frameworks(dist: Dist, tmp_path: Path) -> None:
    env = core_only_env(tmp_path)
    # Building from the sdist needs the backend: link hatchling and its dependencies too.
    backend = tmp_path / "build-deps"
    link_distributions(closure([*project_requirements(), Requirement("hatchling")]), backend)
    (env.site_packages / "build_deps.pth").write_text(f"{backend}\n", encoding="utf-8")
    env.pip("install", "--no-index", "--no-deps", "--no-build-isolation", dist.sdist, cwd=tmp_path)
    (env.site_packages / "build_deps.pth").unlink()
    check(env, tmp_path)


@pytest.mark.pypi
def test_wheel_installs_from_pypi_with_only_core_dependencies(dist: Dist, tmp_path: Path) -> None:
    env = bare_env(tmp_path / "venv")
    env.pip("install", "--quiet", dist.wheel, cwd=tmp_path)
    check(env, tmp_path)
    installed = env.pip("list", "--format=json", cwd=tmp_path)
    names = {p["name"].lower() for p in json.loads(installed)}
    assert not {n for n in names if n.startswith(("langchain", "llama-index", "llama_index"))}
    assert "uvicorn" not in names
