"""Building the distribution, making bare virtual environments, resolving extras offline."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: hatchling's dependency
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("opensearch_llm", "langchain_opensearch_llm", "llama_index_opensearch_llm")
PYPI_TESTS_ENV = "OPENSEARCH_LLM_PYPI_TESTS"


def project() -> dict:
    """``[project]`` of pyproject.toml."""
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return dict(tomllib.load(handle)["project"])


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command; its stdout. Fails the test with the output when it fails."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, command))} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result.stdout


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without Python path overrides, keys or endpoints."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    env = {
        k: v for k, v in os.environ.items() if k not in drop and not k.startswith("OPENSEARCH_LLM_")
    }
    env.pop("DASHSCOPE_API_KEY", None)
    return {**env, **extra}


@dataclass(frozen=True)
class Env:
    """A virtual environment."""

    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        return self.path / "lib" / version / "site-packages"

    def pip(self, *args: str | Path, cwd: Path) -> str:
        """This environment's pip: the test environment's pip aimed at it (``--python``)."""
        command = [sys.executable, "-m", "pip", "--python", str(self.python), *args]
        return run(*command, cwd=cwd, env=clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1"))

    def python_run(self, code: str, cwd: Path, **env: str) -> str:
        """Run ``code`` with this environment's Python, outside the source tree."""
        return run(self.python, "-c", code, cwd=cwd, env=clean_env(**env))


def bare_env(path: Path, *, with_pip: bool = False) -> Env:
    """A new virtual environment, without pip unless asked (pip is driven from outside)."""
    venv.EnvBuilder(with_pip=with_pip, clear=True).create(path)
    return Env(path)


# --------------------------------------------------------------------------- offline resolution


def requirements_of(dist_name: str, extras: Iterable[str] = ()) -> list[Requirement]:
    """The requirements an installed distribution declares, with markers evaluated for extras."""
    requires = metadata.distribution(dist_name).requires or []
    return [r for r in map(Requirement, requires) if _applies(r.marker, extras)]


def _applies(marker: Marker | None, extras: Iterable[str]) -> bool:
    if marker is None:
        return True
    return any(marker.evaluate({"extra": extra}) for extra in (*extras, ""))


def project_requirements(extras: Iterable[str] = ()) -> list[Requirement]:
    """opensearch-llm's own requirements for ``extras``, self-references expanded."""
    data = project()
    optional = data.get("optional-dependencies", {})
    pending = [*map(Requirement, data["dependencies"])]
    seen_extras: set[str] = set()
    queue = list(extras)
    while queue:
        extra = queue.pop()
        if extra in seen_extras:
            continue
        seen_extras.add(extra)
        for requirement in map(Requirement, optional[extra]):
            if canonicalize_name(requirement.name) == "opensearch-llm":
                queue.extend(requirement.extras)
            else:
                pending.append(requirement)
    return [r for r in pending if r.marker is None or r.marker.evaluate({"extra": ""})]


def closure(requirements: Iterable[Requirement]) -> set[str]:
    """Every distribution (canonical name) the requirements pull in, per installed metadata.

    This is what pip would install given the versions in this environment (``.[dev]`` has them
    all). A required distribution that is not installed fails the test: it cannot be followed.
    """
    found: set[str] = set()
    queue = [(r.name, tuple(sorted(r.extras))) for r in requirements]
    visited: set[tuple[str, tuple[str, ...]]] = set()
    while queue:
        name, extras = queue.pop()
        key = (canonicalize_name(name), extras)
        if key in visited:
            continue
        visited.add(key)
        found.add(key[0])
        try:
            needs = requirements_of(name, extras)
        except metadata.PackageNotFoundError:
            raise AssertionError(f"{name} is required but not installed: pip install -e '.[dev]'")
        queue.extend((r.name, tuple(sorted(r.extras))) for r in needs)
    return found


def link_distributions(names: Iterable[str], target: Path) -> None:
    """Symlink the installed files of these distributions (packages, modules, dist-info)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        dist = metadata.distribution(name)
        site = Path(str(dist.locate_file("")))
        tops = {Path(str(f)).parts[0] for f in dist.files or () if not str(f).startswith("..")}
        for top in tops:
            source = site / top
            link = target / top
            if source.exists() and not link.exists() and top != "__pycache__":
                link.symlink_to(source)
