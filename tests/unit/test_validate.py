from typing import Any

import pytest

from opensearch_llm import RequestValidationError
from opensearch_llm._types import ChatParams
from opensearch_llm._validate import CHAT_PARAMS, validate_messages, validate_params

TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([], "messages"),
        ("hi", "messages"),
        ([{"role": "bot", "content": "x"}], "messages[0].role"),
        ([{"content": "x"}], "messages[0].role"),
        (
            [{"role": "user", "content": "x"}, {"role": "system", "content": "late"}],
            "messages[1].role",
        ),
        ([{"role": "user", "content": ""}], "messages[0].content"),
        ([{"role": "user", "content": "   "}], "messages[0].content"),
        ([{"role": "user", "content": None}], "messages[0].content"),
        ([{"role": "user", "content": []}], "messages[0].content"),
        ([{"role": "user", "content": 42}], "messages[0].content"),
        ([{"role": "user", "content": [{"type": "picture"}]}], "messages[0].content[0].type"),
        (
            [{"role": "user", "content": [{"type": "text", "text": 3}]}],
            "messages[0].content[0].text",
        ),
        ([{"role": "assistant", "content": ""}], "messages[0].content"),
        ([{"role": "tool", "content": "42"}], "messages[0].tool_call_id"),
        ([{"role": "tool", "content": "42", "tool_call_id": ""}], "messages[0].tool_call_id"),
        ([{"role": "user", "content": "x", "name": 5}], "messages[0].name"),
        (["not a dict"], "messages[0]"),
        (
            [{"role": "assistant", "content": None, "tool_calls": [{"id": "a"}]}],
            "messages[0].tool_calls[0]",
        ),
    ],
)
def test_bad_messages_name_the_field(messages: Any, field: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        validate_messages(messages)
    assert info.value.field == field
    assert field in str(info.value) and "allowed" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_good_messages_pass() -> None:
    validate_messages(
        [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "content": "42", "tool_call_id": "a"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "b", "function": {"name": "f"}}],
            },
        ]
    )


@pytest.mark.parametrize(
    ("params", "field", "allowed"),
    [
        ({"temperature": 2}, "temperature", "[0, 2)"),
        ({"temperature": -0.1}, "temperature", "[0, 2)"),
        ({"temperature": True}, "temperature", "[0, 2)"),
        ({"temperature": "0.5"}, "temperature", "[0, 2)"),
        ({"temperature": float("nan")}, "temperature", "[0, 2)"),
        ({"top_p": 0}, "top_p", "(0, 1]"),
        ({"top_p": 1.01}, "top_p", "(0, 1]"),
        ({"presence_penalty": 2.5}, "presence_penalty", "[-2, 2]"),
        ({"frequency_penalty": -3}, "frequency_penalty", "[-2, 2]"),
        ({"n": 0}, "n", "[1, 4]"),
        ({"n": 5}, "n", "[1, 4]"),
        ({"n": 2.0}, "n", "[1, 4]"),
        ({"max_tokens": 0}, "max_tokens", ">= 1"),
        ({"max_tokens": 1.5}, "max_tokens", ">= 1"),
        ({"max_completion_tokens": -1}, "max_completion_tokens", ">= 1"),
        ({"stop": 3}, "stop", "string"),
        ({"stop": ["a", 3]}, "stop", "string"),
        ({"stop": []}, "stop", "string"),
        ({"seed": -1}, "seed", "integer"),
        ({"top_logprobs": 21}, "top_logprobs", "[0, 20]"),
        ({"enable_thinking": "yes"}, "enable_thinking", "true or false"),
        ({"thinking_budget": 0}, "thinking_budget", ">= 1"),
        ({"extra_body": []}, "extra_body", "dict"),
        ({"extra_headers": {"a": 1}}, "extra_headers", "string values"),
        ({"tools": "f"}, "tools", "list"),
        ({"tools": [{"type": "retrieval"}]}, "tools[0]", "function"),
        (
            {"tools": [{"type": "function", "function": {"name": "bad name!"}}]},
            "tools[0].function.name",
            "letters",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]},
            "tools[0].function.parameters",
            "JSON schema",
        ),
        ({"tool_choice": "always"}, "tool_choice", "auto, none, required"),
        ({"tool_choice": "required"}, "tool_choice", "only with tools"),
        (
            {"tool_choice": {"type": "function", "function": {"name": "g"}}, "tools": TOOLS},
            "tool_choice",
            "f",
        ),
        ({"tool_choice": {"type": "function"}, "tools": TOOLS}, "tool_choice", "name"),
        ({"response_format": {"type": "xml"}}, "response_format.type", "json_schema"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema", "schema"),
        ({"temprature": 0.5}, "temprature", "temperature"),
    ],
)
def test_bad_params_name_the_field_and_the_rule(params: Any, field: str, allowed: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        validate_params(params)
    assert info.value.field == field
    assert allowed in info.value.allowed


def test_documented_edges_pass() -> None:
    validate_params(
        {
            "temperature": 0,
            "top_p": 1,
            "presence_penalty": -2,
            "frequency_penalty": 2,
            "n": 4,
            "max_tokens": 1,
            "stop": "x",
            "seed": 2**64 - 1,
            "tools": TOOLS,
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {}}},
        }
    )


