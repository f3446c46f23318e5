"""Scripted faults: a table of handlers, each turning an exchange into a faulty response."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl

from opensearch_llm.emulator._chat import DONE_FRAME
from opensearch_llm.emulator._errors import ApiError, flat_error
from opensearch_llm.emulator._exchange import Exchange, ReplyOptions
from opensearch_llm.emulator._response import (
    HTML_TYPE,
    RESET,
    Delay,
    EmuResponse,
    Piece,
    dumps,
    head,
    json_response,
)
from opensearch_llm.emulator._validate import FAULT_MODEL_PREFIX

FAULT_HEADER = "x-emulator-fault"
#: Fault parameters: header name -> ``Fault`` field.
PARAM_HEADERS = {
    "x-emulator-fault-after": "after",
    "x-emulator-delay": "delay",
    "x-emulator-retry-after": "retry_after",
    "x-emulator-status": "status",
}
DEFAULT_DELAYS = {"slow-first-byte": 1.0, "stall": 10.0, "trickle": 0.1}


class FaultError(ValueError):
    """An unknown fault name or a bad fault parameter."""


@dataclass(frozen=True)
class Fault:
    """A fault and its parameters.

    ``after``: frames (or, for a non-streamed body, half of it) sent before a mid-body fault;
    ``delay``: seconds of a slow first byte or a stall; ``retry_after``: the 429
    ``Retry-After``; ``status``: overrides the HTTP status of an error fault.
    """

    name: str
    after: int = 2
    delay: float | None = None
    retry_after: float = 1.0
    status: int | None = None

    def __post_init__(self) -> None:
        name = self.name.strip().lower().replace("_", "-")
        if name not in FAULTS:
            raise FaultError(f"Unknown fault {self.name!r}; known faults: {', '.join(FAULTS)}")
        object.__setattr__(self, "name", name)
        if self.after < 0 or (self.delay is not None and self.delay < 0) or self.retry_after < 0:
            raise FaultError(f"Fault parameters must not be negative: {self!r}")

    @property
    def seconds(self) -> float:
        """The delay of this fault (its default when not given)."""
        return self.delay if self.delay is not None else DEFAULT_DELAYS.get(self.name, 1.0)


FaultLike = str | Fault


def as_fault(fault: FaultLike) -> Fault:
    """``fault`` as a :class:`Fault` (a name gets default parameters)."""
    return fault if isinstance(fault, Fault) else Fault(fault)


def fault_from_headers(headers: Mapping[str, str]) -> Fault | None:
    """The fault ``X-Emulator-Fault`` asks for, with its ``X-Emulator-*`` parameters."""
    name = headers.get(FAULT_HEADER)
    if not name:
        return None
    params = {field: headers[key] for key, field in PARAM_HEADERS.items() if key in headers}
    return _make(name, params)


def fault_from_model(model: Any) -> Fault | None:
    """The fault a ``fault/<name>[?after=N&delay=S&retry_after=S&status=N]`` model asks for."""
    if not isinstance(model, str) or not model.startswith(FAULT_MODEL_PREFIX):
        return None
    name, _, query = model[len(FAULT_MODEL_PREFIX) :].partition("?")
    return _make(name, dict(parse_qsl(query)))


_CASTS: dict[str, Callable[[str], Any]] = {
    "after": int,
    "delay": float,
    "retry_after": float,
    "status": int,
}


def _make(name: str, params: Mapping[str, str]) -> Fault:
    try:
        values = {key: _CASTS[key](value) for key, value in params.items() if key in _CASTS}
    except ValueError as exc:
        raise FaultError(f"Bad fault parameter for {name!r}: {exc}") from None
    return Fault(name, **values)


FaultHandler = Callable[[Exchange, Fault], EmuResponse]


def _status_fault(
    status: int, code: str, message: str, *, retry_after: bool = False
) -> FaultHandler:
    def handler(exchange: Exchange, fault: Fault) -> EmuResponse:
        error = ApiError(fault.status or status, code, message, type=code)
        extra = [(b"retry-after", _seconds(fault.retry_after))] if retry_after else []
        return exchange.error(error, extra=extra)

    return handler


def _seconds(value: float) -> bytes:
    return (str(int(value)) if value == int(value) else str(value)).encode()


_HTML = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


def _html(exchange: Exchange, fault: Fault) -> EmuResponse:
    headers = head(exchange.request_id, HTML_TYPE, [(b"content-length", str(len(_HTML)).encode())])
    return EmuResponse(fault.status or 502, headers, [_HTML])


_ERROR_200 = ApiError(
    200, "internal_error", "An internal error occurred (reported under HTTP 200)."
)


def _error_200(exchange: Exchange, fault: Fault) -> EmuResponse:
    return exchange.error(_ERROR_200, fault.status or 200)


def _flat(exchange: Exchange, fault: Fault) -> EmuResponse:
    error = ApiError(400, "InvalidParameter", "The request is invalid (DashScope native error).")
    body = flat_error(error, exchange.request_id)
    return json_response(fault.status or 400, exchange.request_id, body)


_INPUT_TOO_LONG = ApiError(400, "InvalidParameter", "Range of input length should be [1, 30720]")


def _input_too_long(exchange: Exchange, fault: Fault) -> EmuResponse:
    """DashScope's over-long-input error, flat and under HTTP 200 as the native API sends it."""
    body = flat_error(_INPUT_TOO_LONG, exchange.request_id)
    return json_response(fault.status or 200, exchange.request_id, body)


