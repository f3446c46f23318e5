import pytest

from opensearch_llm import AsyncChatClient, ChatClient, MissingAPIKeyError
from opensearch_llm._config import ClientConfig, resolve_api_key

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
