"""Reading cassettes, replaying them, and the tool-conversation matcher of the adapters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import yaml
from vcr.cassette import Cassette
from vcr.request import Request as VCRRequest

from scripts.record_cassettes import (
    CASSETTES_DIR,
    EXCHANGES_BY_NAME,
    PLACEHOLDERS,
    cassette_path,
    make_vcr,
    parsed_body,
)

#: The key the replays send: never recorded, never matched on.
KEY = "replay-key"
OPENSEARCH = PLACEHOLDERS["opensearch"]
MODELSTUDIO = PLACEHOLDERS["modelstudio"]
GATEWAY = PLACEHOLDERS["gateway"]
KNOWLEDGE_HOST = PLACEHOLDERS["knowledge"]
KNOWLEDGE_APP = "my_app"


@cache
def interactions(name: str) -> list[dict[str, Any]]:
    """The recorded interactions of cassette ``name``."""
    data = yaml.safe_load(cassette_path(name).read_text(encoding="utf-8"))
    return list(data["interactions"])


def request_json(name: str, index: int = 0) -> Any:
    """The JSON body of the ``index``-th recorded request."""
    return parsed_body(interactions(name)[index]["request"]["body"])


def model_of(name: str) -> str:
    """The model the cassette's requests name (documented, or chosen when re-recorded)."""
    return str(request_json(name)["model"])


def response_text(name: str, index: int = 0) -> str:
    """The body of the ``index``-th recorded response."""
    return str(interactions(name)[index]["response"]["body"]["string"])


def response_json(name: str, index: int = 0) -> Any:
    """The JSON body of the ``index``-th recorded response."""
    return json.loads(response_text(name, index))


def sse_events(name: str, index: int = 0) -> list[dict[str, Any]]:
    """The JSON ``data:`` frames of a recorded stream (``[DONE]`` left out)."""
    frames = []
    for line in response_text(name, index).splitlines():
        data = line.removeprefix("data:").strip() if line.startswith("data:") else ""
        if data and data != "[DONE]":
            frames.append(json.loads(data))
    return frames


def streamed_text(name: str) -> str:
    """The content of a recorded stream, its deltas joined."""
    return "".join(
        choice["delta"].get("content") or ""
        for event in sse_events(name)
        for choice in event["choices"]
    )


def streamed_usage(name: str) -> dict[str, Any]:
    """The usage of the recorded stream's usage-only chunk (``choices: []``)."""
    return next(e["usage"] for e in sse_events(name) if not e["choices"] and e.get("usage"))


def unwrap(body: dict[str, Any]) -> dict[str, Any]:
    """A gateway envelope's ``data``, or the body itself."""
    return body["data"] if {"success", "data"} <= body.keys() else body


def tool_conversation(body: Any) -> dict[str, Any]:
    """What a tool-calling request is about: model, tool names and the conversation.

    Adapters build tool schemas from their framework's tool objects and add defaults such as
    ``parallel_tool_calls``, so an adapter's replay compares this instead of the whole body:
    each message's role, text (``None`` counts as ``""``), tool calls (id, name, parsed
    arguments) and ``tool_call_id``.
    """
    data = parsed_body(body)
    return {
        "model": data.get("model"),
        "tools": sorted(tool["function"]["name"] for tool in data.get("tools") or []),
        "messages": [_message_gist(message) for message in data.get("messages") or []],
    }


def _message_gist(message: dict[str, Any]) -> dict[str, Any]:
    calls = [
        (call["id"], call["function"]["name"], json.loads(call["function"]["arguments"] or "{}"))
        for call in message.get("tool_calls") or []
    ]
    return {
        "role": message["role"],
        "content": message.get("content") or "",
        "tool_calls": calls,
        "tool_call_id": message.get("tool_call_id"),
    }


def same_tool_conversation(r1: VCRRequest, r2: VCRRequest) -> None:
    """vcrpy matcher over ``tool_conversation``."""
    first, second = tool_conversation(r1.body), tool_conversation(r2.body)
    if first != second:
        raise AssertionError(f"tool conversations differ:\n  {first!r}\n  {second!r}")


TOOL_MATCH_ON = ("method", "scheme", "host", "port", "path", "query", "tool_conversation")


@contextmanager
def replay(name: str, *, tool_matching: bool = False) -> Iterator[Cassette]:
    """Replay cassette ``name`` (``record_mode="none"``); every interaction must be played."""
    assert name in EXCHANGES_BY_NAME, name
    if tool_matching:
        recorder = make_vcr(
            "none",
            CASSETTES_DIR,
            match_on=TOOL_MATCH_ON,
            matchers={"tool_conversation": same_tool_conversation},
        )
    else:
        recorder = make_vcr("none", CASSETTES_DIR)
    with recorder.use_cassette(cassette_path(name).name) as cassette:
        yield cassette
    assert cassette.all_played, f"{name}: {cassette.play_count} of {len(cassette)} played"
