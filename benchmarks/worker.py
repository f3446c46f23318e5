"""One measurement of one client, in a fresh process: ``python -m benchmarks.worker JOB_JSON``.

The process first imports what the client needs (timed: the cold import) with nothing but
``sys``, ``os``, ``json``, ``time`` and ``importlib`` loaded before it, then runs one
measurement (``benchmarks.measure``) and prints one JSON line:

- ``import``: the cold import only.
- ``calls``: building the client and its first call, then sequential non-streamed calls
  (median per call) and the process's peak RSS.
- ``stream``: 500-chunk streams: time to first chunk and the cost of each further chunk.
- ``async``: non-streamed calls from ``concurrency`` asyncio tasks sharing one client.
- ``ceiling``: the server alone, loaded by a raw-socket client (``benchmarks.ceiling``).

A job of the transport suite (``"suite": "transport"``) runs ``benchmarks.transport`` instead.
"""

import importlib
import json
import os
import sys
import time


def pin(cpus: list[int]) -> None:
    if cpus and hasattr(os, "sched_setaffinity"):
        allowed = os.sched_getaffinity(0) & set(cpus)
        if allowed:
            os.sched_setaffinity(0, allowed)


def cold_import(imports: list[list[str]]) -> float:
    """Seconds to import ``module`` and get ``attribute`` (some packages load lazily)."""
    start = time.perf_counter()
    for module, attribute in imports:
        loaded = importlib.import_module(module)
        if attribute:
            getattr(loaded, attribute)
    return time.perf_counter() - start


def main() -> None:
    job = json.loads(sys.argv[1])
    pin(job.get("cpus") or [])
    result = {"import_s": cold_import(job.get("imports") or [])}
    if job.get("suite") == "transport":
        from benchmarks.transport import run
    else:
        from benchmarks.measure import run

    result.update(run(job))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
