"""Chat replies: content rules, max_tokens, stop, n, streaming, usage, ids, the gateway envelope."""

from __future__ import annotations

import json
from typing import Any

import pytest
from emu_support import COMPATIBLE, GATEWAY, Caller, ask

ENVELOPE_KEYS = {"success": True, "code": "200", "message": "successful"}


def aggregate(chunks: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Merge streamed chunks per choice: role, content, reasoning, finish reason."""
    merged: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            into = merged.setdefault(choice["index"], {"content": "", "reasoning": ""})
            delta = choice["delta"]
            into.setdefault("role", delta.get("role"))
            into["content"] += delta.get("content") or ""
            into["reasoning"] += delta.get("reasoning_content") or ""
            into["finish_reason"] = choice["finish_reason"] or into.get("finish_reason")
    return merged


async def test_non_streamed_reply_in_every_mode(call: Caller) -> None:
    result = await call(ask("Recommend one science fiction book"))
    assert result.error is None and result.status == 200
    body = result.json()
    request_id = result.headers["x-request-id"]
    assert body["id"] == f"chatcmpl-{request_id}"
    assert body["object"] == "chat.completion" and body["model"] == "qwen-plus"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "You said: Recommend one science fiction book",
            },
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    assert body["usage"]["prompt_tokens"] == 5
    assert body["usage"]["completion_tokens"] == 7
    assert body["usage"]["total_tokens"] == 12
    assert result.headers["content-type"] == "application/json"


async def test_streamed_reply_in_every_mode(call: Caller) -> None:
    body = ask("one two three", stream=True, stream_options={"include_usage": True})
    result = await call(body)
    assert result.status == 200 and result.error is None
    assert result.headers["content-type"].startswith("text/event-stream")
    assert result.data()[-1] == "[DONE]"
    assert result.body.endswith(b"data: [DONE]\n\n")
    chunks = result.chunks()
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    contents = [c["choices"][0]["delta"].get("content") for c in chunks[1:-2]]
    assert contents == ["You", " said:", " one", " two", " three"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 5,
        "total_tokens": 8,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    request_id = result.headers["x-request-id"]
    assert {chunk["id"] for chunk in chunks} == {f"chatcmpl-{request_id}"}


async def test_in_process_stream_arrives_frame_by_frame(local: Caller) -> None:
    result = await local(ask("a " * 50, stream=True))
    assert result.reads == len(result.data()) == 55


async def test_stream_without_include_usage_has_no_usage_chunk(in_process: Caller) -> None:
    chunks = (await in_process(ask("hi", stream=True))).chunks()
    assert all(chunk["choices"] for chunk in chunks)
    assert all(chunk["usage"] is None for chunk in chunks)


async def test_streamed_and_non_streamed_agree(in_process: Caller) -> None:
    params = {"n": 3, "max_tokens": 4, "stop": "zzz"}
    plain = (await in_process(ask("alpha beta gamma delta epsilon", **params))).json()
    streamed = await in_process(
        ask(
            "alpha beta gamma delta epsilon",
            stream=True,
            stream_options={"include_usage": True},
            **params,
        )
    )
    merged = aggregate(streamed.chunks())
    for choice in plain["choices"]:
        assert merged[choice["index"]]["content"] == choice["message"]["content"]
        assert merged[choice["index"]]["finish_reason"] == choice["finish_reason"]
    assert streamed.chunks()[-1]["usage"] == plain["usage"]


async def test_reply_uses_the_last_user_message(in_process: Caller) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "second"}, {"type": "text", "text": "part"}],
        },
    ]
    body = (await in_process({"model": "qwen-plus", "messages": messages})).json()
    assert body["choices"][0]["message"]["content"] == "You said: second part"
    assert body["usage"]["prompt_tokens"] == 2 + 2 + 2 + 2


async def test_max_tokens_truncates_with_length(in_process: Caller) -> None:
    body = (await in_process(ask("one two three four", max_tokens=3))).json()
    assert body["choices"][0]["message"]["content"] == "You said: one"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3


async def test_max_completion_tokens_truncates_too(in_process: Caller) -> None:
    body = (await in_process(ask("one two three four", max_completion_tokens=2))).json()
    assert body["choices"][0]["message"]["content"] == "You said:"
    assert body["choices"][0]["finish_reason"] == "length"


async def test_max_tokens_not_reached_is_stop(in_process: Caller) -> None:
    body = (await in_process(ask("one", max_tokens=100))).json()
    assert body["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("three", "You said: one two "),
        (["four", "two"], "You said: one "),
        (["absent"], "You said: one two three"),
    ],
)
async def test_stop_cuts_before_the_stop_string(
    in_process: Caller, stop: Any, expected: str
) -> None:
    body = (await in_process(ask("one two three", stop=stop))).json()
    assert body["choices"][0]["message"]["content"] == expected
    assert body["choices"][0]["finish_reason"] == "stop"


async def test_n_choices(in_process: Caller) -> None:
    body = (await in_process(ask("hi", n=3))).json()
    contents = [choice["message"]["content"] for choice in body["choices"]]
    assert contents == ["You said: hi", "You said: hi (choice 2)", "You said: hi (choice 3)"]
    assert [choice["index"] for choice in body["choices"]] == [0, 1, 2]
    assert body["usage"]["completion_tokens"] == 3 + 5 + 5


async def test_streamed_n_choices_each_start_with_role(in_process: Caller) -> None:
    merged = aggregate((await in_process(ask("hi", n=2, stream=True))).chunks())
    assert [merged[i]["role"] for i in (0, 1)] == ["assistant", "assistant"]
    assert merged[1]["content"] == "You said: hi (choice 2)"


async def test_json_object_format(in_process: Caller) -> None:
    body = (await in_process(ask("answer in json", response_format={"type": "json_object"}))).json()
    assert json.loads(body["choices"][0]["message"]["content"]) == {
        "reply": "You said: answer in json"
    }


async def test_json_schema_format(in_process: Caller) -> None:
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}, "year": {"type": "integer", "minimum": 1900}},
        "required": ["title", "year"],
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "book", "schema": schema}}
    body = (await in_process(ask("a book", response_format=fmt))).json()
    assert json.loads(body["choices"][0]["message"]["content"]) == {
        "title": "sample title",
        "year": 1900,
    }


async def test_non_ascii_text_round_trips(in_process: Caller) -> None:
    result = await in_process(ask("推荐 一本 科幻小说", stream=True))
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in result.chunks()) == (
        "You said: 推荐 一本 科幻小说"
    )


async def test_gateway_envelope_non_streamed(call: Caller) -> None:
    result = await call(ask("hi"), path=GATEWAY)
    body = result.json()
    assert {key: body[key] for key in ENVELOPE_KEYS} == ENVELOPE_KEYS
    assert body["data"]["object"] == "chat.completion"
    assert body["data"]["choices"][0]["message"]["content"] == "You said: hi"


async def test_gateway_envelope_streamed(in_process: Caller) -> None:
    result = await in_process(
        ask("hi", stream=True, stream_options={"include_usage": True}), path=GATEWAY
    )
    frames = result.chunks()
    assert all({key: frame[key] for key in ENVELOPE_KEYS} == ENVELOPE_KEYS for frame in frames)
    assert frames[1]["data"]["choices"][0]["delta"]["content"] == "You"
    assert frames[-1]["data"]["choices"] == [] and frames[-1]["data"]["usage"]["total_tokens"] == 4
    assert result.data()[-1] == "[DONE]"


async def test_gateway_error_envelope(in_process: Caller) -> None:
    result = await in_process(ask("hi", temperature=5), path=GATEWAY)
    assert result.status == 400
    body = result.json()
    assert body["success"] is False and body["data"] is None
    assert body["code"] == "invalid_parameter_error" and "temperature" in body["message"]
    assert body["request_id"] == result.headers["x-request-id"]


async def test_request_ids_are_unique_and_restart_on_reset(in_process: Caller) -> None:
    first = (await in_process(ask())).headers["x-request-id"]
    second = (await in_process(ask())).headers["x-request-id"]
    assert first != second
    in_process.emulator.reset()
    assert (await in_process(ask())).headers["x-request-id"] == first


async def test_dated_and_latest_models_are_known(in_process: Caller) -> None:
    for model in ("qwen-plus-latest", "qwen-plus-2025-01-25", "qwen-flash-us", "ops-qwen-turbo"):
        result = await in_process({"model": model, "messages": [{"role": "user", "content": "hi"}]})
        assert result.status == 200, model
        assert result.json()["model"] == model


async def test_unknown_path_and_method(in_process: Caller) -> None:
    missing = await in_process(ask(), path="/v1/chat/completions")
    assert missing.status == 404 and missing.json()["error"]["code"] == "not_found"
    assert "x-request-id" in missing.headers
    wrong = await in_process(ask(), path=COMPATIBLE, method="PUT")
    assert wrong.status == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
