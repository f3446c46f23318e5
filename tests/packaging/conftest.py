"""Fixtures: the built distribution, once per session (``python -m build``, no network)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from opensearch_llm import __version__

from .support import PYPI_TESTS_ENV, ROOT, run


@dataclass(frozen=True)
class Dist:
    """The wheel and sdist ``python -m build`` made (the wheel built from the sdist)."""

    wheel: Path
    sdist: Path


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the build backend (hatchling, a dev dependency) is already installed, so
    # the build needs no network. Without --sdist/--wheel, build makes the sdist, then the
    # wheel from the sdist: the sdist is proven to build.
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT, cwd=ROOT)
    wheels = sorted(out.glob("*.whl"))
    sdists = sorted(out.glob("*.tar.gz"))
    assert [w.name for w in wheels] == [f"opensearch_llm-{__version__}-py3-none-any.whl"]
    assert [s.name for s in sdists] == [f"opensearch_llm-{__version__}.tar.gz"]
    return Dist(wheels[0], sdists[0])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``pypi`` run only when OPENSEARCH_LLM_PYPI_TESTS=1 (they reach PyPI)."""
    if os.environ.get(PYPI_TESTS_ENV) == "1":
        return
    skip = pytest.mark.skip(reason=f"reaches PyPI; set {PYPI_TESTS_ENV}=1 to run")
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents and item.get_closest_marker("pypi"):
            item.add_marker(skip)
