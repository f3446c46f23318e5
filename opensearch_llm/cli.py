"""The ``opensearch-llm`` command: ``chat``, ``ask`` (knowledge-llm) and ``emulator``.

With no API key in the environment (and, for ``ask``, no knowledge-llm host), ``chat`` and
``ask`` answer from the built-in emulator, in-process, and say so on stderr; else they call the
service.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import httpx

from opensearch_llm._config import (
    API_KEY_ENV_VARS,
    DEFAULT_MODEL,
    KNOWLEDGE_APP_ENV_VAR,
    KNOWLEDGE_HOST_ENV_VAR,
)
from opensearch_llm._errors import OpenSearchLLMError
from opensearch_llm.chat import ChatClient
from opensearch_llm.knowledge import KnowledgeClient

EMULATOR_ORIGIN = "http://emulator.local"
EMULATOR_KEY = "sk-emulator"
DEFAULT_APP = "default"


def has_api_key() -> bool:
    """Whether a key is configured in the environment."""
    return any(os.environ.get(name) for name in API_KEY_ENV_VARS)


NO_KEY = "API key (" + " or ".join(API_KEY_ENV_VARS) + ")"
NO_HOST = f"knowledge-llm host ({KNOWLEDGE_HOST_ENV_VAR} or --host)"


def _say_offline(err: TextIO, missing: str) -> None:
    print(f"No {missing} set: answering from the built-in emulator, offline.", file=err)


def chat_client(args: argparse.Namespace, err: TextIO) -> ChatClient:
    """A chat client for the service, or for the in-process emulator when there is no key."""
    if has_api_key():
        return ChatClient(base_url=args.base_url, region=args.region)
    _say_offline(err, NO_KEY)
    return ChatClient(
        EMULATOR_KEY,
        base_url=f"{EMULATOR_ORIGIN}/compatible-mode/v1",
        http_client=httpx.Client(transport=_emulator_transport()),
    )


def knowledge_client(args: argparse.Namespace, err: TextIO) -> KnowledgeClient:
    """A knowledge-llm client for the service, or for the emulator without a key or a host."""
    app = args.app or os.environ.get(KNOWLEDGE_APP_ENV_VAR) or DEFAULT_APP
    host = args.host or os.environ.get(KNOWLEDGE_HOST_ENV_VAR)
    if has_api_key() and host:
        return KnowledgeClient(host=host, app=app)
    _say_offline(err, NO_HOST if has_api_key() else NO_KEY)
    return KnowledgeClient(
        EMULATOR_KEY,
        host=EMULATOR_ORIGIN,
        app=app,
        http_client=httpx.Client(transport=_emulator_transport()),
    )


def _emulator_transport() -> httpx.BaseTransport:
    from opensearch_llm.emulator import Emulator

    return Emulator().transport()


def stream_reply(
    client: ChatClient,
    model: str,
    messages: list[dict[str, Any]],
    out: TextIO,
    err: TextIO,
    reasoning: bool,
) -> str:
    """Stream one reply to ``out`` (reasoning to ``err`` if asked); the reply's text."""
    with client.stream(model=model, messages=messages) as stream:
        for chunk in stream:
            for choice in chunk["choices"]:
                delta = choice.get("delta") or {}
                if reasoning and delta.get("reasoning_content"):
                    err.write(delta["reasoning_content"])
                if delta.get("content"):
                    out.write(delta["content"])
                    out.flush()
        out.write("\n")
    message = stream.completion()["choices"][0]["message"]
    return str(message.get("content") or "")


