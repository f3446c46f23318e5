"""``scripts/record_cassettes.py``: offline output is stable, and replays match on parsed JSON."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml
from vcr.errors import CannotOverwriteExistingCassetteException

from opensearch_llm import ChatClient
from scripts import record_cassettes
from scripts.record_cassettes import (
    CASSETTES_DIR,
    EXCHANGES,
    OPENSEARCH_MESSAGES,
    PLACEHOLDERS,
    make_vcr,
)

from .support import KEY, OPENSEARCH, model_of, replay


def test_offline_recording_reproduces_the_committed_cassettes(tmp_path: Path) -> None:
    assert record_cassettes.main(["--out", str(tmp_path)]) == 0
    for exchange in EXCHANGES:
        fresh = (tmp_path / f"{exchange.name}.yaml").read_text(encoding="utf-8")
        committed = (CASSETTES_DIR / f"{exchange.name}.yaml").read_text(encoding="utf-8")
        assert fresh == committed, f"{exchange.name}: run python -m scripts.record_cassettes"


def test_every_cassette_says_where_it_came_from() -> None:
    for exchange in EXCHANGES:
        text = (CASSETTES_DIR / f"{exchange.name}.yaml").read_text(encoding="utf-8")
        assert text.startswith(f"# {exchange.title}\n")
        assert "# Source: api-docs/" in text
        assert f"--live --only {exchange.name}`" in text


def test_live_recording_needs_a_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="OPENSEARCH_LLM_API_KEY or DASHSCOPE_API_KEY"):
        record_cassettes.main(["--live", "--out", str(tmp_path)])
    assert list(tmp_path.iterdir()) == []


def test_recording_from_a_served_service_rewrites_urls_and_drops_the_key(tmp_path: Path) -> None:
    """The live path, with the emulator on 127.0.0.1 standing in for the service."""
    from pytest_socket import enable_socket, socket_allow_hosts

    enable_socket()
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    names = [
        "compatible_stream_usage",
        "gateway_envelope",
        "knowledge_llm",
        "error_invalid_api_key",
    ]
    argv = ["--emulator", "--out", str(tmp_path)] + [f"--only={name}" for name in names]
    assert record_cassettes.main(argv) == 0
    for name in names:
        text = (tmp_path / f"{name}.yaml").read_text(encoding="utf-8")
        assert "NOT the service" in text
        assert "127.0.0.1" not in text and record_cassettes.EMULATOR_KEY not in text
        uris = [i["request"]["uri"] for i in yaml.safe_load(text)["interactions"]]
        assert all(uri.startswith(tuple(PLACEHOLDERS.values())) for uri in uris), uris
    # The rewritten cassette replays like a recorded one.
    with make_vcr("none", tmp_path).use_cassette("gateway_envelope.yaml") as cassette:
        base_url = PLACEHOLDERS["gateway"]
        with ChatClient(KEY, base_url=base_url) as client:
            completion = client.create(
                model="gpt-3.5-turbo",
                messages=[{"role": "user", "content": "Hello!"}],
                max_tokens=2048,
                temperature=1.0,
            )
    assert cassette.all_played
    assert completion["choices"][0]["message"]["content"] == "You said: Hello!"


def test_replay_matches_on_parsed_json_not_on_bytes() -> None:
    """The same body with other key order and spacing matches; another value does not."""
    name = "compatible_chat"
    body = (
        '{ "messages": [{"content": "You are a robot assistant", "role": "system"}, '
        '{"content": "Recommend 1 science fiction book", "role": "user"}], '
        f'"model": "{model_of(name)}" }}'
    )
    with replay(name), httpx.Client() as http:
        response = http.post(f"{OPENSEARCH}/chat/completions", content=body)
    assert response.status_code == 200
    recorder = make_vcr("none", CASSETTES_DIR)
    with (
        recorder.use_cassette(f"{name}.yaml") as cassette,
        ChatClient(KEY, base_url=OPENSEARCH, max_retries=0) as client,
        pytest.raises(CannotOverwriteExistingCassetteException, match="bodies differ"),
    ):
        client.create(model=model_of(name), messages=OPENSEARCH_MESSAGES, temperature=0.5)
    assert cassette.play_count == 0
