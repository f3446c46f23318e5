"""Service errors surface as classes that are both the core's and langchain-core's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langchain_core.exceptions import (
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelRateLimitError,
)

import opensearch_llm
from langchain_opensearch_llm import (
    ChatOpenSearchLLM,
    OpenSearchLLMContentFilterError,
    OpenSearchLLMStreamError,
)
from opensearch_llm.emulator import Emulator
from tests.langchain._helpers import MODES, invoke, merge, stream
from tests.langchain.conftest import EMULATOR_BASE_URL

LLMFactory = Callable[..., ChatOpenSearchLLM]


def _fault(name: str, **params: Any) -> dict[str, Any]:
    headers = {"X-Emulator-Fault": name}
    headers.update({f"X-Emulator-{key.title()}": str(value) for key, value in params.items()})
    return {"extra_headers": headers}


FAULTS = [
    ("429", ModelRateLimitError, opensearch_llm.RateLimitError),
    ("insufficient-quota", ModelRateLimitError, opensearch_llm.RateLimitError),
    ("503", ModelAPIError, opensearch_llm.InternalServerError),
    ("data-inspection-failed", ModelError, opensearch_llm.ContentFilterError),
    ("flat-error", ModelInvalidRequestError, opensearch_llm.BadRequestError),
    ("error-200", ModelError, opensearch_llm.APIStatusError),
    ("reset", ModelConnectionError, opensearch_llm.APIConnectionError),
]


@MODES
@pytest.mark.parametrize("streamed", [False, True], ids=["invoke", "stream"])
@pytest.mark.parametrize(
    ("fault", "langchain_class", "core_class"), FAULTS, ids=[f[0] for f in FAULTS]
)
async def test_faults_map_to_both_classes(
    make_llm: LLMFactory,
    mode: str,
    streamed: bool,
    fault: str,
    langchain_class: type[Exception],
    core_class: type[Exception],
) -> None:
    llm = make_llm(max_retries=0)
    call = stream if streamed else invoke
    with pytest.raises(langchain_class) as caught:
        await call(llm, "hi", mode, **_fault(fault))
    assert isinstance(caught.value, core_class)
    assert isinstance(caught.value, ModelError)
    # Chained to the core's error it was made from (same class family, same message).
    cause = caught.value.__cause__
    assert isinstance(cause, core_class) and not isinstance(cause, ModelError)
    assert str(cause) == str(caught.value)


@MODES
async def test_wrong_key(http_clients: Any, mode: str) -> None:
    emulator = Emulator(api_key="sk-right")
    llm = ChatOpenSearchLLM(
        api_key="sk-wrong",
        base_url=EMULATOR_BASE_URL,
        http_client=httpx.Client(transport=emulator.transport()),
        http_async_client=httpx.AsyncClient(transport=emulator.async_transport()),
    )
    with pytest.raises(ModelAuthenticationError) as caught:
        await invoke(llm, "hi", mode)
    assert isinstance(caught.value, opensearch_llm.AuthenticationError)
    assert caught.value.status == 401
    assert caught.value.request_id
    assert "sk-wrong" not in str(caught.value)
    assert "region" in str(caught.value)  # says what to do next


@MODES
async def test_unknown_model(make_llm: LLMFactory, mode: str) -> None:
    with pytest.raises(ModelNotFoundError):
        await invoke(make_llm(), "hi", mode, model="no-such-model")


@MODES
async def test_content_filtered_answer_is_returned_with_its_finish_reason(
    make_llm: LLMFactory, mode: str
) -> None:
    # The service cut the answer; what came is returned, as for finish_reason "length".
    reply = await invoke(make_llm(), "one two three four", mode, **_fault("content-filter"))
    assert reply.content == "You said: one"
    assert reply.response_metadata["finish_reason"] == "content_filter"
    full = merge(await stream(make_llm(), "one two three four", mode, **_fault("content-filter")))
    assert full.response_metadata["finish_reason"] == "content_filter"


@MODES
async def test_blocked_input(make_llm: LLMFactory, mode: str) -> None:
    with pytest.raises(OpenSearchLLMContentFilterError) as caught:
        await invoke(make_llm(), "hi", mode, **_fault("data-inspection-failed"))
    assert caught.value.code == "data_inspection_failed"
    assert caught.value.is_retryable is False


@MODES
async def test_broken_stream_keeps_the_partial_answer(make_llm: LLMFactory, mode: str) -> None:
    llm = make_llm(max_retries=0)
    received: list[Any] = []
    with pytest.raises(OpenSearchLLMStreamError) as caught:
        if mode == "sync":
            received.extend(llm.stream("one two three four five", **_fault("error-frame", after=3)))
        else:
            async for chunk in llm.astream(
                "one two three four five", **_fault("error-frame", after=3)
            ):
                received.append(chunk)
    error = caught.value
    assert isinstance(error, opensearch_llm.StreamError)
    assert isinstance(error, ModelError)
    assert error.partial["choices"][0]["message"]["content"] == merge(received).content
    assert merge(received).content


@MODES
async def test_validation_errors_before_sending(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    with pytest.raises(opensearch_llm.RequestValidationError, match="temperature"):
        await invoke(make_llm(), "hi", mode, temperature=5)
    assert emulator.request_count == 0
    with pytest.raises(ValueError, match="temperature"):
        make_llm(temperature=5)


@MODES
async def test_with_retry(make_llm: LLMFactory, emulator: Emulator, mode: str) -> None:
    emulator.script_faults(["503", "503", None])
    llm = make_llm(max_retries=0).with_retry(
        retry_if_exception_type=(ModelAPIError,),
        wait_exponential_jitter=False,
        stop_after_attempt=3,
    )
    reply = await invoke(llm, "third time lucky", mode)
    assert reply.content == "You said: third time lucky"
    assert emulator.request_count == 3


@MODES
async def test_core_retries_first(make_llm: LLMFactory, emulator: Emulator, mode: str) -> None:
    emulator.script_faults(["503", None])
    reply = await invoke(make_llm(max_retries=1), "retried", mode)
    assert reply.content == "You said: retried"
    assert emulator.request_count == 2


@MODES
async def test_with_fallbacks(make_llm: LLMFactory, mode: str) -> None:
    failing = make_llm(max_retries=0, default_headers={"X-Emulator-Fault": "429"})
    llm = failing.with_fallbacks([make_llm()], exceptions_to_handle=(ModelRateLimitError,))
    reply = await invoke(llm, "fallback", mode)
    assert reply.content == "You said: fallback"


def test_missing_key_is_reported_on_first_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENSEARCH_LLM_API_KEY", raising=False)
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    llm = ChatOpenSearchLLM(base_url=EMULATOR_BASE_URL)
    assert llm.api_key is None
    with pytest.raises(opensearch_llm.MissingAPIKeyError, match="OPENSEARCH_LLM_API_KEY"):
        llm.invoke("hi")
