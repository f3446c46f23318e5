"""langchain-tests' standard integration suite: offline on the served emulator, live with a key.

Offline, the emulator runs on a port of 127.0.0.1 (``serve``) and the model uses its default
transports (httpx, aiohttp), as against the service; the emulator reads its prompts (tool
arguments, JSON keys), so the tests that ask a model to listen pass too. Skipped, as langchain-tests
decides from the properties below: only the inputs this model does not take (images, audio, PDF,
whose tests also download samples from the internet, and Anthropic-format messages).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_opensearch_llm import ChatOpenSearchLLM
from opensearch_llm.emulator import Emulator, EmulatorServer, serve
from scripts.record_cassettes import CASSETTES_DIR
from tests.langchain.conftest import LIVE


class TestChatOpenSearchLLMIntegration(ChatModelIntegrationTests):
    #: The served emulator while the module's tests run offline (``served_emulator``).
    server: EmulatorServer | None = None

    @property
    def chat_model_class(self) -> type[ChatOpenSearchLLM]:
        return ChatOpenSearchLLM

    @property
    def chat_model_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"model": "qwen-plus"}
        if self.server is None:
            return params
        return {**params, "api_key": "sk-test", "base_url": self.server.compatible_base_url}

    @property
    def enable_vcr_tests(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "qwen-turbo"

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supported_usage_metadata_details(self) -> dict[str, list[Any]]:
        return {
            "invoke": ["reasoning_output", "cache_read_input", "cache_creation_input"],
            "stream": ["reasoning_output", "cache_read_input", "cache_creation_input"],
        }

    def invoke_with_reasoning_output(self, *, stream: bool = False) -> AIMessage:
        llm = self.chat_model_class(**{**self.chat_model_params, "model": "qwq-plus"})
        return _run(llm, "Is 7 a prime number?", stream=stream)

    def invoke_with_cache_creation_input(self, *, stream: bool = False) -> AIMessage:
        llm = self.chat_model_class(**self.chat_model_params)
        # A new prefix each time (the cache outlives the call), marked, of 1,024+ tokens.
        document = f"Notes {uuid.uuid4()}: " + "lorem ipsum dolor sit amet " * 300
        marked = {"type": "text", "text": document, "cache_control": {"type": "ephemeral"}}
        return _run(
            llm, [SystemMessage([marked]), HumanMessage("Summarise the notes")], stream=stream
        )

    def invoke_with_cache_read_input(self, *, stream: bool = False) -> AIMessage:
        llm = self.chat_model_class(**self.chat_model_params)
        prompt = "Summarise this: " + "lorem ipsum dolor sit amet " * 300
        _run(llm, prompt, stream=False)  # the second call can read the service's cache
        return _run(llm, prompt, stream=stream)


@pytest.fixture(scope="module", autouse=True)
def served_emulator() -> Iterator[None]:
    """Offline: the emulator on 127.0.0.1 for the module's tests."""
    if LIVE:
        yield
        return
    with serve(Emulator()) as server:
        TestChatOpenSearchLLMIntegration.server = server
        yield
    TestChatOpenSearchLLMIntegration.server = None


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    """``test_stream_time`` replays a documented stream of the service (``cassettes/``)."""
    return {"record_mode": "none", "match_on": ["method", "path"], "allow_playback_repeats": True}


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTES_DIR)


@pytest.fixture
def default_cassette_name() -> str:
    return "compatible_stream_usage"


def _run(llm: ChatOpenSearchLLM, prompt: LanguageModelInput, *, stream: bool) -> AIMessage:
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
