"""JSON bodies both ways: requests encoded, responses and stream events decoded, errors found.

One parser serves every error shape the service family uses (docs/service-facts.md, "Errors"):
``{"error": {message, type, param, code}, "request_id"}``, a flat ``{code, message,
request_id}``, the gateway's ``{success: false, code, message}`` and knowledge-llm's
``errors[]``, under any HTTP status, 200 included. Pure; no I/O; shared by chat and
knowledge-llm.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic_core import from_json

from opensearch_llm._errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    ContextWindowExceededError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    ResponseDecodeError,
)
from opensearch_llm._framing import is_done
from opensearch_llm._retry import parse_retry_after

# --------------------------------------------------------------------------- requests


def encode_json(payload: Mapping[str, Any]) -> bytes:
    """The request body as compact UTF-8 JSON; content that cannot be sent is refused.

    Not serializable, or nested deeper than the interpreter's recursion limit: a
    ``RequestValidationError`` naming the top-level field.
    """
    try:
        return json.dumps(
            payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()
    except _UNSENDABLE as error:
        raise RequestValidationError(
            _unserializable_field(payload),
            None,
            "JSON-serializable values (str, numbers, lists, dicts) of a reasonable depth",
            str(error),
        ) from None


_UNSENDABLE = (TypeError, ValueError, RecursionError)


def _unserializable_field(payload: Mapping[str, Any]) -> str:
    for key, value in payload.items():
        try:
            json.dumps(value, allow_nan=False)
        except _UNSENDABLE:
            return key
    return "body"


# --------------------------------------------------------------------------- responses


def decode_json(data: str | bytes) -> Any:
    """One JSON document parsed; ``ValueError`` (or ``RecursionError``) if it is not one.

    pydantic-core's parser takes a third of the standard library's time, which is most of what
    a streamed chunk costs; what it refuses and the standard library reads (a lone surrogate
    escape, nesting past 200 levels, a UTF-8 BOM) goes to the standard library.
    """
    try:
        return from_json(data)
    except ValueError:
        pass
    return json.loads(data)  # outside the except: its error must not chain pydantic-core's


def decode_response(status: int, content: bytes, headers: Mapping[str, str]) -> Any:
    """The JSON body of a response, unwrapped from the gateway envelope; raises on any error."""
    if 300 <= status < 400:
        raise redirect_error(status, headers, content)
    try:
        body = decode_json(content) if content else None
    except (ValueError, RecursionError):
        body = None
        if status < 400:
            raise ResponseDecodeError(
                f"HTTP {status}: the body is not JSON: {_snippet(content)}",
                status=status,
                body=_snippet(content),
            ) from None
    error = error_from_body(status, body, headers, content)
    if error is not None:
        raise error
    if body is None:
        raise ResponseDecodeError(f"HTTP {status}: empty body", status=status)
    return unwrap_envelope(body)


def is_envelope(body: Any) -> bool:
    """Whether ``body`` is the gateway's ``{success, code, message, data}`` envelope."""
    return isinstance(body, dict) and "success" in body and ("data" in body or "code" in body)


def unwrap_envelope(body: Any) -> Any:
    """The ``data`` of a gateway envelope, or ``body`` itself when it is not one."""
    if is_envelope(body):
        return body.get("data")
    return body


def request_id_of(body: Any, headers: Mapping[str, str] | None = None) -> str | None:
    """The request id: the body's, else the ``chatcmpl-`` id's suffix, else the header.

    The body's is looked for at its top level, in its error object and in envelope data.
    """
    if isinstance(body, dict):
        for key in ("request_id", "requestId", "RequestId"):
            if body.get(key):
                return str(body[key])
        for inner in (body.get("error"), body.get("data") if is_envelope(body) else None):
            found = request_id_of(inner) if isinstance(inner, dict) and inner is not body else None
            if found:
                return found
        chat_id = body.get("id")
        if isinstance(chat_id, str) and chat_id.startswith("chatcmpl-") and len(chat_id) > 9:
            return chat_id[9:]
    if headers is not None:
        return headers.get("x-request-id") or headers.get("x-acs-request-id") or None
    return None


# --------------------------------------------------------------------------- errors

_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}

# Codes, normalised by _code_key: lower case, no separators, the part before a dot.
_CODE_CLASSES: dict[str, type[APIStatusError]] = {
    "datainspectionfailed": ContentFilterError,
    "contentfilter": ContentFilterError,
    "contextlengthexceeded": ContextWindowExceededError,
    "invalidapikey": AuthenticationError,
    "unauthorized": AuthenticationError,
    "accessdenied": PermissionDeniedError,
    "modelnotfound": NotFoundError,
    "notfound": NotFoundError,
    "insufficientquota": RateLimitError,
    "throttling": RateLimitError,
    "ratelimitexceeded": RateLimitError,
    "ratequotaexceeded": RateLimitError,
    "internalerror": InternalServerError,
    "serviceunavailable": InternalServerError,
    "invalidparameter": BadRequestError,
    "invalidrequesterror": BadRequestError,
}

