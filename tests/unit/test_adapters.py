"""Pure tests of ``opensearch_llm._adapters``: what both framework adapters share."""

from __future__ import annotations

import asyncio
import copy
import pickle
import threading
from typing import Any

import pytest

from opensearch_llm import AccessKeyCredentials, RequestValidationError
from opensearch_llm._adapters import (
    ClientCache,
    check_knowledge_settings,
    first_choice,
    forced_tool_settings,
    knowledge_passages,
    legacy_tool_call,
    merge_system_messages,
    new_tool_call_id,
    parse_tool_arguments,
    sent_value,
    split_params,
    usage_counts,
    wire_tool_call,
    wire_tool_choice,
)

# --------------------------------------------------------------------------- parameters


def test_split_params_later_layers_win_and_unknown_names_go_to_extra_body() -> None:
    params = split_params(
        {"temperature": 0.1, "max_tokens": 10, "top_k": None, "vendor": 1},
        {"extra_body": {"a": 1, "vendor": 2}, "seed": 3},
        {"max_tokens": 20, "extra_body": {"b": 2}, "other": "x"},
    )
    assert params == {
        "temperature": 0.1,
        "max_tokens": 20,
        "seed": 3,
        "extra_body": {"vendor": 2, "a": 1, "b": 2, "other": "x"},
    }


def test_split_params_a_later_none_unsets_and_nothing_unset_is_sent() -> None:
    assert split_params({"temperature": 0.5, "x": 1}, {"temperature": None, "x": None}) == {}
    assert split_params({}, {"extra_body": None}) == {}
    assert split_params({"extra_headers": {"A": "1"}}) == {"extra_headers": {"A": "1"}}


def test_split_params_rejects_an_extra_body_that_is_not_a_dict() -> None:
    with pytest.raises(RequestValidationError) as caught:
        split_params({"extra_body": ["x"]})
    assert caught.value.field == "extra_body"


def test_sent_value_follows_the_core_extra_body_wins() -> None:
    assert sent_value({"enable_thinking": True}, "enable_thinking") is True
    params = {"enable_thinking": True, "extra_body": {"enable_thinking": False}}
    assert sent_value(params, "enable_thinking") is False
    assert sent_value({}, "enable_thinking") is None


@pytest.mark.parametrize(
    ("model", "enable_thinking", "expected"),
    [
        ("qwen-max", None, {"tool_choice": "required"}),
        ("qwen-max", True, {"tool_choice": "required"}),  # never thinks: the flag is moot
        ("qwen-plus", None, {"tool_choice": "required"}),  # hybrid, off by default
        ("qwen-plus", False, {"tool_choice": "required"}),
        ("qwen-plus", True, {"tool_choice": "auto"}),
        ("qwen3-32b", None, {"tool_choice": "required", "enable_thinking": False}),
        ("qwen3-32b", False, {"tool_choice": "required"}),
        ("qwen3-32b", True, {"tool_choice": "auto"}),
        ("qwq-plus", None, {"tool_choice": "auto"}),
        ("qwq-plus", False, {"tool_choice": "auto"}),
    ],
)
def test_forced_tool_settings(model: str, enable_thinking: bool | None, expected: Any) -> None:
    assert forced_tool_settings(model, enable_thinking, "required") == expected


def test_forced_tool_settings_keep_a_named_choice() -> None:
    named = {"type": "function", "function": {"name": "f"}}
    assert forced_tool_settings("qwen3-8b", None, named) == {
        "tool_choice": named,
        "enable_thinking": False,
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("weather", {"type": "function", "function": {"name": "weather"}}),
        ({"name": "weather"}, {"type": "function", "function": {"name": "weather"}}),
        (
            {"type": "function", "function": {"name": "weather"}},
            {"type": "function", "function": {"name": "weather"}},
        ),
    ],
)
def test_wire_tool_choice(choice: Any, expected: Any) -> None:
    assert wire_tool_choice(choice) == expected


# --------------------------------------------------------------------------- messages


