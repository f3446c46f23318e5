"""The core's errors re-raised as classes that are both ours and langchain-core's."""

from __future__ import annotations

import pytest
from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)
from langchain_core.runnables import RunnableLambda

import langchain_opensearch_llm as package
from langchain_opensearch_llm._errors import to_langchain_error
from opensearch_llm import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    ContextWindowExceededError,
    InternalServerError,
    MissingAPIKeyError,
    NotFoundError,
    OpenSearchLLMError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    ResponseDecodeError,
    ResponseTooLargeError,
    StreamError,
)
from opensearch_llm._retry import is_retryable


def _status(cls: type[APIStatusError], status: int) -> APIStatusError:
    return cls("went wrong", status=status, code="Code.X", request_id="req-9", body={"a": 1})


CASES = [
    (_status(ContextWindowExceededError, 400), ContextOverflowError),
    (_status(BadRequestError, 400), ModelInvalidRequestError),
    (_status(AuthenticationError, 401), ModelAuthenticationError),
    (_status(PermissionDeniedError, 403), ModelPermissionDeniedError),
    (_status(NotFoundError, 404), ModelNotFoundError),
    (_status(RateLimitError, 429), ModelRateLimitError),
    (_status(InternalServerError, 503), ModelAPIError),
    (_status(ContentFilterError, 400), ModelError),
    (_status(APIStatusError, 418), ModelError),
    (APITimeoutError("timed out"), ModelTimeoutError),
    (APIConnectionError("refused"), ModelConnectionError),
    (StreamError("broke", partial={"choices": []}), ModelError),
    (ResponseDecodeError("not json", status=200, body="<html>"), ModelAPIError),
    (ResponseTooLargeError("a body", limit=10, setting="max_response_bytes"), ModelAPIError),
]


@pytest.mark.parametrize(("error", "langchain_class"), CASES, ids=lambda v: type(v).__name__)
def test_error_is_both_ours_and_langchains(
    error: OpenSearchLLMError, langchain_class: type[Exception]
) -> None:
    converted = to_langchain_error(error)
    assert isinstance(converted, type(error))
    assert isinstance(converted, langchain_class)
    assert isinstance(converted, ModelError)
    assert str(converted) == str(error)
    assert converted.__dict__ == error.__dict__ | {
        k: v for k, v in converted.__dict__.items() if k == "is_retryable"
    }
    assert type(converted).__name__ in package.__all__


def test_status_fields_survive() -> None:
    converted = to_langchain_error(_status(RateLimitError, 429))
    assert isinstance(converted, RateLimitError)
    assert (converted.status, converted.code, converted.request_id) == (429, "Code.X", "req-9")
    assert converted.is_retryable is True  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "error",
    [RequestValidationError("temperature", 5, "[0, 2)"), MissingAPIKeyError("no key")],
)
def test_errors_before_sending_are_unchanged(error: OpenSearchLLMError) -> None:
    assert to_langchain_error(error) is error
    assert isinstance(error, ValueError)


def test_converting_twice_is_a_no_op() -> None:
    once = to_langchain_error(_status(NotFoundError, 404))
    assert to_langchain_error(once) is once


@pytest.mark.parametrize(
    ("cause", "retryable"),
    [
        (APIConnectionError("reset"), True),
        (_status(InternalServerError, 500), True),
        (_status(ContentFilterError, 400), False),
        (None, True),
    ],
)
def test_stream_error_retryability_follows_its_cause(
    cause: OpenSearchLLMError | None, retryable: bool
) -> None:
    converted = to_langchain_error(StreamError("broke", partial={"x": 1}, cause=cause))
    assert converted.is_retryable is retryable  # type: ignore[attr-defined]
    assert isinstance(converted, StreamError)
    assert converted.partial == {"x": 1}


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (_status(InternalServerError, 501), False),  # langchain-core's 5xx class says True
        (_status(APIStatusError, 503), True),  # langchain-core's ModelError says False
        (_status(InternalServerError, 503), True),
        (_status(RateLimitError, 429), True),
        (_status(NotFoundError, 404), False),
        (APIConnectionError("reset"), True),
        (ResponseDecodeError("not json", status=200), False),
    ],
)
def test_retryability_is_the_cores_rule(error: OpenSearchLLMError, retryable: bool) -> None:
    converted = to_langchain_error(error)
    assert converted.is_retryable is retryable is is_retryable(error)  # type: ignore[attr-defined]


def test_with_retry_retries_on_the_langchain_class() -> None:
    calls: list[int] = []

    def flaky(_: str) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise to_langchain_error(_status(RateLimitError, 429))
        return "ok"

    runnable = RunnableLambda(flaky).with_retry(
        retry_if_exception_type=(ModelRateLimitError,),
        stop_after_attempt=3,
        wait_exponential_jitter=False,
    )
    assert runnable.invoke("x") == "ok"
    assert len(calls) == 3


def test_with_fallbacks_on_the_core_class() -> None:
    def broken(_: str) -> str:
        raise to_langchain_error(_status(AuthenticationError, 401))

    runnable = RunnableLambda(broken).with_fallbacks(
        [RunnableLambda(lambda _: "fallback")], exceptions_to_handle=(AuthenticationError,)
    )
    assert runnable.invoke("x") == "fallback"
