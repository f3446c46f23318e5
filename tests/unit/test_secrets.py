from typing import Any

import pytest

from opensearch_llm import (
    APIStatusError,
    AsyncChatClient,
    ChatClient,
    MissingAPIKeyError,
    StreamError,
)
from opensearch_llm._config import ClientConfig, resolve_api_key
from opensearch_llm._errors import hide_secrets, masked

KEY = "sk-RECOGNISABLE-9f8e7d6c"


@pytest.mark.parametrize("cls", [ChatClient, AsyncChatClient])
def test_key_is_in_no_repr_or_str(cls: type) -> None:
    client = cls(KEY, base_url="http://127.0.0.1:1/compatible-mode/v1")
    texts = [
        repr(client),
        str(client),
        repr(client._config),
        str(client._config),
        repr(client._transport),
        str(vars(client._config)),
    ]
    assert not [t for t in texts if KEY in t]


def test_key_from_environment_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    secret = resolve_api_key(None)
    assert KEY not in repr(secret) and KEY not in str(secret)
    config = ClientConfig(api_key=secret, base_url="http://h")
    assert KEY not in repr(config)


def test_missing_key_error_does_not_echo_anything_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENSEARCH_LLM_API_KEY", raising=False)
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError):
        ChatClient()


def test_a_secret_is_masked_to_its_ends_and_a_short_one_to_nothing() -> None:
    assert masked(KEY) == "sk-…7d6c"
    assert masked("short-secret") == "…"


def test_hide_secrets_masks_text_body_partial_and_causes() -> None:
    deep: dict[str, Any] = {"echo": f"Bearer {KEY}"}
    for _ in range(5_000):  # deeper than the recursion limit: walked by a loop
        deep = {"inner": deep}
    cause = APIStatusError(f"key {KEY}", status=401, body=deep)
    error = StreamError(f"broke: {KEY}", partial={"choices": [{"content": KEY}]}, cause=cause)
    error.__cause__ = cause
    hide_secrets(error, (KEY, "unused"))
    texts = [str(error), repr(error.args), repr(error.partial), str(cause), cause.message]
    assert not [t for t in texts if KEY in t]
    assert "sk-…7d6c" in str(error) and "sk-…7d6c" in cause.message
    inner = cause.body
    while "inner" in inner:
        inner = inner["inner"]
    assert inner == {"echo": "Bearer sk-…7d6c"}


def test_hide_secrets_with_no_secrets_changes_nothing() -> None:
    error = APIStatusError(f"key {KEY}", status=401, body={"k": KEY})
    hide_secrets(error, ())
    assert error.body == {"k": KEY} and KEY in str(error)
