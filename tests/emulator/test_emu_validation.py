"""Validation as the service does it: 400s with the OpenAI error shape, 404 model, 401 key."""

from __future__ import annotations

from typing import Any

import pytest
from emu_support import GATEWAY, KNOWLEDGE, Caller, ask

USER = {"role": "user", "content": "hi"}
TOOLS = [{"type": "function", "function": {"name": "get_time", "parameters": {}}}]


def with_messages(*messages: Any) -> dict[str, Any]:
    return {"model": "qwen-plus", "messages": list(messages)}


BAD_REQUESTS: list[tuple[str, dict[str, Any], str | None]] = [
    ("not an object", [1, 2], None),  # type: ignore[list-item]
    ("no model", {"messages": [USER]}, "model"),
    ("no messages", {"model": "qwen-plus"}, "messages"),
    ("empty messages", with_messages(), "messages"),
    ("message not an object", with_messages("hi"), "messages[0]"),
    ("unknown role", with_messages({"role": "robot", "content": "x"}), "messages[0].role"),
    (
        "system not first",
        with_messages(USER, {"role": "system", "content": "x"}),
        "messages[1].role",
    ),
    ("empty content", with_messages({"role": "user", "content": ""}), "messages[0].content"),
    ("null content", with_messages({"role": "user", "content": None}), "messages[0].content"),
    ("empty parts", with_messages({"role": "user", "content": []}), "messages[0].content"),
    (
        "empty assistant",
        with_messages(USER, {"role": "assistant", "content": ""}),
        "messages[1].content",
    ),
    (
        "tool without id",
        with_messages(USER, {"role": "tool", "content": "42"}),
        "messages[1].tool_call_id",
    ),
    ("temperature 2", ask(temperature=2), "temperature"),
    ("temperature -0.1", ask(temperature=-0.1), "temperature"),
    ("temperature text", ask(temperature="hot"), "temperature"),
    ("top_p 0", ask(top_p=0), "top_p"),
    ("top_p 1.5", ask(top_p=1.5), "top_p"),
    ("presence_penalty 2.5", ask(presence_penalty=2.5), "presence_penalty"),
    ("frequency_penalty -3", ask(frequency_penalty=-3), "frequency_penalty"),
    ("n 0", ask(n=0), "n"),
    ("n 5", ask(n=5), "n"),
    ("n 1.5", ask(n=1.5), "n"),
    ("max_tokens 0", ask(max_tokens=0), "max_tokens"),
    ("max_tokens true", ask(max_tokens=True), "max_tokens"),
    ("max_tokens over the model's output", ask(max_tokens=10**7), "max_tokens"),
    ("max_completion_tokens 0", ask(max_completion_tokens=0), "max_completion_tokens"),
    ("seed -1", ask(seed=-1), "seed"),
    ("stop number", ask(stop=5), "stop"),
    ("stream text", ask(stream="yes"), "stream"),
    ("tools not a list", ask(tools={"name": "x"}), "tools"),
    ("tool without name", ask(tools=[{"type": "function", "function": {}}]), "tools"),
    ("unknown tool_choice", ask(tools=TOOLS, tool_choice="always"), "tool_choice"),
    (
        "tool_choice names a missing tool",
        ask(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "nope"}}),
        "tool_choice",
    ),
    ("tools on a model without tools", {**ask(tools=TOOLS), "model": "qwen-math-plus"}, "tools"),
    ("bad response_format", ask(response_format={"type": "xml"}), "response_format"),
    ("json_object without json", ask(response_format={"type": "json_object"}), "response_format"),
]


@pytest.mark.parametrize(
    ("body", "param"),
    [(body, param) for _, body, param in BAD_REQUESTS],
    ids=[c[0] for c in BAD_REQUESTS],
)
async def test_bad_requests_are_400(in_process: Caller, body: Any, param: str | None) -> None:
    result = await in_process(body)
    assert result.status == 400
    payload = result.json()
    assert payload["error"]["type"] == "invalid_request_error"
    assert payload["error"]["code"] == "invalid_parameter_error"
    assert payload["error"]["param"] == param
    assert payload["error"]["message"]
    assert payload["request_id"] == result.headers["x-request-id"]


async def test_invalid_json_is_400(in_process: Caller) -> None:
    result = await in_process(b"{not json")
    assert result.status == 400
    assert in_process.emulator.requests[-1].json is None
    assert in_process.emulator.requests[-1].body == b"{not json"


GOOD_REQUESTS: list[dict[str, Any]] = [
    ask(temperature=0, top_p=1, presence_penalty=-2, frequency_penalty=2, n=4, seed=0),
    ask(temperature=1.99, top_p=0.01, max_tokens=1, stop=["x", "y"]),
    with_messages(
        {"role": "system", "content": "s"},
        USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": "12:00"},
    ),
    ask("reply in JSON", response_format={"type": "json_object"}),
    ask(tools=TOOLS, tool_choice="auto", parallel_tool_calls=True, enable_search=False),
]


@pytest.mark.parametrize("body", GOOD_REQUESTS)
async def test_edge_values_are_accepted(in_process: Caller, body: dict[str, Any]) -> None:
    assert (await in_process(body)).status == 200


async def test_unknown_model_is_404(call: Caller) -> None:
    result = await call({**ask(), "model": "gpt-99"})
    assert result.status == 404
    error = result.json()["error"]
    assert error["code"] == "model_not_found" and "gpt-99" in error["message"]


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer sk-wrong"])
async def test_missing_or_wrong_key_is_401(call: Caller, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    result = await call(ask(), key=None, headers=headers)
    assert result.status == 401
    body = result.json()
    assert body["error"]["code"] == "invalid_api_key"
    assert body["request_id"] == result.headers["x-request-id"]


async def test_non_bearer_authorization_is_401(in_process: Caller) -> None:
    result = await in_process(ask(), key=None, headers={"Authorization": "Basic abc"})
    assert result.status == 401


async def test_gateway_and_knowledge_401_shapes(in_process: Caller) -> None:
    gateway = (await in_process(ask(), path=GATEWAY, key="wrong")).json()
    assert gateway["success"] is False and gateway["code"] == "invalid_api_key"
    result = await in_process({"question": "q"}, path=KNOWLEDGE, key="wrong")
    assert result.status == 401
    assert result.json()["errors"] == [
        {"code": "invalid_api_key", "message": "Incorrect API key provided."}
    ]


async def test_any_key_is_accepted_without_a_configured_key() -> None:
    import httpx
    from emu_support import COMPATIBLE, IN_PROCESS_ORIGIN

    from opensearch_llm.emulator import Emulator

    with httpx.Client(transport=Emulator().transport(), base_url=IN_PROCESS_ORIGIN) as client:
        ok = client.post(COMPATIBLE, json=ask(), headers={"Authorization": "Bearer anything"})
        missing = client.post(COMPATIBLE, json=ask())
    assert ok.status_code == 200 and missing.status_code == 401