def test_typed_params_and_the_rules_name_the_same_fields() -> None:
    assert set(ChatParams.__annotations__) == set(CHAT_PARAMS)


# --------------------------------------------------------------------------- headers and timeouts


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Team": "équipe-SECRET"},
        {"X-Trace": "a\nb-SECRET"},
        {"X Bad": "v-SECRET"},
        {"X-Id": 7},
        {"": "v-SECRET"},
    ],
)
def test_headers_that_cannot_be_sent_are_refused_naming_only_the_header(headers: Any) -> None:
    from opensearch_llm import ChatClient, KnowledgeClient
    from opensearch_llm._chat_wire import build_chat_request
    from opensearch_llm._knowledge import build_knowledge_request

    attempts = [
        lambda: ChatClient("sk-x", default_headers=headers),
        lambda: KnowledgeClient("sk-x", host="http://h", app="a", default_headers=headers),
        lambda: build_chat_request(
            "qwen-plus",
            [{"role": "user", "content": "hi"}],
            {"extra_headers": headers},
            stream=False,
        ),
        lambda: build_knowledge_request(question="q", extra_headers=headers),
    ]
    for attempt in attempts:
        with pytest.raises(RequestValidationError) as info:
            attempt()
        assert info.value.field in ("default_headers", "extra_headers")
        assert "SECRET" not in f"{info.value} {info.value!r} {info.value.value}"


def test_headers_with_spaces_inside_values_are_fine() -> None:
    from opensearch_llm import ChatClient

    ChatClient("sk-x", default_headers={"X-Note": "two words", "X-Empty": ""})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 0])
@pytest.mark.parametrize(
    "setting", ["timeout", "connect_timeout", "stream_idle_timeout", "stream_timeout"]
)
def test_timeouts_must_be_finite_and_positive(setting: str, value: float) -> None:
    from opensearch_llm import AsyncChatClient

    with pytest.raises(RequestValidationError, match="finite number of seconds"):
        AsyncChatClient("sk-x", **{setting: value})


@pytest.mark.parametrize("field", ["model", "messages", "stream"])
def test_extra_body_may_not_replace_a_field_that_has_its_own_argument(field: str) -> None:
    from opensearch_llm._chat_wire import build_chat_request

    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(RequestValidationError) as info:
        build_chat_request("qwen-plus", messages, {"extra_body": {field: "x"}}, stream=False)
    assert info.value.field == "extra_body" and info.value.value == [field]
    assert f"{field}:" in str(info.value)  # says where the value belongs instead
    sent = build_chat_request("qwen-plus", messages, {"extra_body": {"foo": 1}}, stream=False)
    assert sent.payload["foo"] == 1 and sent.payload["model"] == "qwen-plus"
