"""``opensearch-llm batch``: ``run`` a file of requests, and ``status``, ``cancel``, ``download``.

The service or the emulator answers as for ``chat`` (``cli.offline``: the emulator, in-process,
only when no key and no endpoint is set, and stderr says so).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any, TextIO

from opensearch_llm._cli_common import (
    DEFAULT_APP,
    EMULATOR_BASE_URL,
    EMULATOR_KEY,
    EMULATOR_ORIGIN,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    SET_KEY,
    UsageError,
    offline,
)
from opensearch_llm._config import KNOWLEDGE_APP_ENV_VAR, KNOWLEDGE_HOST_ENV_VAR
from opensearch_llm.batch._api import (
    DEFAULT_COMPLETION_WINDOW,
    DEFAULT_POLL_SECONDS,
    FINAL_STATUSES,
    BatchAPIClient,
    batch_progress,
    download,
    download_remembered,
    run_batch_api,
    state_path,
)
from opensearch_llm.batch._files import ResultWriter
from opensearch_llm.batch._runner import DEFAULT_BATCH_MAX_RETRIES, DEFAULT_CONCURRENCY, arun
from opensearch_llm.batch._summary import BatchSummary

#: Seconds between polls of the in-process emulator (its batches finish in a second).
EMULATOR_POLL_SECONDS = 0.25

#: The options of ``batch run``: flags and ``add_argument`` keywords.
RUN_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--out", "-o"), {"required": True, "help": "results: .jsonl, .csv or .parquet"}),
    (("--model",), {"help": "model for rows that name none, e.g. qwen-plus"}),
    (
        ("--via",),
        {
            "choices": ("online", "batch-api"),
            "default": "online",
            "help": "online calls (default), or the service's Batch API (half the price, hours)",
        },
    ),
    (
        ("--concurrency",),
        {
            "type": int,
            "default": DEFAULT_CONCURRENCY,
            "help": f"requests in flight at most; 429s narrow it (default {DEFAULT_CONCURRENCY})",
        },
    ),
    (("--rpm",), {"type": float, "help": "requests per minute at most"}),
    (("--tpm",), {"type": float, "help": "tokens per minute at most"}),
    (
        ("--max-retries",),
        {
            "type": int,
            "default": DEFAULT_BATCH_MAX_RETRIES,
            "help": f"retries of a row (default {DEFAULT_BATCH_MAX_RETRIES})",
        },
    ),
    (
        ("--completion-window",),
        {"default": DEFAULT_COMPLETION_WINDOW, "help": "batch-api: 24h to 336h"},
    ),
    (("--poll",), {"type": float, "help": "batch-api: seconds between polls"}),
    (
        ("--retry-failed",),
        {
            "action": "store_true",
            "help": "online: send again the rows whose line in --out is an error (but those "
            "the service refused as requests, HTTP 400)",
        },
    ),
    (
        ("--knowledge-host",),
        {"help": f"online: the knowledge-llm host (env {KNOWLEDGE_HOST_ENV_VAR})"},
    ),
    (
        ("--app",),
        {
            "help": "online: the knowledge-llm application of rows that name none "
            f'(env {KNOWLEDGE_APP_ENV_VAR}, default "{DEFAULT_APP}")'
        },
    ),
    (("--no-progress",), {"action": "store_true", "help": "no progress bar"}),
)
#: ``batch run`` options of online runs only, by their ``args`` name.
ONLINE_ONLY = ("retry_failed", "knowledge_host", "app", "rpm", "tpm")


def add_batch_parser(commands: Any) -> None:
    """Add the ``batch`` command to an ``add_subparsers()`` object."""
    batch = commands.add_parser("batch", help="bulk inference from a file, resumable")
    actions = batch.add_subparsers(dest="batch_command", required=True)
    endpoint = argparse.ArgumentParser(add_help=False)
    endpoint.add_argument("--base-url", help="compatible-mode base URL, e.g. https://…/v1")
    endpoint.add_argument("--region", help="singapore, virginia, beijing or hongkong")

    run = actions.add_parser(
        "run",
        parents=[endpoint],
        help="answer every row of a file; run again to resume",
        description="Answer every row of INPUT (JSON Lines, CSV or Parquet) into --out. Rows "
        "whose custom_id is already in --out are skipped. Exit status 1 when rows failed or "
        "a batch did not complete.",
    )
    run.add_argument("input", help="requests: .jsonl (Batch API or plain lines), .csv, .parquet")
    for flags, options in RUN_OPTIONS:
        run.add_argument(*flags, **options)
    run.set_defaults(run=run_batch)

    for name, help_text, command in (
        ("status", "show a Batch API batch", show_status),
        ("cancel", "cancel a Batch API batch", cancel_batch),
        ("download", "write finished batches' results", download_batch),
    ):
        action = actions.add_parser(name, parents=[endpoint], help=help_text)
        if name == "download":
            action.add_argument(
                "batch_id", nargs="?", help="default: the batches `batch run` made for --out"
            )
            action.add_argument("--out", "-o", required=True, help="results (.jsonl, .csv...)")
        else:
            action.add_argument("batch_id")
        action.set_defaults(run=command)


def _client_options(args: argparse.Namespace, err: TextIO, *, asynchronous: bool) -> dict[str, Any]:
    """The client's options: the service, or the in-process emulator when nothing is set."""
    if not offline(args, err):
        return {"base_url": args.base_url, "region": args.region}
    import httpx

    from opensearch_llm.emulator import Emulator

    emulator = Emulator()
    http_client: Any = (
        httpx.AsyncClient(transport=emulator.async_transport())
        if asynchronous
        else httpx.Client(transport=emulator.transport())
    )
    return {"api_key": EMULATOR_KEY, "base_url": EMULATOR_BASE_URL, "http_client": http_client}


