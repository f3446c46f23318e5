"""The ``opensearch-llm`` command: ``chat``, ``ask`` (knowledge-llm), ``emulator`` and ``batch``.

The emulator answers ``chat``, ``ask`` and ``batch`` only when nothing is configured (no API key
and no endpoint): the command says so on stderr. Once an endpoint is named (``--base-url``,
``--region``, ``OPENSEARCH_LLM_BASE_URL``; for ``ask`` ``--host`` or
``OPENSEARCH_LLM_KNOWLEDGE_HOST``) or a key is set, the service is called, and a missing key or
host is an error that says what to set.

Exit status: 0 done; 1 the service or the network failed; 2 the command or the configuration is
wrong (a usage error, a missing key or host, an unreadable file, a port in use, a missing extra);
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, TextIO, cast

import httpx

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
    has_api_key,
    offline,
    say_offline,
)
from opensearch_llm._config import (
    API_KEY_ENV_VARS,
    BASE_URL_ENV_VAR,
    DEFAULT_MODEL,
    KNOWLEDGE_APP_ENV_VAR,
    KNOWLEDGE_HOST_ENV_VAR,
    REGION_BASE_URLS,
)
from opensearch_llm._errors import (
    APIConnectionError,
    MissingAPIKeyError,
    OpenSearchLLMError,
    RequestValidationError,
)
from opensearch_llm._extras import install_hint
from opensearch_llm._version import __version__
from opensearch_llm.chat import ChatClient
from opensearch_llm.knowledge import KnowledgeClient

Run = Callable[[argparse.Namespace, TextIO, TextIO], int]


def _emulator_http_client() -> httpx.Client:
    from opensearch_llm.emulator import Emulator

    return httpx.Client(transport=Emulator().transport())


# --------------------------------------------------------------------------- endpoints


def chat_client(args: argparse.Namespace, err: TextIO) -> ChatClient:
    """A client for the service; for the in-process emulator when nothing is configured."""
    if not offline(args, err):
        return ChatClient(base_url=args.base_url, region=args.region)
    return ChatClient(EMULATOR_KEY, base_url=EMULATOR_BASE_URL, http_client=_emulator_http_client())


def knowledge_client(args: argparse.Namespace, err: TextIO) -> KnowledgeClient:
    """A knowledge-llm client for the service; for the emulator when nothing is configured."""
    app = args.app or os.environ.get(KNOWLEDGE_APP_ENV_VAR) or DEFAULT_APP
    host = args.host or os.environ.get(KNOWLEDGE_HOST_ENV_VAR)
    if has_api_key() and host:
        return KnowledgeClient(host=host, app=app)
    if host:
        raise UsageError(f"no API key for {host}: {SET_KEY}")
    if has_api_key():
        raise UsageError(
            f"no knowledge-llm host: set {KNOWLEDGE_HOST_ENV_VAR} or pass --host (the "
            "instance's API endpoint on the OpenSearch console)"
        )
    say_offline(err, f"API key and no knowledge-llm host ({KNOWLEDGE_HOST_ENV_VAR})")
    client = _emulator_http_client()
    return KnowledgeClient(EMULATOR_KEY, host=EMULATOR_ORIGIN, app=app, http_client=client)


# --------------------------------------------------------------------------- chat


def chat_params(args: argparse.Namespace) -> dict[str, Any]:
    """The request parameters the options set (the model always)."""
    params: dict[str, Any] = {"model": args.model}
    if args.temperature is not None:
        params["temperature"] = args.temperature
    if args.max_tokens is not None:
        params["max_tokens"] = args.max_tokens
    return params


def reply(
    client: ChatClient,
    args: argparse.Namespace,
    messages: list[dict[str, Any]],
    out: TextIO,
    err: TextIO,
) -> str:
    """Answer ``messages`` as the options say (streamed, whole, or JSON); the answer's text."""
    if args.json:
        completion = client.create(messages=messages, **chat_params(args))
        print(json.dumps(completion, ensure_ascii=False, indent=2), file=out)
        return _content(completion)
    if args.no_stream:
        completion = client.create(messages=messages, **chat_params(args))
        message = completion["choices"][0]["message"]
        if args.reasoning and message.get("reasoning_content"):
            print(message["reasoning_content"], end="\n\n", file=err, flush=True)
        content = _content(completion)
        print(content, file=out)
        return content
    return stream_reply(client, args, messages, out, err)


