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


def test_validation_errors_exit_non_zero() -> None:
    code, _, err = run("chat", "--model", " ", "hi")
    assert code == 1 and "Invalid model" in err


def test_bad_region_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", SECRET)
    code, _, err = run("chat", "--region", "mars", "hi")
    assert code == 1 and "region" in err and "singapore" in err


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


def test_ask_with_a_key_but_no_host_uses_the_emulator_and_says_which_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", SECRET)
    code, out, err = run("ask", "q", "--content", "c")
    assert code == 0 and out.strip().startswith("Answer to: q")
    assert "OPENSEARCH_LLM_KNOWLEDGE_HOST" in err and SECRET not in err


def test_ask_with_a_key_and_host_calls_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", SECRET)
    code, out, err = run("ask", "q", "--content", "c", "--host", f"http://127.0.0.1:{free_port()}")
    assert code == 1 and out == "" and "APIConnectionError" in err and SECRET not in err


def test_ask_without_content_is_a_validation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run("ask", "q", stdin="", monkeypatch=monkeypatch)
    assert code == 1 and "content" in err


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
