"""The machine and software the figures were taken on, for the results' header."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys

#: Versions reported with the results (missing ones are reported as such).
PACKAGES = (
    "opensearch-llm",
    "httpx",
    "httpcore",
    "aiohttp",
    "h11",
    "openai",
    "langchain-core",
    "langchain-openai",
    "langsmith",
    "llama-index-core",
    "llama-index-llms-openai",
    "llama-index-llms-openai-like",
    "pydantic",
    "pydantic-core",
    "tenacity",
    "uvicorn",
    "httptools",
    "uvloop",
)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            lines = cpuinfo.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def describe() -> dict[str, object]:
    """CPU model, cores, Python, OS and package versions."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "usable_cpus": usable,
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "platform": platform.platform(),
        "versions": versions(),
    }