REDIRECT_LOCATION = "https://moved.example.com/"


def _redirect(exchange: Exchange, fault: Fault) -> EmuResponse:
    location = (b"location", REDIRECT_LOCATION.encode())
    headers = head(exchange.request_id, HTML_TYPE, [location, (b"content-length", b"0")])
    return EmuResponse(fault.status or 307, headers, [])


def _reset(exchange: Exchange, fault: Fault) -> EmuResponse:
    return EmuResponse(0, [], [], prelude=[RESET])


Transform = Callable[[Exchange, Fault, EmuResponse], EmuResponse]


def _on_success(transform: Transform, options: ReplyOptions | None = None) -> FaultHandler:
    """A fault that bends a successful reply (errors pass through unchanged)."""

    def handler(exchange: Exchange, fault: Fault) -> EmuResponse:
        response = exchange.normal(options or ReplyOptions())
        return transform(exchange, fault, response) if response.status == 200 else response

    return handler


def _half_body(response: EmuResponse) -> bytes:
    body = b"".join(piece for piece in response.body if isinstance(piece, bytes))
    return body[: len(body) // 2]


def _cut(response: EmuResponse, after: int, tail: list[Piece]) -> EmuResponse:
    """The first ``after`` frames (half of a non-streamed body), then ``tail``."""
    if response.streamed:
        return replace(response, body=[*response.body[:after], *tail])
    return replace(response, body=[_half_body(response), *tail])


def _slow_first_byte(exchange: Exchange, fault: Fault) -> EmuResponse:
    response = exchange.normal()
    return replace(response, prelude=[Delay(fault.seconds), *response.prelude])


def _reset_mid_body(exchange: Exchange, fault: Fault, response: EmuResponse) -> EmuResponse:
    return _cut(response, fault.after, [RESET])


def _stall(exchange: Exchange, fault: Fault, response: EmuResponse) -> EmuResponse:
    return _cut(response, fault.after, [Delay(fault.seconds), RESET])


_STREAM_ERROR = ApiError(500, "internal_error", "The stream failed on the server side.")


def _error_frame(exchange: Exchange, fault: Fault, response: EmuResponse) -> EmuResponse:
    if not response.streamed:
        return _error_200(exchange, fault)
    frame = b"data: " + dumps(exchange.route.error_style(_STREAM_ERROR, exchange.request_id))
    return replace(response, body=[*response.body[: fault.after], frame + b"\n\n"])


def _echo_auth(exchange: Exchange, fault: Fault) -> EmuResponse:
    """An error that quotes the request's ``Authorization`` header (a careless server)."""
    echoed = exchange.headers.get("authorization", "")
    error = ApiError(fault.status or 401, "invalid_api_key", f"Incorrect API key: {echoed}")
    response = exchange.normal()
    if not response.streamed:
        return exchange.error(error, fault.status or 401)
    frame = b"data: " + dumps(exchange.route.error_style(error, exchange.request_id))
    return replace(response, body=[*response.body[: fault.after], frame + b"\n\n"])


def _keep_alive_frames(exchange: Exchange, fault: Fault, response: EmuResponse) -> EmuResponse:
    """A ``data: {}`` frame (no choices, no data) before every frame of a stream."""
    if not response.streamed:
        return response
    pieces: list[Piece] = []
    for piece in response.body:
        pieces += [b"data: {}\n\n", piece] if isinstance(piece, bytes) else [piece]
    return replace(response, body=pieces)


def _no_done(exchange: Exchange, fault: Fault, response: EmuResponse) -> EmuResponse:
    return replace(response, body=[piece for piece in response.body if piece != DONE_FRAME])


def _malformed(exchange: Exchange, fault: Fault, response: EmuResponse) -> EmuResponse:
    if response.streamed:
        broken = (
            b'data: {"id":"chatcmpl-' + exchange.request_id.encode() + b'","choices":[{"delta":\n\n'
        )
        body = response.body
        return replace(response, body=[*body[: fault.after], broken, *body[fault.after :]])
    text = _half_body(response)
    headers = [(k, v) for k, v in response.headers if k != b"content-length"]
    headers.append((b"content-length", str(len(text)).encode()))
    return replace(response, headers=headers, body=[text])


def _no_space(exchange: Exchange, fault: Fault, response: EmuResponse) -> EmuResponse:
    body = [p.replace(b"data: ", b"data:", 1) if isinstance(p, bytes) else p for p in response.body]
    return replace(response, body=body)


def _trickle(exchange: Exchange, fault: Fault, response: EmuResponse) -> EmuResponse:
    """Every frame (a non-streamed body: every byte) ``delay`` seconds after the one before."""
    pieces: list[Piece] = []
    for piece in response.body:
        if not isinstance(piece, bytes):
            pieces.append(piece)
            continue
        parts = [piece] if response.streamed else [piece[i : i + 1] for i in range(len(piece))]
        for part in parts:
            pieces += [Delay(fault.seconds), part]
    return replace(response, body=pieces)


def _unchanged(exchange: Exchange, fault: Fault, response: EmuResponse) -> EmuResponse:
    return response


FAULTS: dict[str, FaultHandler] = {
    "429": _status_fault(
        429,
        "limit_requests",
        "Requests rate limit exceeded, please try again later.",
        retry_after=True,
    ),
    "insufficient-quota": _status_fault(
        429,
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    "500": _status_fault(
        500, "internal_error", "An internal error has occurred, please try again later."
    ),
    "502": _status_fault(502, "bad_gateway", "Bad gateway."),
    "503": _status_fault(
        503, "service_unavailable", "The engine is currently overloaded, please try again later."
    ),
    "504": _status_fault(504, "gateway_timeout", "Gateway timeout."),
    "data-inspection-failed": _status_fault(
        400, "data_inspection_failed", "Input or output data may contain inappropriate content."
    ),
    "html": _html,
    "error-200": _error_200,
    "success-false": _error_200,
    "knowledge-errors": _error_200,
    "flat-error": _flat,
    "input-too-long": _input_too_long,
    "redirect": _redirect,
    "reset": _reset,
    "echo-auth": _echo_auth,
    "reset-mid-stream": _on_success(_reset_mid_body),
    "error-frame": _on_success(_error_frame),
    "no-done": _on_success(_no_done),
    "keep-alive-frames": _on_success(_keep_alive_frames),
    "slow-first-byte": _slow_first_byte,
    "stall": _on_success(_stall),
    "trickle": _on_success(_trickle),
    "malformed-json": _on_success(_malformed),
    "content-filter": _on_success(_unchanged, ReplyOptions(content_filter=True)),
    "knowledge-cumulative": _on_success(_unchanged, ReplyOptions(cumulative=True)),
    "sse-no-space": _on_success(_no_space),
}