def test_every_system_message_is_merged_into_the_first() -> None:
    messages = [
        {"role": "system", "content": "One."},
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": ""},
        {"role": "assistant", "content": "Hello"},
        {"role": "system", "content": "Two."},
    ]
    before = copy.deepcopy(messages)
    assert merge_system_messages(messages) == [
        {"role": "system", "content": "One.\n\nTwo."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    assert messages == before
    late = [{"role": "user", "content": "Hi"}, {"role": "system", "content": "Rule."}]
    assert merge_system_messages(late)[0] == {"role": "system", "content": "Rule."}


def test_messages_with_one_leading_system_message_are_returned_as_they_are() -> None:
    messages = [{"role": "system", "content": "A"}, {"role": "user", "content": "B"}]
    assert merge_system_messages(messages) is messages
    users = [{"role": "user", "content": "B"}]
    assert merge_system_messages(users) is users


def test_wire_tool_call_keeps_text_encodes_objects_and_fills_empty_arguments() -> None:
    assert wire_tool_call("c1", "f", '{"a": ') == {
        "id": "c1",
        "type": "function",
        "function": {"name": "f", "arguments": '{"a": '},
    }
    assert wire_tool_call(None, None, {"city": "北京"})["function"] == {
        "name": "",
        "arguments": '{"city": "北京"}',
    }
    for empty in ("", None, {}):
        assert wire_tool_call("c", "f", empty)["function"]["arguments"] == "{}"
    assert wire_tool_call(None, "f", "{}")["id"] == ""


def test_legacy_tool_calls_from_dicts_and_sdk_objects() -> None:
    raw = {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}

    class SDKCall:
        def model_dump(self) -> dict[str, Any]:
            return raw

    assert legacy_tool_call(raw) == legacy_tool_call(SDKCall()) == raw
    assert legacy_tool_call({"function": {}})["function"] == {"name": "", "arguments": "{}"}


# --------------------------------------------------------------------------- responses


@pytest.mark.parametrize(
    ("choices", "expected"),
    [
        ([{"index": 1, "x": 1}, {"index": 0, "x": 0}], 0),
        ([{"x": 0}], 0),
        ([{"index": None, "x": 0}], 0),
        ([{"index": 1, "x": 1}], None),
        ([], None),
        (None, None),
    ],
)
def test_first_choice_is_choice_zero_or_nothing(choices: Any, expected: int | None) -> None:
    choice = first_choice({"choices": choices})
    assert (choice["x"] if choice is not None else None) == expected


def test_usage_counts() -> None:
    usage = {
        "prompt_tokens": 30,
        "completion_tokens": 12,
        "total_tokens": 42,
        "prompt_tokens_details": {"cached_tokens": 8},
        "completion_tokens_details": {"reasoning_tokens": 5},
    }
    assert usage_counts(usage) == {
        "prompt_tokens": 30,
        "completion_tokens": 12,
        "total_tokens": 42,
        "cached_tokens": 8,
        "reasoning_tokens": 5,
    }
    nulls = {
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "prompt_tokens_details": None,
        "completion_tokens_details": {"reasoning_tokens": None},
    }
    assert usage_counts(nulls) == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert usage_counts(None) is None
    assert usage_counts({}) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("  ", {}),
        (None, {}),
        ('{"a": 1}', {"a": 1}),
        ({"a": 1}, {"a": 1}),
        ('{"text": "line\none"}', {"text": "line\none"}),  # a raw newline inside a string
    ],
)
def test_parse_tool_arguments(text: Any, expected: dict[str, Any]) -> None:
    assert parse_tool_arguments(text) == expected


@pytest.mark.parametrize("text", ['{"a":1}}', '{"a": 1, "b": tru', "[1]", '"x"', "{"])
def test_finished_arguments_are_never_repaired(text: str) -> None:
    with pytest.raises(ValueError):
        parse_tool_arguments(text)


def test_new_tool_call_ids_are_unique() -> None:
    ids = {new_tool_call_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(i.startswith("call_") and len(i) == 29 for i in ids)


# --------------------------------------------------------------------------- knowledge-llm


def test_knowledge_passages_drop_blank_texts() -> None:
    assert knowledge_passages(["a", " "], iter(["", "b\n"])) == ["a", "b\n"]
    assert knowledge_passages([" "], []) is None
    assert knowledge_passages() is None


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"app": ""}, "app"),
        ({"app": "a b"}, "app"),
        ({"host": "not a url"}, "host"),
        ({"auth": "sk-secret"}, "auth"),
        ({"content": []}, "content"),
        ({"params": {"csi_level": "strict"}}, "csi_level"),
    ],
)
def test_knowledge_settings_are_checked(settings: dict[str, Any], field: str) -> None:
    options: dict[str, Any] = {"app": "my_app", "host": "http://kb.test", "auth": "bearer"}
    with pytest.raises(RequestValidationError) as caught:
        check_knowledge_settings(**{**options, **settings})
    assert caught.value.field == field
    assert "sk-secret" not in str(caught.value)


