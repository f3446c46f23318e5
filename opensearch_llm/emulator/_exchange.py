"""One request being answered, and the routes (dialects) that answer it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opensearch_llm.emulator._chat import ChunkWriter, completion_body, make_plan
from opensearch_llm.emulator._errors import (
    ApiError,
    ErrorStyle,
    envelope_error,
    knowledge_error,
    openai_error,
)
from opensearch_llm.emulator._knowledge import (
    blocked_error,
    knowledge_body,
    knowledge_frames,
    parse_knowledge_request,
)
from opensearch_llm.emulator._qwen import completion_with_extras, frames_with_extras
from opensearch_llm.emulator._response import EmuResponse, json_response, sse_response
from opensearch_llm.emulator._validate import parse_chat_request

INVALID_API_KEY = ApiError(401, "invalid_api_key", "Incorrect API key provided.")


@dataclass(frozen=True)
class ReplyOptions:
    """How a fault bends an otherwise normal reply."""

    content_filter: bool = False
    cumulative: bool = False


NORMAL = ReplyOptions()


@dataclass(frozen=True)
class Exchange:
    """A request as the handlers and faults see it."""

    request_id: str
    route: Route
    headers: dict[str, str]
    body: Any
    api_key: str | None
    started: float
    #: For routes that answer more than POST or read the raw body (files, batches).
    method: str = "POST"
    path: str = ""
    raw: bytes = b""
    #: The emulator answering (routes that keep state, such as batches, keep it per emulator).
    emulator: Any = None

    def error(
        self, error: ApiError, status: int | None = None, extra: Sequence[tuple[bytes, bytes]] = ()
    ) -> EmuResponse:
        """``error`` in this route's shape, with its status (or ``status``)."""
        shaped = self.route.error_style(error, self.request_id)
        return json_response(status or error.status, self.request_id, shaped, extra)

    def normal(self, options: ReplyOptions = NORMAL) -> EmuResponse:
        """The service's answer: 401 without a valid key, else the route's reply."""
        if not self._authorized():
            return self.error(INVALID_API_KEY)
        return self.route.handler(self, options)

    def _authorized(self) -> bool:
        scheme, _, key = self.headers.get("authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return False
        return self.api_key is None or key == self.api_key


Handler = Callable[[Exchange, ReplyOptions], EmuResponse]


@dataclass(frozen=True)
class Route:
    """A dialect: how it answers and how it shapes errors."""

    name: str
    handler: Handler
    error_style: ErrorStyle
    methods: frozenset[str] = frozenset({"POST"})


def _chat_handler(envelope: bool) -> Handler:
    def handle(exchange: Exchange, options: ReplyOptions) -> EmuResponse:
        request = parse_chat_request(exchange.body)
        if isinstance(request, ApiError):
            return exchange.error(request)
        rid, created = exchange.request_id, int(exchange.started)
        plan = make_plan(request, rid, content_filter=options.content_filter)
        emu, sent = exchange.emulator, exchange.body  # Qwen's speech and cache usage: _qwen
        if request.stream:
            writer = ChunkWriter(request, rid, created, envelope)
            frames = writer.frames(plan, request.include_usage)
            return sse_response(rid, frames_with_extras(emu, sent, frames, envelope))
        body = completion_with_extras(emu, sent, completion_body(plan, request, rid, created))
        return json_response(200, rid, _envelope(body) if envelope else body)

    return handle


def _envelope(data: Any) -> dict[str, Any]:
    return {"success": True, "code": "200", "message": "successful", "data": data}


def _knowledge_handler(exchange: Exchange, options: ReplyOptions) -> EmuResponse:
    request = parse_knowledge_request(exchange.body)
    if isinstance(request, ApiError):
        return exchange.error(request)
    if request.blocked() or options.content_filter:
        return exchange.error(blocked_error())
    rid, answer = exchange.request_id, request.answer()
    latency = round(time.time() - exchange.started, 6)
    if request.stream:
        return sse_response(rid, knowledge_frames(rid, answer, latency, options.cumulative))
    return json_response(200, rid, knowledge_body(rid, answer, latency))


COMPATIBLE = Route("compatible", _chat_handler(envelope=False), openai_error)
GATEWAY = Route("gateway", _chat_handler(envelope=True), envelope_error)
KNOWLEDGE = Route("knowledge", _knowledge_handler, knowledge_error)

CHAT_ROUTES = {
    "/compatible-mode/v1/chat/completions": COMPATIBLE,
    "/api/v1/chat/completions": GATEWAY,
}
KNOWLEDGE_PREFIX = "/v3/openapi/apps/"
KNOWLEDGE_SUFFIX = "/actions/knowledge-llm"


def find_route(path: str) -> Route | None:
    """The route serving ``path``, if any."""
    route = CHAT_ROUTES.get(path.rstrip("/"))
    if route is not None:
        return route
    if path.startswith(KNOWLEDGE_PREFIX) and path.endswith(KNOWLEDGE_SUFFIX):
        app = path[len(KNOWLEDGE_PREFIX) : -len(KNOWLEDGE_SUFFIX)]
        return KNOWLEDGE if app and "/" not in app else None
    return None