# The service's code for an over-long input is a generic invalid-parameter one; only the English
# message tells it apart (docs/service-facts.md, "Errors").
_CONTEXT_OVERFLOW = re.compile(r"range of input length|maximum context length|context window", re.I)


def error_from_body(
    status: int, body: Any, headers: Mapping[str, str] | None = None, content: bytes = b""
) -> APIStatusError | None:
    """The typed error a response stands for, or None when it is a success."""
    fields = error_fields(body)
    if fields is None:
        if status < 400:
            return None
        fields = (None, _snippet(content) if body is None else f"HTTP {status}")
    code, message = fields
    cls = error_class(status, code, message)
    return cls(
        message or "no message",
        status=status,
        code=code,
        request_id=request_id_of(body, headers),
        body=body if body is not None else _snippet(content),
        retry_after=parse_retry_after(headers),
    )


def redirect_error(status: int, headers: Mapping[str, str], content: bytes = b"") -> APIStatusError:
    """The error for a redirect, which is never followed: it would send the key elsewhere."""
    location = headers.get("location") or "an address it did not give"
    return APIStatusError(
        f"the service redirected the request to {location}; redirects are not followed "
        "(the API key would go with them): set base_url (or host) to the address to use",
        status=status,
        request_id=request_id_of(None, headers),
        body=_snippet(content),
    )


def error_fields(body: Any) -> tuple[str | None, str] | None:
    """``(code, message)`` when ``body`` is one of the error shapes, else None."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if error:
        if isinstance(error, dict):
            code = error.get("code") or error.get("type")
            return (str(code) if code else None, str(error.get("message") or ""))
        return (None, str(error))
    success = body.get("success")
    if success is False:
        return (_str_or_none(body.get("code")), str(body.get("message") or ""))
    if success is True:
        return None
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0] if isinstance(errors[0], dict) else {"message": str(errors[0])}
        messages = "; ".join(
            str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors
        )
        return (_str_or_none(first.get("code")), messages)
    if body.get("status") == "FAIL" or _is_flat_error(body):
        return (_str_or_none(body.get("code")), str(body.get("message") or ""))
    return None


def _is_flat_error(body: dict[str, Any]) -> bool:
    return (
        bool(body.get("code"))
        and "message" in body
        and "choices" not in body
        and "result" not in body
    )


def error_class(status: int, code: str | None, message: str = "") -> type[APIStatusError]:
    """The exception class for an HTTP status, a service error code and its message."""
    cls = _class_of(status, code)
    if cls is BadRequestError and _CONTEXT_OVERFLOW.search(message):
        return ContextWindowExceededError  # under 400, or under 200 with an invalid-parameter code
    return cls


def _class_of(status: int, code: str | None) -> type[APIStatusError]:
    by_code = _CODE_CLASSES.get(_code_key(code)) if code else None
    if by_code in (ContentFilterError, ContextWindowExceededError):
        return by_code
    if status >= 400:
        if status in _STATUS_CLASSES:
            return _STATUS_CLASSES[status]
        return InternalServerError if status >= 500 else APIStatusError
    # An error body under a success status: the code decides (gateway codes may be statuses).
    if by_code is not None:
        return by_code
    # Gateway codes may be HTTP statuses ("429"); other numeric codes (knowledge-llm's "1001")
    # are the service's own and say nothing about retrying.
    if code and code.isdigit() and 400 <= int(code) < 600:
        return _class_of(int(code), None)
    return APIStatusError


def _code_key(code: str) -> str:
    return re.sub(r"[^a-z0-9]", "", code.split(".")[0].lower())


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _snippet(content: bytes, limit: int = 200) -> str:
    text = content.decode("utf-8", errors="replace")
    text = re.sub(r"<[^>]+>", " ", text) if "<" in text else text
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- stream frames


def parse_event_data(data: str) -> tuple[list[Any], bool]:
    """The JSON values carried by one event's data, and whether ``[DONE]`` was among them."""
    try:
        return [decode_json(data)], False
    except (ValueError, RecursionError):
        pass
    if is_done(data):
        return [], True
    return _split_json_values(data)


def _split_json_values(text: str) -> tuple[list[Any], bool]:
    # Several values in one event: frames that came without a blank line, or back-to-back JSON.
    decoder = json.JSONDecoder()
    values: list[Any] = []
    done = False
    position, end = 0, len(text)
    while position < end:
        while position < end and text[position] in " \t\r\n":
            position += 1
        if position >= end:
            break
        if text.startswith("data:", position):
            position += 5
            continue
        if text[position : position + 6].upper() == "[DONE]":
            done, position = True, position + 6
            continue
        try:
            value, position = decoder.raw_decode(text, position)
        except (ValueError, RecursionError):
            raise ResponseDecodeError(
                f"a stream frame is not JSON: {text[:200]!r}", body=text[:200]
            ) from None
        values.append(value)
    return values, done


def event_error(value: Any) -> APIStatusError:
    """The error an ``event: error`` frame stands for, whatever shape its data has."""
    return error_from_body(500, value) or APIStatusError(str(value)[:200], status=500, body=value)