def _knowledge_options(
    args: argparse.Namespace, client_options: dict[str, Any], err: TextIO
) -> dict[str, Any]:
    """``app`` and ``knowledge_host`` as ``ask`` finds them; the emulator's when it answers.

    The emulator answers for want of a key: a host named on the command line is then an error,
    one only in the environment (set for ``ask``, say) is left alone, and stderr says so.
    """
    app = args.app or os.environ.get(KNOWLEDGE_APP_ENV_VAR) or DEFAULT_APP
    if "http_client" not in client_options:
        return {"app": app, "knowledge_host": args.knowledge_host}
    if args.knowledge_host:
        raise UsageError(f"no API key for {args.knowledge_host}: {SET_KEY}")
    if os.environ.get(KNOWLEDGE_HOST_ENV_VAR):
        print(f"{KNOWLEDGE_HOST_ENV_VAR} left alone: no API key", file=err)
    return {"app": app, "knowledge_host": EMULATOR_ORIGIN}


def run_batch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``batch run``: the summary on stdout; 1 when rows failed or a batch did not complete."""
    online = args.via == "online"
    given = [name for name in ONLINE_ONLY if getattr(args, name)]
    if given and not online:
        flag = "--" + given[0].replace("_", "-")
        raise UsageError(f"{flag} applies to online runs only, not to --via batch-api")
    options = _client_options(args, err, asynchronous=online)
    common = {"model": args.model, "progress": not args.no_progress}
    try:
        if online:
            summary = asyncio.run(
                arun(
                    args.input,
                    args.out,
                    concurrency=args.concurrency,
                    requests_per_minute=args.rpm,
                    tokens_per_minute=args.tpm,
                    max_retries=args.max_retries,
                    retry_failed=args.retry_failed,
                    **_knowledge_options(args, options, err),
                    **common,
                    **options,
                )
            )
        else:
            summary = _run_batch_api(args, options, common)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished rows are in {args.out}; run again to resume", file=err)
        return EXIT_INTERRUPTED
    print(summary, file=out)
    return EXIT_OK if summary.ok else EXIT_FAILED


def _run_batch_api(args: argparse.Namespace, options: dict[str, Any], common: Any) -> Any:
    in_process = "http_client" in options
    poll = args.poll or (EMULATOR_POLL_SECONDS if in_process else DEFAULT_POLL_SECONDS)
    return run_batch_api(
        args.input,
        args.out,
        completion_window=args.completion_window,
        poll_seconds=poll,
        **common,
        **options,
    )


def _api(args: argparse.Namespace, err: TextIO) -> BatchAPIClient:
    return BatchAPIClient(**_client_options(args, err, asynchronous=False))


def show_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``batch status ID``: the batch object as JSON (secrets masked)."""
    with _api(args, err) as api:
        print(json.dumps(api.retrieve(args.batch_id), indent=2, ensure_ascii=False), file=out)
    return EXIT_OK


def cancel_batch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``batch cancel ID``: the batch object after the cancel, as JSON (secrets masked)."""
    with _api(args, err) as api:
        print(json.dumps(api.cancel(args.batch_id), indent=2, ensure_ascii=False), file=out)
    return EXIT_OK


def download_batch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``batch download [ID] --out FILE``: finished batches' results; 1 unless all answered.

    Without ``ID``: every batch ``batch run`` made for ``FILE`` and has not written yet.
    """
    if args.batch_id is None:
        return _download_remembered(args, out, err)
    with _api(args, err) as api:
        batch = api.retrieve(args.batch_id)
        status = batch.get("status")
        if status not in FINAL_STATUSES:
            print(f"batch {args.batch_id} is {status}: not finished yet", file=err)
            return EXIT_USAGE
        total = batch_progress(batch)[1]
        summary = BatchSummary(args.out, rows=total, batch_id=args.batch_id, status=status)
        writer = ResultWriter(args.out)
        try:
            summary.skipped = download(api, batch, writer, summary)
        finally:
            writer.close()
    print(summary, file=out)
    return EXIT_OK if summary.ok else EXIT_FAILED


def _download_remembered(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """The batches of ``<out>.batch.json``; 2 while some are not finished, as for one batch."""
    if not state_path(args.out).exists():
        raise UsageError(f"no batch of `batch run` is left to download into {args.out}: name one")
    with _api(args, err) as api:
        summary, left = download_remembered(api, args.out)
    for line in left:
        print(line, file=err)
    print(summary, file=out)
    if left:
        return EXIT_USAGE
    return EXIT_OK if summary.ok else EXIT_FAILED