def run_chat(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``chat``: one prompt (argument or stdin), or an interactive session on a terminal."""
    with chat_client(args, err) as client:
        return _chat(client, args, out, err)


def _chat(client: ChatClient, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    messages: list[dict[str, Any]] = (
        [{"role": "system", "content": args.system}] if args.system else []
    )
    prompt = " ".join(args.prompt) if args.prompt else None
    if prompt is None and not sys.stdin.isatty():
        prompt = sys.stdin.read().strip()
    if prompt is not None:
        messages.append({"role": "user", "content": prompt})
        if args.json:
            print(
                json.dumps(
                    client.create(model=args.model, messages=messages), ensure_ascii=False, indent=2
                ),
                file=out,
            )
        else:
            stream_reply(client, args.model, messages, out, err, args.reasoning)
        return 0
    return interactive(client, args, messages, out, err)


def interactive(
    client: ChatClient,
    args: argparse.Namespace,
    messages: list[dict[str, Any]],
    out: TextIO,
    err: TextIO,
) -> int:
    """Read prompts until EOF or ``exit``; keep the conversation."""
    print(f"Chatting with {args.model}; an empty line or Ctrl-D ends.", file=err)
    while True:
        try:
            line = input("> ").strip()
        except EOFError:
            return 0
        if not line or line in ("exit", "quit"):
            return 0
        messages.append({"role": "user", "content": line})
        reply = stream_reply(client, args.model, messages, out, err, args.reasoning)
        messages.append({"role": "assistant", "content": reply})


def read_content(args: argparse.Namespace) -> list[str]:
    """Passages from ``--content``, ``--file`` and (when piped) stdin, one passage per paragraph."""
    passages = list(args.content or [])
    for path in args.file or []:
        with open(path, encoding="utf-8") as handle:
            passages.extend(_paragraphs(handle.read()))
    if not passages and not sys.stdin.isatty():
        passages.extend(_paragraphs(sys.stdin.read()))
    return passages


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def run_ask(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``ask``: a knowledge-llm answer to a question from the given content."""
    question = " ".join(args.question)
    content = read_content(args)
    with (
        knowledge_client(args, err) as client,
        client.stream(question=question, content=content, model=args.model) as stream,
    ):
        for piece in stream:
            out.write(piece)
            out.flush()
    out.write("\n")
    return 0


def run_emulator(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``emulator``: serve the emulator on 127.0.0.1 until Ctrl-C."""
    from opensearch_llm.emulator import Emulator, serve

    with serve(Emulator(api_key=args.api_key), host=args.host, port=args.port) as server:
        print(f"emulator at {server.origin}", file=err)
        print(f"  compatible mode: {server.compatible_base_url}", file=err)
        print(f"  gateway:         {server.gateway_base_url}", file=err)
        print(
            f"  knowledge-llm:   {server.origin}/v3/openapi/apps/<app>/actions/knowledge-llm",
            file=err,
        )
        print("Ctrl-C stops it.", file=err, flush=True)
        threading.Event().wait()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="opensearch-llm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    endpoint = argparse.ArgumentParser(add_help=False)
    endpoint.add_argument("--base-url", help="chat endpoint, e.g. https://…/compatible-mode/v1")
    endpoint.add_argument("--region", help="singapore, virginia, beijing or hongkong")
    endpoint.add_argument("--model", default=DEFAULT_MODEL, help=f"model (default {DEFAULT_MODEL})")

    chat = commands.add_parser("chat", parents=[endpoint], help="chat with a model")
    chat.add_argument(
        "prompt", nargs="*", help="the prompt; none: read stdin, or chat interactively"
    )
    chat.add_argument("--system", help="a system message")
    chat.add_argument("--json", action="store_true", help="print the whole completion as JSON")
    chat.add_argument("--reasoning", action="store_true", help="print reasoning to stderr")
    chat.set_defaults(run=run_chat)

    ask = commands.add_parser("ask", help="knowledge-llm: answer a question from content")
    _knowledge_options(ask)
    ask.add_argument("question", nargs="+")
    ask.add_argument("--content", action="append", help="a content passage (repeatable)")
    ask.add_argument("--file", action="append", help="a file of passages, split at blank lines")
    ask.add_argument("--model", help="knowledge-llm model, e.g. qwen-plus")
    ask.set_defaults(run=run_ask)

    emulator = commands.add_parser("emulator", help="serve the local emulator")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8000)
    emulator.add_argument("--api-key", help="accept only this key (default: any)")
    emulator.set_defaults(run=run_emulator)
    return parser


def _knowledge_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default=os.environ.get(KNOWLEDGE_HOST_ENV_VAR), help="knowledge-llm host"
    )
    parser.add_argument("--app", help=f"application name (env {KNOWLEDGE_APP_ENV_VAR})")


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command; the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace, TextIO, TextIO], int] = args.run
    try:
        return run(args, out, err)
    except KeyboardInterrupt:
        print("\ninterrupted", file=err)
        return 130
    except OpenSearchLLMError as error:
        print(f"\nerror: {type(error).__name__}: {error}", file=err)
        return 1


if __name__ == "__main__":
    sys.exit(main())