def _content(completion: dict[str, Any]) -> str:
    return str(completion["choices"][0]["message"].get("content") or "")


def stream_reply(
    client: ChatClient,
    args: argparse.Namespace,
    messages: list[dict[str, Any]],
    out: TextIO,
    err: TextIO,
) -> str:
    """Stream one answer to ``out``, its reasoning (if asked) to ``err`` before it, apart."""
    thinking = False
    with client.stream(messages=messages, **chat_params(args)) as stream:
        for chunk in stream:
            for choice in chunk["choices"]:
                delta = choice.get("delta") or {}
                if args.reasoning and delta.get("reasoning_content"):
                    err.write(delta["reasoning_content"])
                    err.flush()
                    thinking = True
                if delta.get("content"):
                    if thinking:
                        print(end="\n\n", file=err, flush=True)
                        thinking = False
                    out.write(delta["content"])
                    out.flush()
        out.write("\n")
    return _content(stream.completion())


def run_chat(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``chat``: one answer (prompt, piped stdin or history), or a session on a terminal."""
    messages = [{"role": "system", "content": args.system}] if args.system else []
    messages += read_history(args.history) if args.history else []
    prompt = " ".join(args.prompt) if args.prompt else None
    if prompt is None and not _ends_with_user(messages) and args.history != "-":
        prompt = _piped_text()
    if prompt is not None:
        messages.append({"role": "user", "content": prompt})
    one_shot = _ends_with_user(messages)
    if not one_shot and not sys.stdin.isatty():
        raise UsageError("nothing to answer: pass a prompt, pipe one in, or end --history with it")
    with chat_client(args, err) as client:
        if one_shot:
            reply(client, args, messages, out, err)
            return EXIT_OK
        return interactive(client, args, messages, out, err)


def _ends_with_user(messages: list[dict[str, Any]]) -> bool:
    return bool(messages) and messages[-1]["role"] == "user"


def _piped_text() -> str | None:
    """The text piped to stdin (None on a terminal, or when it is blank)."""
    return None if sys.stdin.isatty() else sys.stdin.read().strip() or None


def read_history(path: str) -> list[dict[str, Any]]:
    """Messages from a JSON array or JSON Lines file (``-``: stdin)."""
    text = _read_text(path, "--history")
    try:
        stripped = text.strip()
        loaded = json.loads(stripped) if stripped.startswith("[") else _json_lines(stripped)
    except ValueError as error:
        raise UsageError(f"--history {path}: not JSON ({error})") from None
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in loaded):
        raise UsageError(f"--history {path}: each message must be an object with a role")
    return list(loaded)


def _json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _read_text(path: str, option: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise UsageError(f"cannot read {option} {path}: {reason}") from None


def interactive(
    client: ChatClient,
    args: argparse.Namespace,
    messages: list[dict[str, Any]],
    out: TextIO,
    err: TextIO,
) -> int:
    """Read prompts until EOF, an empty line or ``exit``; keep the conversation."""
    print(f"Chatting with {args.model}; an empty line or Ctrl-D ends.", file=err)
    while True:
        try:
            line = input("> ").strip()
        except EOFError:
            return EXIT_OK
        if not line or line in ("exit", "quit"):
            return EXIT_OK
        messages.append({"role": "user", "content": line})
        messages.append({"role": "assistant", "content": reply(client, args, messages, out, err)})


# --------------------------------------------------------------------------- ask


def read_content(args: argparse.Namespace) -> list[str]:
    """Passages from ``--content``, ``--file`` and (when piped) stdin, one passage per paragraph."""
    passages = list(args.content or [])
    for path in args.file or []:
        passages.extend(_paragraphs(_read_text(path, "--file")))
    if not passages:
        passages = _paragraphs(_piped_text() or "")
    if not passages:
        raise UsageError(
            "no passages to answer from: pass --content TEXT or --file PATH, or pipe them in"
        )
    return passages


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def run_ask(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``ask``: a knowledge-llm answer to a question from the given passages."""
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
    return EXIT_OK


# --------------------------------------------------------------------------- emulator


def run_emulator(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``emulator``: serve the emulator until Ctrl-C (it holds the terminal)."""
    try:
        import uvicorn  # noqa: F401
    except ModuleNotFoundError:
        raise UsageError(f"serving the emulator needs uvicorn: {install_hint('emulator')}")
    from opensearch_llm.emulator import Emulator, serve

    try:
        with serve(Emulator(api_key=args.api_key), host=args.host, port=args.port) as server:
            _print_urls(server.origin, err)
            threading.Event().wait()
    except OSError as error:  # binding the address: in use, or not this machine's
        reason = error.strerror or str(error)
        raise UsageError(
            f"cannot serve on {args.host}:{args.port}: {reason}; pass another --port "
            "(0 picks a free one)"
        ) from None
    return EXIT_OK


def _print_urls(origin: str, err: TextIO) -> None:
    print(f"emulator at {origin}", file=err)
    print(f"  compatible mode: {origin}/compatible-mode/v1", file=err)
    print(f"  gateway:         {origin}/api/v1", file=err)
    print(f"  knowledge-llm:   {origin}/v3/openapi/apps/<app>/actions/knowledge-llm", file=err)
    print("Serving until Ctrl-C: use another terminal for clients.", file=err, flush=True)


# --------------------------------------------------------------------------- the parser

DESCRIPTION = """\
Chat with a model, ask knowledge-llm, serve the local emulator, or run a batch.

With no API key and no endpoint configured, chat, ask and batch answer from the built-in
emulator, offline, and say so. Once you name an endpoint, a missing key or host is an error."""
EPILOG = f"""\
environment:
  {" or ".join(API_KEY_ENV_VARS)}  the API key
  {BASE_URL_ENV_VAR}  the chat endpoint (default: the Singapore region)
  {KNOWLEDGE_HOST_ENV_VAR}  the knowledge-llm host
  {KNOWLEDGE_APP_ENV_VAR}  the knowledge-llm application name (default "{DEFAULT_APP}")

exit status: 0 done, 1 the service or network failed, 2 wrong command or configuration,
130 interrupted"""


def add_chat_command(commands: Any) -> None:
    """``chat``."""
    chat = commands.add_parser(
        "chat",
        help="chat with a model",
        description="Answer a prompt (arguments, piped stdin, or the end of --history), or chat "
        "on a terminal when there is none. Streams the answer to stdout.",
    )
    chat.add_argument("prompt", nargs="*", help="the prompt (none: stdin, or interactive)")
    chat.add_argument("--model", default=DEFAULT_MODEL, help=f"the model (default {DEFAULT_MODEL})")
    chat.add_argument("--system", help="a system message")
    chat.add_argument("--temperature", type=float, help="sampling temperature, 0 to under 2")
    chat.add_argument("--max-tokens", type=int, help="at most this many tokens in the answer")
    chat.add_argument(
        "--history",
        metavar="FILE",
        help="earlier messages: a JSON array or JSON Lines of {role, content} (- reads stdin)",
    )
    chat.add_argument("--no-stream", action="store_true", help="wait for the whole answer")
    chat.add_argument("--json", action="store_true", help="print the raw completion as JSON")
    chat.add_argument(
        "--reasoning", action="store_true", help="print a thinking model's reasoning to stderr"
    )
    chat.add_argument("--base-url", help="the endpoint, e.g. https://…/compatible-mode/v1")
    chat.add_argument("--region", help="a Model Studio region: " + ", ".join(REGION_BASE_URLS))
    chat.set_defaults(run=run_chat)


def add_ask_command(commands: Any) -> None:
    """``ask``."""
    ask = commands.add_parser(
        "ask",
        help="knowledge-llm: answer a question from passages",
        description="Answer QUESTION from passages with knowledge-llm, streamed to stdout.",
    )
    ask.add_argument("question", nargs="+", help="the question")
    ask.add_argument("--content", action="append", help="a passage (repeatable)")
    ask.add_argument("--file", action="append", help="a file of passages, split at blank lines")
    ask.add_argument("--model", help="the model knowledge-llm uses (default: the application's)")
    ask.add_argument("--host", help=f"the instance's endpoint (env {KNOWLEDGE_HOST_ENV_VAR})")
    ask.add_argument("--app", help=f"the application name (env {KNOWLEDGE_APP_ENV_VAR})")
    ask.set_defaults(run=run_ask)


def add_emulator_command(commands: Any) -> None:
    """``emulator``."""
    emulator = commands.add_parser(
        "emulator",
        help="serve the local emulator (holds the terminal)",
        description="Serve the emulator of every dialect until Ctrl-C. Needs the [emulator] extra.",
    )
    emulator.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    emulator.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: free)")
    emulator.add_argument("--api-key", help="accept only this key (default: any)")
    emulator.set_defaults(run=run_emulator)


def add_batch_command(commands: Any) -> None:
    """``batch`` (bulk inference: its own module)."""
    from opensearch_llm.batch._cli import add_batch_parser

    add_batch_parser(commands)


#: The subcommands, in ``--help`` order: each adds its parser, whose ``run`` default runs it.
COMMANDS: tuple[Callable[[Any], None], ...] = (
    add_chat_command,
    add_ask_command,
    add_emulator_command,
    add_batch_command,
)


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="opensearch-llm",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="see opensearch-llm COMMAND --help"
    )
    for add in COMMANDS:
        add(commands)
    return parser


# --------------------------------------------------------------------------- main


class _Output:
    """A text stream that remembers whether the last write ended its line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.mid_line = False

    def write(self, text: str) -> int:
        if text:
            self.mid_line = not text.endswith("\n")
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


#: Where each command's endpoint comes from: said after a connection error.
ENDPOINT_SOURCES: dict[str, str] = {
    "chat": f"the endpoint comes from --base-url, --region or {BASE_URL_ENV_VAR}",
    "ask": f"the host comes from --host or {KNOWLEDGE_HOST_ENV_VAR}",
}


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command; the exit status."""
    output, err = _Output(out or sys.stdout), err or sys.stderr
    args = build_parser().parse_args(argv)
    run: Run = args.run
    try:
        return run(args, cast(TextIO, output), err)
    except KeyboardInterrupt:
        # On a terminal the echoed ^C leaves the cursor mid-line, unless an answer's line ends now.
        ending = "\n" if _is_terminal(err) and not output.mid_line else ""
        status, message = EXIT_INTERRUPTED, ending + "interrupted"
    except (UsageError, RequestValidationError, MissingAPIKeyError) as error:
        status, message = EXIT_USAGE, f"error: {error}"
    except OpenSearchLLMError as error:
        status, message = EXIT_FAILED, f"error: {type(error).__name__}: {error}"
        if isinstance(error, APIConnectionError) and args.command in ENDPOINT_SOURCES:
            message += f"\n  ({ENDPOINT_SOURCES[args.command]})"
    if output.mid_line:
        output.write("\n")
    print(message, file=err)
    return status


if __name__ == "__main__":
    # ``python -m`` runs this file as __main__: the batch command imports opensearch_llm.cli,
    # so run that one module, whose UsageError main() catches.
    from opensearch_llm.cli import main as _main

    sys.exit(_main())
