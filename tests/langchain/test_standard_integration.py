"""langchain-tests' standard integration suite: offline against the emulator, live with a key.

Tests that need a real model's judgement are skipped offline (``conftest.OFFLINE_SKIPS``).
"""

from __future__ import annotations

from typing import Any

import httpx
from langchain_core.messages import AIMessage
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_opensearch_llm import ChatOpenSearchLLM
from opensearch_llm.emulator import Emulator
from tests.langchain.conftest import EMULATOR_BASE_URL, LIVE

_EMULATOR = Emulator()


def _offline_params() -> dict[str, Any]:
    return {
        "api_key": "sk-test",
        "base_url": EMULATOR_BASE_URL,
        "http_client": httpx.Client(transport=_EMULATOR.transport()),
        "http_async_client": httpx.AsyncClient(transport=_EMULATOR.async_transport()),
    }


class TestChatOpenSearchLLMIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatOpenSearchLLM]:
        return ChatOpenSearchLLM

    @property
    def chat_model_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"model": "qwen-plus"}
        return params if LIVE else {**params, **_offline_params()}

    @property
    def model_override_value(self) -> str:
        return "qwen-turbo"

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supported_usage_metadata_details(self) -> dict[str, list[Any]]:
        return {
            "invoke": ["reasoning_output", "cache_read_input"],
            "stream": ["reasoning_output", "cache_read_input"],
        }

    def invoke_with_reasoning_output(self, *, stream: bool = False) -> AIMessage:
        llm = self.chat_model_class(**{**self.chat_model_params, "model": "qwq-plus"})
        return _run(llm, "Is 7 a prime number?", stream=stream)

    def invoke_with_cache_read_input(self, *, stream: bool = False) -> AIMessage:
        llm = self.chat_model_class(**self.chat_model_params)
        prompt = "Summarise this: " + "lorem ipsum dolor sit amet " * 300
        _run(llm, prompt, stream=False)  # the second call can read the service's cache
        return _run(llm, prompt, stream=stream)


def _run(llm: ChatOpenSearchLLM, prompt: str, *, stream: bool) -> AIMessage:
    if not stream:
        return llm.invoke(prompt)
    full = None
    for chunk in llm.stream(prompt):
        full = chunk if full is None else full + chunk
    assert full is not None
    return AIMessage(
        content=full.content,
        additional_kwargs=full.additional_kwargs,
        usage_metadata=full.usage_metadata,
        response_metadata=full.response_metadata,
    )