def test_knowledge_settings_do_not_need_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENSEARCH_LLM_API_KEY", "DASHSCOPE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    check_knowledge_settings(app="a", host="http://kb.test", auth="bearer", content=["x"])
    signed = AccessKeyCredentials("id", "secret")
    check_knowledge_settings(app="a", host="http://kb.test", auth=signed)


# --------------------------------------------------------------------------- client cache


class FakeClient:
    """Stands for a core client: counts closes; ``fail`` makes closing raise.

    Like a real async client with open connections, it refers to the loop it was made in
    (which keeps that loop, the weak key of the cache, alive).
    """

    def __init__(self, fail: bool = False) -> None:
        self.closed = 0
        self.fail = fail
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None

    def close(self) -> None:
        self.closed += 1

    async def aclose(self) -> None:
        if self.fail:
            raise RuntimeError("Event loop is closed")
        self.closed += 1


Cache = ClientCache[FakeClient, FakeClient]


def test_one_sync_client_made_once_across_threads() -> None:
    cache: Cache = ClientCache()
    made: list[FakeClient] = []
    barrier = threading.Barrier(8)

    def make() -> FakeClient:
        made.append(FakeClient())
        return made[-1]

    def use() -> None:
        barrier.wait()
        cache.sync(make)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1
    assert cache.sync(make) is made[0]
    cache.close()
    cache.close()
    assert made[0].closed == 1
    assert cache.sync(make) is made[1]


def test_one_async_client_per_event_loop() -> None:
    cache: Cache = ClientCache()

    async def twice() -> FakeClient:
        first = cache.async_(FakeClient)
        assert cache.async_(FakeClient) is first
        return first

    first, second = asyncio.run(twice()), asyncio.run(twice())
    assert first is not second


def test_threads_with_their_own_loops_keep_their_own_clients() -> None:
    """Two live loops used in turn: neither is ever handed the other's client."""
    cache: Cache = ClientCache()
    barrier = threading.Barrier(2)
    seen: dict[str, list[FakeClient]] = {"a": [], "b": []}

    async def calls(name: str) -> None:
        for _ in range(3):
            seen[name].append(cache.async_(FakeClient))
            barrier.wait()  # the other thread's loop takes its turn while this one runs

    threads = [threading.Thread(target=asyncio.run, args=(calls(n),)) for n in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for clients in seen.values():
        assert len({id(c) for c in clients}) == 1
    assert seen["a"][0] is not seen["b"][0]


def test_aclose_closes_this_loops_client_and_quietly_those_of_ended_loops() -> None:
    cache: Cache = ClientCache()
    ended = asyncio.run(_make(cache, FakeClient, fail=True))
    other_thread: list[FakeClient] = []
    ready, done = threading.Event(), threading.Event()

    async def live_elsewhere() -> None:
        other_thread.append(cache.async_(FakeClient))
        ready.set()
        while not done.is_set():
            await asyncio.sleep(0.01)

    thread = threading.Thread(target=asyncio.run, args=(live_elsewhere(),))
    thread.start()
    ready.wait()

    async def main() -> FakeClient:
        # No client made in this loop yet: the ended loop's client is still registered.
        await cache.aclose()
        current = cache.async_(FakeClient)
        await cache.aclose()
        await cache.aclose()
        return current

    current = asyncio.run(main())
    done.set()
    thread.join()
    assert current.closed == 1
    assert ended.closed == 0 and ended.loop is not None and ended.loop.is_closed()
    assert other_thread[0].closed == 0  # a live loop's client is left to that loop
    closable = asyncio.run(_make(cache, FakeClient))

    async def close_later() -> None:
        await cache.aclose()

    asyncio.run(close_later())
    assert closable.closed == 1  # an ended loop's client that can be closed is closed


async def _make(cache: Cache, kind: type[FakeClient], fail: bool = False) -> FakeClient:
    return cache.async_(lambda: kind(fail=fail))


def test_clients_of_ended_loops_are_forgotten_when_a_new_loop_makes_one() -> None:
    cache: Cache = ClientCache()
    first = asyncio.run(_make(cache, FakeClient))

    async def main() -> None:
        assert cache.async_(FakeClient) is not first
        await cache.aclose()

    asyncio.run(main())
    assert first.closed == 0  # dropped: a closed loop cannot run its closing


def test_copies_and_pickles_start_empty() -> None:
    cache: Cache = ClientCache()
    client = cache.sync(FakeClient)
    for clone in (copy.copy(cache), copy.deepcopy(cache), pickle.loads(pickle.dumps(cache))):
        assert isinstance(clone, ClientCache)
        assert clone.sync(FakeClient) is not client
    assert cache.sync(FakeClient) is client
