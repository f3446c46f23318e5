"""The core's errors as classes that are also langchain-core's ``Model*Error`` classes.

Each class below inherits from the core's class and from the matching langchain-core class,
so ``except opensearch_llm.RateLimitError`` and ``except ModelRateLimitError`` both catch a
throttled call, and ``with_retry`` / ``with_fallbacks`` can be keyed on either::

    core error                       LangChain adapter class             also a
    ContextWindowExceededError       OpenSearchLLMContextOverflowError   ContextOverflowError
    BadRequestError                  OpenSearchLLMInvalidRequestError    ModelInvalidRequestError
    AuthenticationError              OpenSearchLLMAuthenticationError    ModelAuthenticationError
    PermissionDeniedError            OpenSearchLLMPermissionDeniedError  ModelPermissionDeniedError
    NotFoundError                    OpenSearchLLMNotFoundError          ModelNotFoundError
    RateLimitError                   OpenSearchLLMRateLimitError         ModelRateLimitError
    InternalServerError              OpenSearchLLMServerError            ModelAPIError
    APIStatusError (other status)    OpenSearchLLMAPIStatusError         ModelError
    ContentFilterError               OpenSearchLLMContentFilterError     ModelError
    APITimeoutError                  OpenSearchLLMTimeoutError           ModelTimeoutError
    APIConnectionError               OpenSearchLLMConnectionError        ModelConnectionError
    StreamError                      OpenSearchLLMStreamError            ModelError
    ResponseTooLargeError            OpenSearchLLMResponseTooLargeError  ModelAPIError
    ResponseDecodeError              OpenSearchLLMResponseDecodeError    ModelAPIError

``RequestValidationError`` and ``MissingAPIKeyError`` (both ``ValueError``) are raised as they
are: nothing was sent. Every converted error's ``is_retryable`` is the core's retry rule
(``opensearch_llm._retry.is_retryable``), never langchain-core's per-class default.
langchain-core 1.7 has no refusal / content-filter class, so content moderation is only a
``ModelError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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

from opensearch_llm import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    ContextWindowExceededError,
    InternalServerError,
    NotFoundError,
    OpenSearchLLMError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
    StreamError,
)
from opensearch_llm._adapters import is_retryable


class OpenSearchLLMContextOverflowError(ContextWindowExceededError, ContextOverflowError):
    """The messages are longer than the model's context window (HTTP 400)."""


class OpenSearchLLMInvalidRequestError(BadRequestError, ModelInvalidRequestError):
    """The service rejected the request (HTTP 400)."""


class OpenSearchLLMAuthenticationError(AuthenticationError, ModelAuthenticationError):
    """The API key is wrong or belongs to another region (HTTP 401)."""


class OpenSearchLLMPermissionDeniedError(PermissionDeniedError, ModelPermissionDeniedError):
    """The key may not use this model or application (HTTP 403)."""


class OpenSearchLLMNotFoundError(NotFoundError, ModelNotFoundError):
    """Unknown model, application or path (HTTP 404)."""


class OpenSearchLLMRateLimitError(RateLimitError, ModelRateLimitError):
    """Too many requests or tokens per minute (HTTP 429); retryable."""


class OpenSearchLLMServerError(InternalServerError, ModelAPIError):
    """The service failed or is overloaded (HTTP 5xx); 500, 502, 503 and 504 are retried."""


class OpenSearchLLMAPIStatusError(APIStatusError, ModelError):
    """The service answered with an error status that has no more specific class."""


class OpenSearchLLMContentFilterError(ContentFilterError, ModelError):
    """Content moderation blocked the input or the output; not retryable."""


class OpenSearchLLMTimeoutError(APITimeoutError, ModelTimeoutError):
    """A connect, read or stream-idle timeout expired; retryable."""


class OpenSearchLLMConnectionError(APIConnectionError, ModelConnectionError):
    """The request got no response; retryable."""


