"""The exception tree of every client in this package.

::

    OpenSearchLLMError
    ├── RequestValidationError (also ValueError)     bad input; nothing was sent
    ├── MissingAPIKeyError (also ValueError)          no key in the argument or the environment
    ├── APIConnectionError                            the request did not get a response
    │   └── APITimeoutError                           connect, read or stream-idle timeout
    ├── APIStatusError                                the service answered with an error
    │   ├── BadRequestError             400
    │   │   └── ContextWindowExceededError            the input is longer than the model takes
    │   ├── AuthenticationError         401
    │   ├── PermissionDeniedError       403
    │   ├── NotFoundError               404
    │   ├── RateLimitError              429
    │   ├── InternalServerError         5xx
    │   └── ContentFilterError          moderation: ``data_inspection_failed``
    ├── StreamError                                   a stream broke; ``partial`` keeps what came
    └── ResponseDecodeError                           a body that is not the documented JSON
        └── ResponseTooLargeError                     a body, line or frame over a size limit

Every ``APIStatusError`` carries ``status``, ``code``, ``message``, ``request_id`` and ``body``.
Service text copied into an error never shows a secret: ``hide_secrets`` masks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class OpenSearchLLMError(Exception):
    """Base class of every error this package raises."""


class RequestValidationError(OpenSearchLLMError, ValueError):
    """A request field has a value the service does not accept; nothing was sent."""

    def __init__(self, field: str, value: Any, allowed: str, message: str | None = None) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        shown = _short_repr(value)
        super().__init__(message or f"Invalid {field}: {shown}; allowed: {allowed}.")
        if message:
            self.args = (f"Invalid {field}: {shown}; allowed: {allowed}. {message}",)


class MissingAPIKeyError(OpenSearchLLMError, ValueError):
    """No API key was passed and none is set in the environment."""


class APIConnectionError(OpenSearchLLMError):
    """The request got no response: connection refused or reset, DNS failure, protocol error."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        self.request_id = request_id
        super().__init__(message)


class APITimeoutError(APIConnectionError):
    """A connect, read or stream-idle timeout expired."""


class ResponseDecodeError(OpenSearchLLMError):
    """The service sent a body that is not the documented JSON."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        self.status = status
        self.body = body
        super().__init__(message)


class ResponseTooLargeError(ResponseDecodeError):
    """A response body, stream line or frame is larger than a limit; nothing more was read.

    ``limit`` is the number of bytes allowed and ``setting`` the client option that raises it.
    """

    def __init__(self, what: str, *, limit: int, setting: str, status: int | None = None) -> None:
        self.limit = limit
        self.setting = setting
        super().__init__(
            f"{what} is larger than {setting}={limit} bytes; pass a larger {setting} "
            "to the client if the service is expected to send that much.",
            status=status,
        )


class APIStatusError(OpenSearchLLMError):
    """The service answered with an error (an HTTP error status, or an error body under 200)."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        request_id: str | None = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.body = body
        self.retry_after = retry_after
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [f"HTTP {self.status}"]
        if self.code:
            parts.append(f"code={self.code}")
        text = f"{' '.join(parts)}: {self.message}"
        if self.request_id:
            text += f" (request_id={self.request_id})"
        hint = _HINTS.get(type(self))
        return f"{text}. {hint}" if hint else text


class BadRequestError(APIStatusError):
    """HTTP 400: the service rejected the request's content."""


class ContextWindowExceededError(BadRequestError):
    """HTTP 400: the messages are longer than the model's context window."""


class AuthenticationError(APIStatusError):
    """HTTP 401: the API key is wrong, or belongs to another region."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403: the key may not use this model or application."""


class NotFoundError(APIStatusError):
    """HTTP 404: unknown model, application or path."""


class RateLimitError(APIStatusError):
    """HTTP 429: too many requests or tokens per minute, or the quota is used up."""


class InternalServerError(APIStatusError):
    """HTTP 5xx: the service failed or is overloaded."""


class ContentFilterError(APIStatusError):
    """The service's content moderation blocked the input or the output."""


class StreamError(OpenSearchLLMError):
    """A stream broke after it started; ``partial`` holds everything received before the break."""

    def __init__(
        self, message: str, *, partial: Any = None, cause: BaseException | None = None
    ) -> None:
        self.partial = partial
        self.cause = cause
        self.request_id: str | None = getattr(cause, "request_id", None)
        self.status: int | None = getattr(cause, "status", None)
        self.code: str | None = getattr(cause, "code", None)
        super().__init__(message)


def broken_stream(cause: OpenSearchLLMError, partial: Any) -> StreamError:
    """The error for a stream that broke after ``partial`` came.

    ``cause`` itself when it is a ``StreamError`` (given ``partial``), else a ``StreamError``
    caused by it.
    """
    if isinstance(cause, StreamError):
        cause.partial = partial
        return cause
    return StreamError(f"the stream broke after it started: {cause}", partial=partial, cause=cause)


_HINTS: dict[type[APIStatusError], str] = {
    AuthenticationError: (
        "Check the API key; a Model Studio key works only in the region it was created in, "
        "so the base_url or region must match the key's region"
    ),
    PermissionDeniedError: "Check that the key may use this model or application",
    NotFoundError: "Check the model name and the base_url (knowledge-llm: the host and the app)",
    RateLimitError: "Slow down or raise max_retries; the limit is per minute",
    InternalServerError: "The service failed; retry later",
    ContentFilterError: "The content was blocked by moderation; rephrase the input",
    ContextWindowExceededError: "Shorten the messages or choose a model with a larger context",
}


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- secrets

#: What an error may keep of a secret the service echoed: the first three and last four
#: characters, as key listings show them; a short secret keeps nothing.
_SHOWN_HEAD, _SHOWN_TAIL, _SHOWN_MIN_LENGTH = 3, 4, 16


def masked(secret: str) -> str:
    """``secret`` as an error may show it: ``sk-…abcd``, or ``…`` when it is short."""
    if len(secret) < _SHOWN_MIN_LENGTH:
        return "…"
    return f"{secret[:_SHOWN_HEAD]}…{secret[-_SHOWN_TAIL:]}"


def hide_secrets(error: BaseException, secrets: Sequence[str]) -> None:
    """Mask every secret in ``error``, in place: its text, body, partial result and causes.

    A server may echo the ``Authorization`` header in an error body or a stream frame.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and secrets:
        seen.add(id(current))
        current.args = tuple(_hidden(arg, secrets) for arg in current.args)
        fields = vars(current)
        for name in ("message", "body", "partial", "value"):
            if name in fields:
                fields[name] = _hidden(fields[name], secrets)
        current = current.__cause__ or current.__context__


def _hidden(value: Any, secrets: Sequence[str]) -> Any:
    """``value`` with its secrets masked: text replaced; JSON containers changed in place."""
    if isinstance(value, str):
        return _hidden_text(value, secrets)
    stack = [value] if isinstance(value, (dict, list)) else []
    while stack:  # a loop, not recursion: an error body may nest a thousand levels deep
        node = stack.pop()
        for key, item in list(node.items() if isinstance(node, dict) else enumerate(node)):
            if isinstance(item, str):
                node[key] = _hidden_text(item, secrets)
            elif isinstance(item, (dict, list)):
                stack.append(item)
    return value


def _hidden_text(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, masked(secret))
    return text
