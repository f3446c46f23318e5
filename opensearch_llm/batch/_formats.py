"""The batch file formats: request lines in, result lines out. Pure; no I/O.

Input lines are the Batch API's (``{"custom_id", "method", "url", "body"}``), or a plain
``{"messages": [...]}`` / ``{"prompt": "..."}`` line that is given a ``custom_id``. A
knowledge-llm row (online only) has the action's path as ``url``
(``/v3/openapi/apps/{app}/actions/knowledge-llm``, where a literal ``{app}`` is the run's
application) and the knowledge-llm body, or is a plain ``{"question": ..., "content": [...]}``
line (without ``messages`` or ``prompt``, which make it a chat line). Result lines are the
Batch API's: ``{"id", "custom_id", "response": {"status_code", "request_id", "body"},
"error"}``, where a failed row's ``error`` is our typed error's code and message
(docs/service-facts.md, "Batch").
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from opensearch_llm._bodies import decode_json, error_class
from opensearch_llm._config import KNOWLEDGE_PATH_TEMPLATE
from opensearch_llm._errors import (
    APIStatusError,
    BadRequestError,
    ContentFilterError,
    OpenSearchLLMError,
    RequestValidationError,
    ResponseDecodeError,
)
from opensearch_llm._knowledge import KnowledgeParams, parse_knowledge_body
from opensearch_llm._types import ChatParams

#: The endpoint of chat lines (the Batch API's ``url`` and ``endpoint``).
CHAT_URL = "/v1/chat/completions"
#: The ``url`` of plain ``question`` lines: the run's application (``app``) fills ``{app}``.
KNOWLEDGE_URL = KNOWLEDGE_PATH_TEMPLATE
#: The application part of a knowledge-llm ``url`` that stands for the run's application.
RUN_APP = "{app}"
_KNOWLEDGE_URL_PATTERN = re.compile(
    re.escape(KNOWLEDGE_PATH_TEMPLATE).replace(re.escape(RUN_APP), "([^/?#]+)")
)
#: What the online runner sends (the Batch API takes chat and embeddings, not knowledge-llm).
ONLINE_ENDPOINTS = f"{CHAT_URL} or {KNOWLEDGE_URL} (other endpoints: --via batch-api)"
#: The fields ``AsyncKnowledgeClient.answer`` names; other knowledge body keys go in ``extra_body``.
KNOWLEDGE_FIELDS = frozenset({"question", "content", *KnowledgeParams.__optional_keys__}) - {
    "extra_body",
    "extra_headers",
}
#: Keys of a plain line that are not request parameters.
PROMPT_KEYS = ("prompt", "system")
#: The parameters ``AsyncChatClient.create`` names; every other body key goes in ``extra_body``.
NAMED_PARAMS = frozenset(ChatParams.__optional_keys__) - {"extra_body", "extra_headers"}
#: Characters per token when a request's size is guessed before sending (for the tokens-per-minute
#: limit; the usage of the answer settles the difference).
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class Row:
    """One request of a batch: its ``custom_id``, endpoint ``url`` and JSON ``body``."""

    custom_id: str
    url: str
    body: dict[str, Any]


@dataclass(frozen=True)
class BadRow:
    """An input line that is not a request: reported in the output under ``custom_id``."""

    custom_id: str
    error: RequestValidationError


def default_id(number: int) -> str:
    """The ``custom_id`` of input row ``number`` (from 1) that has none: stable across runs."""
    return f"row-{number}"


def parse_line(text: str | bytes, number: int, model: str | None = None) -> Row | BadRow:
    """The row of input line ``number`` (from 1); ``model`` fills a body without one."""
    try:
        line = decode_json(text)
    except (ValueError, RecursionError) as error:
        bad = RequestValidationError(f"line {number}", _snippet(text), f"a JSON object ({error})")
        return BadRow(default_id(number), bad)
    return parse_record(line, number, model)


def parse_record(record: Any, number: int, model: str | None = None) -> Row | BadRow:
    """The row of one input record (a decoded line, or a CSV/Parquet row as a dict).

    A plain line with ``question`` and neither ``messages`` nor ``prompt`` is a knowledge-llm
    request (a knowledge-llm ``prompt`` goes in a line with a ``url``).
    """
    if not isinstance(record, dict):
        allowed = 'a JSON object: {"custom_id", "method", "url", "body"}, messages or prompt'
        return BadRow(default_id(number), RequestValidationError(f"line {number}", record, allowed))
    custom_id = _custom_id(record.get("custom_id"), number)
    try:
        if "body" in record or "url" in record:
            url, body = _request_line(record, number)
        elif "question" in record and "messages" not in record and "prompt" not in record:
            url, body = KNOWLEDGE_URL, {k: v for k, v in record.items() if k != "custom_id"}
        else:
            url, body = CHAT_URL, _plain_body(record, number)
    except RequestValidationError as error:
        return BadRow(custom_id, error)
    if model and url == CHAT_URL and not body.get("model"):
        body = {**body, "model": model}
    return Row(custom_id, url, body)


def _custom_id(value: Any, number: int) -> str:
    if value is None or value == "":
        return default_id(number)
    return str(value)


def _request_line(record: dict[str, Any], number: int) -> tuple[str, dict[str, Any]]:
    method = record.get("method", "POST")
    if method != "POST":
        raise RequestValidationError(f"line {number}: method", method, "POST")
    url, body = record.get("url", CHAT_URL), record.get("body")
    if not isinstance(url, str) or not url.startswith("/"):
        raise RequestValidationError(f"line {number}: url", url, "a path such as " + CHAT_URL)
    if not isinstance(body, dict):
        raise RequestValidationError(f"line {number}: body", body, "a JSON object")
    return url, body


def _plain_body(record: dict[str, Any], number: int) -> dict[str, Any]:
    body = {k: v for k, v in record.items() if k != "custom_id" and k not in PROMPT_KEYS}
    if "messages" in record:
        return body
    prompt = record.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        allowed = "a non-empty string, or a messages list instead"
        raise RequestValidationError(f"line {number}: prompt", prompt, allowed)
    system = record.get("system")
    messages = [{"role": "system", "content": system}] if system else []
    return {**body, "messages": [*messages, {"role": "user", "content": prompt}]}


def request_line(row: Row) -> dict[str, Any]:
    """``row`` as a Batch API input line."""
    return {"custom_id": row.custom_id, "method": "POST", "url": row.url, "body": row.body}


_MODEL_AND_MESSAGES = frozenset({"model", "messages"})


def chat_arguments(body: Mapping[str, Any]) -> dict[str, Any]:
    """``AsyncChatClient.create`` keyword arguments for a request body.

    ``stream`` is dropped (a row is answered whole); keys the client does not name go in
    ``extra_body``, so they reach the service as they are. An ``extra_body`` that is not an
    object is a ``RequestValidationError``.
    """
    if body.keys() <= _MODEL_AND_MESSAGES:  # most rows: nothing to sort
        return {"model": body.get("model"), "messages": body.get("messages")}
    named = {*_MODEL_AND_MESSAGES, *NAMED_PARAMS}
    arguments = _split_arguments({k: v for k, v in body.items() if k != "stream"}, named)
    arguments.setdefault("model", None)
    arguments.setdefault("messages", None)
    return arguments


def _split_arguments(body: Mapping[str, Any], named: Collection[str]) -> dict[str, Any]:
    """The ``named`` keys of ``body`` as arguments, the others merged into its ``extra_body``.

    An ``extra_body`` that is not an object is a ``RequestValidationError``.
    """
    given = body.get("extra_body") or {}
    if not isinstance(given, dict):
        raise RequestValidationError("body.extra_body", given, "a JSON object of parameters")
    arguments = {key: value for key, value in body.items() if key in named}
    extra = {**given, **{k: v for k, v in body.items() if k not in named and k != "extra_body"}}
    if extra:
        arguments["extra_body"] = extra
    return arguments


def knowledge_app(url: str) -> str | None:
    """The application of a knowledge-llm ``url`` (``RUN_APP``: the run's); None for others."""
    found = _KNOWLEDGE_URL_PATTERN.fullmatch(url)
    return found.group(1) if found else None


def knowledge_arguments(body: Mapping[str, Any]) -> dict[str, Any]:
    """``AsyncKnowledgeClient.answer`` keyword arguments for a knowledge-llm request body.

    ``options.stream`` is dropped (a row is answered whole); keys the client does not name
    (``options``, fields of the service this package does not know) and the body's own
    ``extra_body`` go in ``extra_body``.
    """
    body = dict(body)
    options = body.get("options")
    if isinstance(options, dict):  # anything but an object is refused by the client, naming it
        body["options"] = {key: value for key, value in options.items() if key != "stream"}
        if not body["options"]:
            del body["options"]
    return _split_arguments(body, KNOWLEDGE_FIELDS)


def refuse_batch_api_row(row: Row) -> None:
    """Refuse a row the Batch API does not take: a knowledge-llm request (online only).

    The Batch API takes chat and embeddings lines (docs/service-facts.md, "Batch"); call it
    on every row before anything is uploaded.
    """
    if knowledge_app(row.url) is not None:
        raise RequestValidationError(
            f"row {row.custom_id}: url",
            row.url,
            "a chat or embeddings url: the Batch API does not take knowledge-llm requests",
            "Send them online (--via online takes chat rows too), or in a file of their own.",
        )


def estimated_tokens(body: Mapping[str, Any]) -> int:
    """A guess of the tokens a request costs: its text, plus the most the answer may take."""
    asked = body.get("messages") or [body.get(key) for key in ("prompt", "question", "content")]
    text = json.dumps(asked, ensure_ascii=False)
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    choices = body.get("n") or 1
    answer = limit * choices if isinstance(limit, int) and isinstance(choices, int) else 0
    return math.ceil(len(text) / CHARS_PER_TOKEN) + answer


# --------------------------------------------------------------------------- results


def result_line(
    custom_id: str, completion: Mapping[str, Any], request_id: str | None = None
) -> dict[str, Any]:
    """The result line of an answered row (the Batch API's output file line).

    ``completion`` is the answer's body: a chat completion, or a knowledge-llm answer;
    ``request_id`` is the body's unless given (knowledge-llm's may come from a header).
    """
    request_id = request_id or completion.get("request_id")
    return {
        "id": request_id,
        "custom_id": custom_id,
        "response": {"status_code": 200, "request_id": request_id, "body": completion},
        "error": None,
    }


def error_line(custom_id: str, error: Exception) -> dict[str, Any]:
    """The result line of a failed row: ``error`` is our typed error's code and message.

    An error that is not ours (a bug) has the code ``unexpected_error`` and its class as type.
    """
    ours = isinstance(error, OpenSearchLLMError)
    request_id = getattr(error, "request_id", None) if ours else None
    status = getattr(error, "status", None) if ours else None
    response = None
    if isinstance(error, APIStatusError) or status is not None:
        body = error.body if isinstance(error, APIStatusError) else None
        response = {"status_code": status, "request_id": request_id, "body": body}
    kind = type(error).__name__
    message = str(error) if ours else f"{kind}: {error}"
    return {
        "id": request_id,
        "custom_id": custom_id,
        "response": response,
        "error": {"code": error_code(error), "message": message, "type": kind},
    }


#: The code of a row that failed with an error that is not one of ours.
UNEXPECTED_ERROR = "unexpected_error"


def error_code(error: Exception) -> str:
    """The service's error code, else our error class in snake case (``api_timeout_error``)."""
    if not isinstance(error, OpenSearchLLMError):
        return UNEXPECTED_ERROR
    code = getattr(error, "code", None)
    if code:
        return str(code)
    return re.sub(
        r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", type(error).__name__
    ).lower()


def line_custom_id(line: Any) -> str | None:
    """The ``custom_id`` of a result line, if it has one."""
    if isinstance(line, dict) and line.get("custom_id") is not None:
        return str(line["custom_id"])
    return None


def line_error(line: Mapping[str, Any]) -> dict[str, Any] | None:
    """A result line's error as ``{"code", "message"}``, or None when the row was answered.

    Error files name the fields ``code``/``message`` or ``error_code``/``error_message``
    (docs/service-facts.md, "Batch"); a response whose status is not 200 is an error too.
    """
    error = line.get("error")
    if isinstance(error, dict):
        code = error.get("code") or error.get("error_code") or "unknown_error"
        message = error.get("message") or error.get("error_message") or ""
        return {**error, "code": str(code), "message": str(message)}
    response = line.get("response")
    status = response.get("status_code") if isinstance(response, dict) else None
    if status == 200:
        return None
    body = response.get("body") if isinstance(response, dict) else None
    inner = body.get("error") if isinstance(body, dict) else None
    inner = inner if isinstance(inner, dict) else {}
    return {"code": str(inner.get("code") or f"http_{status}"), "message": inner.get("message", "")}


def retried_on_rerun(line: Mapping[str, Any]) -> bool:
    """Whether a rerun with ``retry_failed`` sends the row of this result line again.

    Failed rows are, except those the service refused as requests: bad parameters, input too
    long, moderation (``BadRequestError``, ``ContentFilterError``, by the line's status, code and
    message, as the core classifies a response): sent again, they are refused again. Rows our
    own validation refused are sent again: that costs no request, and what has been mended
    since (the input, a model, an application, a host) lets them through.
    """
    error = line_error(line)
    if error is None:
        return False
    status = _dict(line.get("response")).get("status_code")
    kind = error_class(status if isinstance(status, int) else 0, error["code"], error["message"])
    return not issubclass(kind, (BadRequestError, ContentFilterError))


def normalised_line(line: dict[str, Any]) -> dict[str, Any]:
    """A downloaded result line in our shape: ``error`` always ``{code, message}`` or null."""
    return {**line, "error": line_error(line)}


#: The token counts of a result line's usage that a batch adds up.
TOKEN_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


def line_usage(line: Mapping[str, Any]) -> dict[str, int]:
    """The token counts (``TOKEN_COUNTS``) of an answered result line's usage."""
    response = line.get("response")
    body = response.get("body") if isinstance(response, dict) else None
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return {}
    return {
        key: value
        for key in TOKEN_COUNTS
        if isinstance(value := usage.get(key), int) and not isinstance(value, bool)
    }


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def result_columns(line: Mapping[str, Any]) -> dict[str, Any]:
    """A result line as flat columns (CSV, Parquet, Ray): the answer's text, usage and error."""
    error = line_error(line)
    response = _dict(line.get("response"))
    body = _dict(response.get("body"))
    choices = body.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    choice = _dict(first) if error is None else {}
    message = _dict(choice.get("message"))
    usage = line_usage(line)
    knowledge = error is None and "choices" not in body and "result" in body
    return {
        "custom_id": line.get("custom_id"),
        "status_code": response.get("status_code"),
        "request_id": response.get("request_id") or line.get("id"),
        "content": _knowledge_answer(body) if knowledge else message.get("content"),
        "reasoning_content": message.get("reasoning_content"),
        "tool_calls": json.dumps(message["tool_calls"]) if message.get("tool_calls") else None,
        "finish_reason": choice.get("finish_reason"),
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "total_tokens": usage.get("total_tokens"),
        "error_code": error["code"] if error else None,
        "error_message": error["message"] if error else None,
    }


def _knowledge_answer(body: Mapping[str, Any]) -> str | None:
    """The text of a knowledge-llm answer's ``result.data``; None if it has none."""
    try:
        return parse_knowledge_body(body).answer
    except ResponseDecodeError:
        return None


#: The columns ``result_columns`` makes, in order, and those of them that hold integers.
RESULT_COLUMNS = tuple(result_columns({}).keys())
INTEGER_COLUMNS = frozenset({"status_code", "prompt_tokens", "completion_tokens", "total_tokens"})


def _snippet(text: str | bytes, limit: int = 80) -> str:
    shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
