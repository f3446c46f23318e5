"""langchain-tests' standard unit suite (no network)."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_opensearch_llm import ChatOpenSearchLLM


class TestChatOpenSearchLLMUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatOpenSearchLLM]:
        return ChatOpenSearchLLM

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "qwen-plus", "api_key": "test-key"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {
                "OPENSEARCH_LLM_API_KEY": "env-key",
                "OPENSEARCH_LLM_BASE_URL": "https://x.example/v1",
            },
            {"model": "qwen-max"},
            {"api_key": "env-key", "model_name": "qwen-max"},
        )

    @property
    def model_override_value(self) -> str:
        return "qwen-max"
