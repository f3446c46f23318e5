"""The ``opensearch-llm`` command, offline against the in-process emulator."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from opensearch_llm.cli import main

SECRET = "sk-cli-SECRET-123"


@pytest.fixture(autouse=True)
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OPENSEARCH_LLM_API_KEY",
        "DASHSCOPE_API_KEY",
        "OPENSEARCH_LLM_BASE_URL",
        "OPENSEARCH_LLM_KNOWLEDGE_HOST",
        "OPENSEARCH_LLM_APP",
    ):
        monkeypatch.delenv(name, raising=False)


def run(
    *argv: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None
) -> tuple[int, str, str]:
    if stdin is not None and monkeypatch is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_chat_without_a_key_uses_the_emulator_and_says_so() -> None:
    code, out, err = run("chat", "Recommend", "one", "science", "fiction", "book")
    assert code == 0
    assert out.strip() == "You said: Recommend one science fiction book"
    assert "emulator" in err and "OPENSEARCH_LLM_API_KEY" in err


def test_chat_json_prints_the_completion() -> None:
    code, out, _ = run("chat", "--json", "--system", "be brief", "hello")
    body = json.loads(out)
    assert code == 0 and body["choices"][0]["message"]["content"] == "You said: hello"
    assert body["usage"]["total_tokens"] > 0


def test_chat_reads_the_prompt_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run("chat", stdin="piped question\n", monkeypatch=monkeypatch)
    assert code == 0 and out.strip() == "You said: piped question"


def test_chat_shows_reasoning_on_stderr_when_asked() -> None:
    code, out, err = run("chat", "--model", "qwq-plus", "--reasoning", "why")
    assert code == 0 and out.strip() == "You said: why" and "Let me think" in err


def test_interactive_session_keeps_the_conversation(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Tty())
    lines = iter(["first", "second", ""])
    monkeypatch.setattr("builtins.input", lambda _prompt="": next(lines))
    code, out, _ = run("chat")
    assert code == 0 and out.splitlines() == ["You said: first", "You said: second"]


def test_service_errors_exit_non_zero_with_a_message_and_no_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", SECRET)
    code, out, err = run(
        "chat", "--base-url", f"http://127.0.0.1:{free_port()}/compatible-mode/v1", "hi"
    )
    assert code == 1 and out == ""
    assert "APIConnectionError" in err and "Traceback" not in err and SECRET not in err


def test_validation_errors_are_usage_errors() -> None:
    code, _, err = run("chat", "--model", " ", "hi")
    assert code == 2 and err.splitlines()[-1].startswith("error: Invalid model")
    code, _, err = run("chat", "--temperature", "5", "hi")
    assert code == 2 and "temperature" in err and "[0, 2)" in err


def test_bad_region_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", SECRET)
    code, _, err = run("chat", "--region", "mars", "hi")
    assert code == 2 and "region" in err and "singapore" in err
    code, _, err = run("chat", "--region", "beijing", "--base-url", "http://a.example/v1", "hi")
    assert code == 2 and err.strip().endswith("not both. Pass only one of them.")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_emulator_command_serves_until_ctrl_c() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "opensearch_llm.cli", "emulator", "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        answer = _wait_for_answer(port)
        assert answer["choices"][0]["message"]["content"] == "You said: ping"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 130
    assert f"http://127.0.0.1:{port}" in err and "Traceback" not in err


def _wait_for_answer(port: int) -> dict:
    deadline = time.monotonic() + 20
    while True:
        try:
            response = httpx.post(
                f"http://127.0.0.1:{port}/compatible-mode/v1/chat/completions",
                json={"model": "qwen-plus", "messages": [{"role": "user", "content": "ping"}]},
                headers={"Authorization": "Bearer sk-any"},
            )
            return response.json()
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_ask_streams_a_knowledge_answer_from_content_arguments() -> None:
    code, out, err = run(
        "ask",
        "What",
        "is",
        "OpenSearch?",
        "--content",
        "A search service.",
        "--content",
        "By Alibaba.",
    )
    assert code == 0
    assert (
        out.strip() == "Answer to: What is OpenSearch? | Sources: A search service. | By Alibaba."
    )
    assert "emulator" in err and "API key" in err


def test_ask_reads_passages_from_files_and_stdin(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("First passage.\n\nSecond passage.\n", encoding="utf-8")
    code, out, _ = run("ask", "q", "--file", str(notes))
    assert code == 0 and out.strip() == "Answer to: q | Sources: First passage. | Second passage."
    code, out, _ = run("ask", "q", stdin="Piped passage.", monkeypatch=monkeypatch)
    assert code == 0 and out.strip() == "Answer to: q | Sources: Piped passage."


def test_ask_with_a_key_but_no_host_is_an_error_naming_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", SECRET)
    code, out, err = run("ask", "q", "--content", "c")
    assert code == 2 and out == ""
    assert err.startswith("error: no knowledge-llm host: set OPENSEARCH_LLM_KNOWLEDGE_HOST")
    assert "--host" in err and "emulator" not in err and SECRET not in err


def test_ask_with_a_host_but_no_key_is_an_error_naming_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENSEARCH_LLM_KNOWLEDGE_HOST", "http://kb.example")
    code, out, err = run("ask", "q", "--content", "c")
    assert code == 2 and out == ""
    assert err.strip() == (
        "error: no API key for http://kb.example: set OPENSEARCH_LLM_API_KEY or DASHSCOPE_API_KEY"
    )


def test_ask_with_a_key_and_host_calls_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", SECRET)
    code, out, err = run("ask", "q", "--content", "c", "--host", f"http://127.0.0.1:{free_port()}")
    assert code == 1 and out == "" and "APIConnectionError" in err and SECRET not in err
    assert "(the host comes from --host or OPENSEARCH_LLM_KNOWLEDGE_HOST)" in err


def test_ask_without_passages_says_how_to_give_them(monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run("ask", "q", stdin="", monkeypatch=monkeypatch)
    assert code == 2
    assert err == (
        "error: no passages to answer from: pass --content TEXT or --file PATH, or pipe them in\n"
    )


def test_ask_with_a_missing_file_is_one_line(tmp_path: Any) -> None:
    code, out, err = run("ask", "q", "--file", str(tmp_path / "nope.txt"))
    assert code == 2 and out == ""
    assert err == f"error: cannot read --file {tmp_path / 'nope.txt'}: No such file or directory\n"


def test_chat_and_ask_close_the_connection_pools_they_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opensearch_llm.emulator import Emulator

    from ..unit.pools import count_pools

    emulator = Emulator()
    pools = count_pools(monkeypatch, emulator.transport(), emulator.async_transport())
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", SECRET)
    monkeypatch.setenv("OPENSEARCH_LLM_BASE_URL", "http://emulator.local/compatible-mode/v1")
    monkeypatch.setenv("OPENSEARCH_LLM_KNOWLEDGE_HOST", "http://kb.emulator.local")
    monkeypatch.setenv("OPENSEARCH_LLM_APP", "app")
    assert run("chat", "hello")[:2] == (0, "You said: hello\n")
    assert run("ask", "q", "--content", "c")[0] == 0
    assert pools.opened == (2, 0)
    assert pools.closed == pools.opened


# --------------------------------------------------------------------------- never pretends


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["--base-url", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"], {}, "https://"),
        (["--base-url", "http://127.0.0.1:9/compatible-mode/v1"], {}, "http://127.0.0.1:9"),
        (["--region", "beijing"], {}, "the beijing region"),
        ([], {"OPENSEARCH_LLM_BASE_URL": "http://gw.example/api/v1"}, "OPENSEARCH_LLM_BASE_URL"),
    ],
)
def test_chat_with_an_endpoint_but_no_key_is_an_error_not_the_emulator(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = run("chat", *argv, "Hi")
    assert code == 2 and out == ""
    assert err.startswith("error: no API key for ") and named in err
    assert err.strip().endswith("set OPENSEARCH_LLM_API_KEY or DASHSCOPE_API_KEY")
    assert "emulator" not in err and "\n" not in err.strip()


# --------------------------------------------------------------------------- chat options


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Any:
    """An emulator on 127.0.0.1, a key set: the command talks to it as to the service."""
    from opensearch_llm.emulator import Emulator, serve

    emulator = Emulator()
    with serve(emulator) as server:
        monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", SECRET)
        monkeypatch.setenv("OPENSEARCH_LLM_BASE_URL", server.compatible_base_url)
        yield emulator


def test_chat_options_are_sent(served: Any) -> None:
    argv = ["--model", "qwen-turbo", "--system", "be brief", "--temperature", "0.3"]
    code, out, err = run("chat", *argv, "--max-tokens", "3", "hello", "there", "friend")
    assert (code, out, err) == (0, "You said: hello\n", "")
    sent = served.requests[-1].json
    assert sent["model"] == "qwen-turbo" and sent["stream"] is True
    assert sent["temperature"] == 0.3 and sent["max_tokens"] == 3
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello there friend"},
    ]


def test_no_stream_waits_for_the_whole_answer(served: Any) -> None:
    code, out, _ = run("chat", "--no-stream", "hello")
    assert code == 0 and out == "You said: hello\n"
    assert "stream" not in served.requests[-1].json


def test_json_prints_the_raw_completion(served: Any) -> None:
    code, out, _ = run("chat", "--json", "--max-tokens", "2", "hello there")
    completion = json.loads(out)
    assert code == 0 and completion["choices"][0]["finish_reason"] == "length"
    assert completion["choices"][0]["message"]["content"] == "You said:"


@pytest.mark.parametrize("mode", [[], ["--no-stream"]])
def test_reasoning_is_printed_apart_from_the_answer(mode: list[str]) -> None:
    code, out, err = run("chat", "--model", "qwq-plus", "--reasoning", *mode, "why")
    assert code == 0 and out == "You said: why\n"
    assert err.endswith("Let me think about: why\n\n")
    code, out, err = run("chat", "--model", "qwq-plus", *mode, "why")
    assert out == "You said: why\n" and "Let me think" not in err


def test_history_from_a_file_as_json_or_json_lines(tmp_path: Any) -> None:
    turns = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "You said: first"},
        {"role": "user", "content": "second"},
    ]
    array, lines = tmp_path / "history.json", tmp_path / "history.jsonl"
    array.write_text(json.dumps(turns), encoding="utf-8")
    lines.write_text("\n".join(json.dumps(turn) for turn in turns[:2]), encoding="utf-8")
    assert run("chat", "--history", str(array))[:2] == (0, "You said: second\n")
    assert run("chat", "--history", str(lines), "third")[:2] == (0, "You said: third\n")


def test_history_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    history = json.dumps([{"role": "user", "content": "piped"}])
    code, out, _ = run("chat", "--history", "-", stdin=history, monkeypatch=monkeypatch)
    assert code == 0 and out == "You said: piped\n"


@pytest.mark.parametrize(
    ("content", "problem"),
    [("{not json", "not JSON"), ('[{"content": "no role"}]', "an object with a role")],
)
def test_bad_history_is_a_usage_error(tmp_path: Any, content: str, problem: str) -> None:
    path = tmp_path / "history.json"
    path.write_text(content, encoding="utf-8")
    code, out, err = run("chat", "--history", str(path))
    assert code == 2 and out == "" and err.startswith(f"error: --history {path}: ")
    assert problem in err


def test_nothing_to_answer_from_a_pipe_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run("chat", stdin="", monkeypatch=monkeypatch)
    assert code == 2 and err.startswith("error: nothing to answer")


def test_a_stream_broken_mid_line_ends_the_line_before_the_error(served: Any) -> None:
    code, out, err = run("chat", "--model", "fault/reset-mid-stream?after=3", "one two three")
    assert code == 1 and out.startswith("You") and out.endswith("\n") and out.count("\n") == 1
    assert err.startswith("error: StreamError")


def test_errors_are_one_line_without_a_blank_line_before(served: Any) -> None:
    code, out, err = run("chat", "--model", "no-such-model", "hi")
    assert code == 1 and out == ""
    assert err.startswith("error: NotFoundError: HTTP 404") and err.count("\n") == 1
    assert "application" not in err and "app" not in err.split("(knowledge-llm")[0]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from opensearch_llm import __version__

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out == f"opensearch-llm {__version__}\n"


@pytest.mark.parametrize("command", [[], ["chat"], ["ask"], ["emulator"]])
def test_help_is_plain_text_and_every_argument_has_help(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    from opensearch_llm.cli import build_parser

    with pytest.raises(SystemExit):
        main([*command, "--help"])
    shown = capsys.readouterr().out
    assert "``" not in shown and ":class:" not in shown and shown.startswith("usage:")
    parser = build_parser()
    subparsers = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    chosen = subparsers[command[0]] if command else parser
    for action in chosen._actions:
        assert action.help, f"{command} {action.dest} has no help"


# --------------------------------------------------------------------------- emulator command


def test_emulator_on_a_port_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = run("emulator", "--port", str(port))
    assert code == 2 and out == ""
    assert err.startswith(f"error: cannot serve on 127.0.0.1:{port}: ")
    assert "another --port" in err and err.count("\n") == 1


def test_emulator_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    code, _, err = run("emulator")
    assert code == 2
    assert err.startswith("error: serving the emulator needs uvicorn: ")
    assert "[emulator] extra" in err and "pip install -e '.[emulator]'" in err


# --------------------------------------------------------------------------- adapters


@pytest.mark.parametrize(
    ("package", "missing", "extra"),
    [
        ("langchain_opensearch_llm", "langchain_core", "langchain"),
        ("llama_index_opensearch_llm", "llama_index", "llama-index"),
    ],
)
def test_an_adapter_without_its_extra_names_the_extra(
    package: str, missing: str, extra: str
) -> None:
    code = f"import sys; sys.modules[{missing!r}] = None; import {package}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1 and last.startswith(f"ModuleNotFoundError: {package} needs ")
    assert f"[{extra}] extra: pip install -e '.[{extra}]'" in last
