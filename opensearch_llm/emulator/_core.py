"""The emulator's sans-IO core: a request (method, path, headers, body) in, a response out."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opensearch_llm.emulator._batches import find_batch_route
from opensearch_llm.emulator._embeddings import embedding_route
from opensearch_llm.emulator._errors import ApiError, openai_error
from opensearch_llm.emulator._exchange import Exchange, find_route
from opensearch_llm.emulator._faults import (
    FAULTS,
    Fault,
    FaultError,
    FaultLike,
    as_fault,
    fault_from_headers,
    fault_from_model,
)
from opensearch_llm.emulator._response import EmuResponse, RawHeaders, json_response

if TYPE_CHECKING:
    import httpx

    from opensearch_llm.emulator._asgi import EmulatorApp

_REDACTED = "<redacted>"
_REQUEST_ID_PREFIX = "e0000000-0000-4000-8000-"


@dataclass(frozen=True)
class RecordedRequest:
    """A received request; ``authorization`` is redacted, ``json`` is the parsed body."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    body: bytes


class Emulator:
    """The local service: compatible mode, the AI gateway and knowledge-llm, with scripted faults.

    ``api_key``: ``None`` accepts any non-empty Bearer key; else only that key.
    ``fault_rate``: fault name -> probability per request (drawn with ``seed``).
    ``max_recorded``: how many requests ``requests`` keeps (``request_count`` counts all).

    Example::

        emu = Emulator()
        client = httpx.Client(transport=emu.transport(), base_url="http://emulator.local")
        emu.script_faults(["503", "503"])   # the next two requests fail, then all succeed
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        fault_rate: Mapping[str, float] | None = None,
        seed: int | None = None,
        max_recorded: int | None = 10_000,
    ) -> None:
        self.api_key = api_key
        self._fault_rate = _validated_rates(fault_rate or {})
        self._seed = seed
        self._log: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self._lock = threading.Lock()
        self._app: EmulatorApp | None = None
        self._script: deque[Fault | None] = deque()
        self._count = 0
        self._connections = 0
        self._random = random.Random(seed)

    def reset(self) -> None:
        """Forget recorded requests and scripted faults; restart request ids and the fault dice."""
        with self._lock:
            self._log.clear()
            self._script.clear()
            self._count = 0
            self._connections = 0
            self._random = random.Random(self._seed)

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far (the last ``max_recorded`` of them), oldest first."""
        return list(self._log)

    @property
    def request_count(self) -> int:
        """How many requests arrived since the last ``reset()``."""
        return self._count

    @property
    def connection_count(self) -> int:
        """How many TCP connections a served emulator accepted since the last ``reset()``."""
        return self._connections

    def connection_opened(self) -> None:
        """Count one accepted connection (called by the server)."""
        with self._lock:
            self._connections += 1

    def script_faults(self, faults: Iterable[FaultLike | None]) -> None:
        """Faults for the next requests, one each, in order (``None``: that request succeeds)."""
        scripted = [None if fault is None else as_fault(fault) for fault in faults]
        with self._lock:
            self._script.extend(scripted)

    @property
    def app(self) -> EmulatorApp:
        """The ASGI 3 application."""
        if self._app is None:
            from opensearch_llm.emulator._asgi import EmulatorApp

            self._app = EmulatorApp(self)
        return self._app

    def transport(self) -> httpx.BaseTransport:
        """An in-process sync httpx transport (no sockets)."""
        from opensearch_llm.emulator._transport import EmulatorTransport

        return EmulatorTransport(self)

    def async_transport(self) -> httpx.AsyncBaseTransport:
        """An in-process async httpx transport (no sockets)."""
        from opensearch_llm.emulator._transport import AsyncEmulatorTransport

        return AsyncEmulatorTransport(self)

    def handle(self, method: str, path: str, headers: RawHeaders, body: bytes) -> EmuResponse:
        """Answer one request: the pure core every shell calls."""
        with self._lock:
            self._count += 1
            request_id = _REQUEST_ID_PREFIX + f"{self._count:012x}"
        names = _header_dict(headers)
        parsed = _parse_json(body)
        self._record(method, path, names, parsed, body)
        try:
            return self._answer(request_id, method, path, names, parsed, body)
        except Exception as exc:  # an emulator bug must still be an HTTP answer
            error = ApiError(500, "internal_error", f"Emulator error: {exc!r}")
            return json_response(500, request_id, openai_error(error, request_id))

    def _answer(
        self,
        request_id: str,
        method: str,
        path: str,
        headers: dict[str, str],
        body: Any,
        raw: bytes = b"",
    ) -> EmuResponse:
        route = find_route(path) or find_batch_route(path) or embedding_route(path)
        if route is None:
            error = ApiError(404, "not_found", f"No such endpoint: {method} {path}")
            return json_response(404, request_id, openai_error(error, request_id))
        exchange = Exchange(
            request_id, route, headers, body, self.api_key, time.time(), method, path, raw, self
        )
        if method not in route.methods:
            allowed = " or ".join(sorted(route.methods))
            return exchange.error(
                ApiError(405, "method_not_allowed", f"Use {allowed}, not {method}.")
            )
        try:
            fault = self._choose_fault(headers, body)
        except FaultError as exc:
            return exchange.error(ApiError(400, "invalid_fault", str(exc)))
        if fault is None:
            return exchange.normal()
        return FAULTS[fault.name](exchange, fault)

    def _choose_fault(self, headers: Mapping[str, str], body: Any) -> Fault | None:
        model = body.get("model") if isinstance(body, dict) else None
        chosen = fault_from_headers(headers) or fault_from_model(model)
        if chosen is not None:
            return chosen
        with self._lock:
            if self._script:
                return self._script.popleft()
            return self._random_fault()

    def _random_fault(self) -> Fault | None:
        if not self._fault_rate:
            return None
        draw = self._random.random()
        for name, rate in self._fault_rate.items():
            if draw < rate:
                return Fault(name)
            draw -= rate
        return None

    def _record(
        self, method: str, path: str, headers: dict[str, str], parsed: Any, body: bytes
    ) -> None:
        shown = {**headers, "authorization": _REDACTED} if "authorization" in headers else headers
        self._log.append(RecordedRequest(method, path, shown, parsed, body))


def _header_dict(headers: RawHeaders) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in headers}


def _parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _validated_rates(rates: Mapping[str, float]) -> dict[str, float]:
    checked = {Fault(name).name: float(rate) for name, rate in rates.items()}
    if any(rate < 0 for rate in checked.values()) or sum(checked.values()) > 1:
        raise ValueError("fault_rate values must be >= 0 and add up to at most 1")
    return checked
