"""``python -m build`` makes a wheel and an sdist with the right contents and metadata."""

from __future__ import annotations

import re
import tarfile
import zipfile
from email.parser import Parser

import pytest
from packaging.requirements import Requirement

from opensearch_llm import __version__

from .conftest import Dist
from .support import PACKAGES, ROOT, project

pytestmark = pytest.mark.slow


def wheel_names(dist: Dist) -> set[str]:
    with zipfile.ZipFile(dist.wheel) as wheel:
        return set(wheel.namelist())


def wheel_metadata(dist: Dist):
    name = f"opensearch_llm-{__version__}.dist-info/METADATA"
    with zipfile.ZipFile(dist.wheel) as wheel:
        return Parser().parsestr(wheel.read(name).decode())


def sdist_names(dist: Dist) -> set[str]:
    with tarfile.open(dist.sdist) as sdist:
        prefix = f"opensearch_llm-{__version__}/"
        return {member.name.removeprefix(prefix) for member in sdist.getmembers()}


def test_the_version_is_defined_once() -> None:
    assert "version" in project()["dynamic"] and "version" not in project()
    sources = [
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if re.search(r"^__version__\s*=", path.read_text(encoding="utf-8"), re.M)
    ]
    assert sources == ["opensearch_llm/_version.py"]


def test_wheel_ships_the_three_packages_typed(dist: Dist) -> None:
    names = wheel_names(dist)
    for package in PACKAGES:
        assert f"{package}/__init__.py" in names
        assert f"{package}/py.typed" in names
    assert "opensearch_llm/emulator/__init__.py" in names
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {*PACKAGES, f"opensearch_llm-{__version__}.dist-info"}


def test_wheel_metadata(dist: Dist) -> None:
    meta = wheel_metadata(dist)
    assert meta["Name"] == "opensearch-llm" and meta["Version"] == __version__
    assert meta["Requires-Python"] == ">=3.10"
    assert set(meta.get_all("Provides-Extra")) >= {
        "emulator",
        "langchain",
        "llama-index",
        "all",
        "bench",
        "dev",
    }
    by_extra: dict[str, set[str]] = {}
    for line in meta.get_all("Requires-Dist"):
        requirement = Requirement(line)
        extra = re.search(r'extra == "([^"]+)"', str(requirement.marker or ""))
        by_extra.setdefault(extra.group(1) if extra else "", set()).add(requirement.name)
    assert by_extra[""] == {
        "aiohttp",
        "certifi",
        "httpx",
        "pydantic",
        "pydantic-core",
        "tenacity",
        "typing-extensions",
        "anyio",
        "aiolimiter",
        "tqdm",
    }
    assert by_extra["langchain"] == {"langchain-core"}
    assert by_extra["llama-index"] == {"llama-index-core"}
    assert {"uvicorn"} <= by_extra["emulator"] and not by_extra["emulator"] & {
        "langchain-core",
        "llama-index-core",
    }


def test_wheel_declares_the_command(dist: Dist) -> None:
    with zipfile.ZipFile(dist.wheel) as wheel:
        entry_points = wheel.read(f"opensearch_llm-{__version__}.dist-info/entry_points.txt")
    assert "opensearch-llm = opensearch_llm.cli:main" in entry_points.decode()


def test_sdist_has_sources_tests_and_their_data(dist: Dist) -> None:
    names = sdist_names(dist)
    assert {"pyproject.toml", "README.md", "PKG-INFO"} <= names
    for package in PACKAGES:
        assert f"{package}/py.typed" in names
    assert "cassettes/compatible_stream_usage.yaml" in names
    assert "scripts/record_cassettes.py" in names
    assert any(name.startswith("notebooks/") and name.endswith(".ipynb") for name in names)
    assert any(name.startswith("tests/cassettes/") for name in names)
    assert not any(".venv" in name or "__pycache__" in name for name in names)
