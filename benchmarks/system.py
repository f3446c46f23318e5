"""CPU pinning and CPU seconds from /proc (Linux; elsewhere these do nothing or return None).

Standard library only (``os``): the worker imports it after its timed import, the server at start.
"""

from __future__ import annotations

import os


def pin_to(cpus: set[int]) -> None:
    """Run this process on ``cpus`` only, where the platform allows (ignored elsewhere)."""
    if hasattr(os, "sched_setaffinity"):
        allowed = os.sched_getaffinity(0) & cpus
        if allowed:
            os.sched_setaffinity(0, allowed)


def cpu_split() -> tuple[int | None, list[int]]:
    """(server CPU, worker CPUs): the server on the first CPU, workers on the others."""
    if not hasattr(os, "sched_getaffinity"):
        return None, []
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, []
    return cpus[0], cpus[1:]


def child_environment() -> dict[str, str]:
    """This environment, except that children cache compiled bytecode.

    pip compiles installed packages, but an editable install (ours) is compiled on import: with
    ``PYTHONDONTWRITEBYTECODE`` set, every cold import of ours would include compiling it.
    """
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def read_text(path: str) -> str | None:
    try:
        with open(path) as file:
            return file.read()
    except OSError:
        return None


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (all its threads); None without /proc."""
    text = read_text(f"/proc/{pid}/stat")
    if text is None:
        return None
    # After "(command)": state is field 3 of proc(5); utime and stime are fields 14 and 15.
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_cpu_seconds() -> float | None:
    """CPU seconds all CPUs have been busy since boot (to tell others' load from ours)."""
    text = read_text("/proc/stat")
    if text is None:
        return None
    values = [int(v) for v in text.split("\n", 1)[0].split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK")


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None