class OpenSearchLLMStreamError(StreamError, ModelError):
    """A stream broke after it started; ``partial`` keeps what came before the break.

    ``is_retryable`` follows the cause, by the core's rule: a broken connection or a server
    error is worth retrying, a content-filter or validation error is not.
    """


class OpenSearchLLMResponseDecodeError(ResponseDecodeError, ModelAPIError):
    """The service sent a body that is not the documented JSON."""


class OpenSearchLLMResponseTooLargeError(ResponseTooLargeError, ModelAPIError):
    """A response body, stream line or frame is larger than the client's limit."""


# Most specific first: the first core class in an error's MRO that is listed here wins.
_LANGCHAIN_CLASSES: dict[type[OpenSearchLLMError], type[OpenSearchLLMError]] = {
    ContextWindowExceededError: OpenSearchLLMContextOverflowError,
    BadRequestError: OpenSearchLLMInvalidRequestError,
    AuthenticationError: OpenSearchLLMAuthenticationError,
    PermissionDeniedError: OpenSearchLLMPermissionDeniedError,
    NotFoundError: OpenSearchLLMNotFoundError,
    RateLimitError: OpenSearchLLMRateLimitError,
    InternalServerError: OpenSearchLLMServerError,
    ContentFilterError: OpenSearchLLMContentFilterError,
    APIStatusError: OpenSearchLLMAPIStatusError,
    APITimeoutError: OpenSearchLLMTimeoutError,
    APIConnectionError: OpenSearchLLMConnectionError,
    StreamError: OpenSearchLLMStreamError,
    ResponseTooLargeError: OpenSearchLLMResponseTooLargeError,
    ResponseDecodeError: OpenSearchLLMResponseDecodeError,
}


def to_langchain_error(error: OpenSearchLLMError) -> OpenSearchLLMError:
    """``error`` as an instance of its LangChain-flavoured class (same message and fields).

    Errors that are already LangChain-flavoured, or have no counterpart (request validation,
    missing key), are returned unchanged.
    """
    if isinstance(error, ModelError):
        return error
    target = _langchain_class(type(error))
    if target is None:
        return error
    converted = target.__new__(target)
    converted.args = error.args
    converted.__dict__.update(error.__dict__)
    converted.__traceback__ = error.__traceback__
    # langchain-core's classes carry their own ``is_retryable``; the core's rule decides.
    converted.is_retryable = _retryable(converted)  # type: ignore[attr-defined]
    return converted


@contextmanager
def langchain_errors() -> Iterator[None]:
    """Re-raise the core's errors in the block as their LangChain-flavoured classes.

    The converted error is chained to the core's (``__cause__``); errors without a LangChain
    counterpart (request validation, a missing key) propagate unchanged.
    """
    try:
        yield
    except OpenSearchLLMError as error:
        converted = to_langchain_error(error)
        if converted is error:
            raise
        raise converted from error


def _langchain_class(kind: type[OpenSearchLLMError]) -> type[OpenSearchLLMError] | None:
    for klass in kind.__mro__:
        target = _LANGCHAIN_CLASSES.get(klass)
        if target is not None:
            return target
    return None


def _retryable(error: OpenSearchLLMError) -> bool:
    """The core's retry rule; a broken stream is judged by its cause (none: worth a retry)."""
    if isinstance(error, StreamError):
        return error.cause is None or is_retryable(error.cause)
    return is_retryable(error)


__all__ = [
    "OpenSearchLLMAPIStatusError",
    "OpenSearchLLMAuthenticationError",
    "OpenSearchLLMConnectionError",
    "OpenSearchLLMContentFilterError",
    "OpenSearchLLMContextOverflowError",
    "OpenSearchLLMInvalidRequestError",
    "OpenSearchLLMNotFoundError",
    "OpenSearchLLMPermissionDeniedError",
    "OpenSearchLLMRateLimitError",
    "OpenSearchLLMResponseDecodeError",
    "OpenSearchLLMResponseTooLargeError",
    "OpenSearchLLMServerError",
    "OpenSearchLLMStreamError",
    "OpenSearchLLMTimeoutError",
    "langchain_errors",
    "to_langchain_error",
]
