"""The layout holds: no two modules import each other, and docs/architecture.md maps them all."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("opensearch_llm", "langchain_opensearch_llm", "llama_index_opensearch_llm")
MAP = ROOT / "docs" / "architecture.md"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _imported(module: str, path: Path, known: set[str]) -> set[str]:
    """Every module of ours that ``module`` imports, anywhere (functions, TYPE_CHECKING too)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], base]).rstrip(".")
            found |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return (found & known) - {module}


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imported(name, path, set(modules)) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_modules_import_each_other() -> None:
    graph = _import_graph()
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _mapped_paths() -> set[str]:
    """The module paths the map's tables name (``chat.py``, ``emulator/``, ``pkg/x.py``)."""
    names = set(re.findall(r"\| `([\w/]+(?:\.py|/))` \|", MAP.read_text()))
    return {name if "/" in name.rstrip("/") else f"opensearch_llm/{name}" for name in names}


def test_every_module_the_map_names_exists() -> None:
    for name in _mapped_paths():
        assert (ROOT / name).exists(), f"docs/architecture.md names {name}, which does not exist"


def test_the_map_names_every_module() -> None:
    mapped = _mapped_paths()
    modules = [
        str(path.relative_to(ROOT))
        for pkg in PACKAGES
        for path in (ROOT / pkg).glob("*.py")
        if path.name not in {"__init__.py", "_version.py"} or pkg == "opensearch_llm"
    ]
    missing = [m for m in modules if m not in mapped and m != "opensearch_llm/_version.py"]
    assert missing == [], f"docs/architecture.md does not say where these belong: {missing}"
