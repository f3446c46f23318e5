"""What the framework adapters share: pure helpers, the facts they need, and their client cache.

This is the supported surface for ``langchain_opensearch_llm`` and ``llama_index_opensearch_llm``
(pinned by ``tests/unit/test_adapters_surface.py``): besides the public ``opensearch_llm`` and
``opensearch_llm.knowledge`` modules, the adapters import from the core only what ``__all__``
lists here. Everything that is the same in both frameworks (parameter splitting, the thinking
policy for forced tool calls, system-message merging, tool-call wire dicts, usage counts, which
choice is streamed) is written once below, so a fix here fixes both; the adapters keep only the
conversions between these wire dicts and their framework's objects.

Everything is pure except ``ClientCache``, which holds the adapters' live core clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, Protocol, TypeAlias, TypeVar

from pydantic import AfterValidator

from opensearch_llm._config import (
    API_KEY_ENV_VARS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MODEL,
    resolve_api_key,
    resolve_base_url,
)
from opensearch_llm._errors import RequestValidationError
from opensearch_llm._knowledge import build_knowledge_request, resolve_app, resolve_host
from opensearch_llm._profiles import get_profile, thinking_enabled
from opensearch_llm._validate import CHAT_PARAMS, TOOL_CHOICE_STRINGS, validate_params
from opensearch_llm.knowledge import KnowledgeAuth, KnowledgeParams, _credentials

if TYPE_CHECKING:
    import httpx

__all__ = [
    "API_KEY_ENV_VARS",
    "CHAT_OPTION_NAMES",
    "CHAT_PARAMS",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MODEL",
    "KNOWLEDGE_OPTION_NAMES",
    "AsyncHttpClient",
    "ClientCache",
    "OwnsClients",
    "SyncHttpClient",
    "check_knowledge_settings",
    "first_choice",
    "forced_tool_settings",
    "knowledge_passages",
    "legacy_tool_call",
    "merge_system_messages",
    "new_tool_call_id",
    "parse_tool_arguments",
    "resolve_api_key",
    "resolve_base_url",
    "sent_value",
    "split_params",
    "usage_counts",
    "validate_params",
    "wire_tool_call",
    "wire_tool_choice",
]

# --------------------------------------------------------------------------- client options

#: The connection settings every client takes (the adapters' fields of the same names).
_CONNECTION_OPTION_NAMES: tuple[str, ...] = (
    "api_key",
    "timeout",
    "connect_timeout",
    "stream_idle_timeout",
    "stream_timeout",
    "max_retries",
    "default_headers",
    "max_response_bytes",
    "max_event_bytes",
    "max_connections",
)
#: ``ChatClient``/``AsyncChatClient`` keyword arguments an adapter copies from its settings.
CHAT_OPTION_NAMES: tuple[str, ...] = (*_CONNECTION_OPTION_NAMES, "base_url", "region")
#: ``KnowledgeClient``/``AsyncKnowledgeClient`` keyword arguments (besides ``auth``).
KNOWLEDGE_OPTION_NAMES: tuple[str, ...] = (*_CONNECTION_OPTION_NAMES, "host", "app")


def _instance_of(class_name: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        # httpx is imported here, not with the adapter: a given client has loaded it already.
        import httpx

        if value is not None and not isinstance(value, getattr(httpx, class_name)):
            raise ValueError(f"expected an httpx.{class_name} or None, got {type(value).__name__}")
        return value

    return check


#: Field types of an injected ``httpx.Client`` / ``httpx.AsyncClient`` (or None) that do not
#: import httpx with the adapter's class (type checkers see the httpx types).
if TYPE_CHECKING:
    SyncHttpClient: TypeAlias = httpx.Client | None
    AsyncHttpClient: TypeAlias = httpx.AsyncClient | None
else:
    SyncHttpClient = Annotated[Any, AfterValidator(_instance_of("Client"))]
    AsyncHttpClient = Annotated[Any, AfterValidator(_instance_of("AsyncClient"))]


# --------------------------------------------------------------------------- client cache


class _Closes(Protocol):
    def close(self) -> None: ...


class _AsyncCloses(Protocol):
    async def aclose(self) -> None: ...


SyncClientT = TypeVar("SyncClientT", bound=_Closes)
AsyncClientT = TypeVar("AsyncClientT", bound=_AsyncCloses)


class ClientCache(Generic[SyncClientT, AsyncClientT]):
    """An adapter's core clients: one sync client, and one async client per event loop.

    Made on first use (``sync(make)``, ``async_(make)``) and reused, from any thread. Pooled
    async connections belong to the event loop that opened them (``asyncio.run``, notebooks,
    test runners and threads each bring their own), so each running loop gets its own client;
    loops that are still running are never handed another loop's client. ``aclose()`` closes
    the running loop's client, and tries to close those left behind by loops that have ended
    (errors are ignored: a closed loop cannot run the closing any more); such clients are also
    dropped when the next loop makes its client, for the garbage collector to release. Call
    ``aclose()`` before a loop ends to release its connections at once.

    An injected ``httpx.AsyncClient`` is shared by the async clients of every loop and never
    closed by them: inject one only where a single loop uses it (or with a transport that
    keeps no pool, such as the emulator's). Copies and unpickled copies start empty.
    """

    __slots__ = ("_async", "_lock", "_sync")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: SyncClientT | None = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncClientT] = (
            weakref.WeakKeyDictionary()
        )

    def sync(self, make: Callable[[], SyncClientT]) -> SyncClientT:
        """The sync client, made with ``make`` the first time."""
        client = self._sync
        if client is not None:
            return client
        with self._lock:
            if self._sync is None:
                self._sync = make()
            return self._sync

    def async_(self, make: Callable[[], AsyncClientT]) -> AsyncClientT:
        """The running loop's async client, made with ``make`` the first time in that loop."""
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is not None:
            return client
        with self._lock:
            client = self._async.get(loop)
            if client is None:
                self._forget_ended_loops()
                client = self._async[loop] = make()
            return client

    def _forget_ended_loops(self) -> None:
        # A client's open connections refer to their loop, which would keep the weak key (and
        # the sockets) alive: drop the clients of closed loops, which can never be used again.
        for loop in [loop for loop in self._async if loop.is_closed()]:
            del self._async[loop]

    def forget(self) -> None:
        """Drop every client: the settings they were made from changed.

        The next use makes new ones; dropped clients release their connections when collected.
        """
        with self._lock:
            self._sync = None
            self._async = weakref.WeakKeyDictionary()

    def close(self) -> None:
        """Close the sync client (an injected httpx client is left open)."""
        with self._lock:
            client, self._sync = self._sync, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the running loop's async client, and those of loops that have ended."""
        loop = asyncio.get_running_loop()
        with self._lock:
            current = self._async.pop(loop, None)
            ended = [other for other in self._async if other.is_closed()]
            left_behind = [self._async.pop(other) for other in ended]
        for client in left_behind:
            await _aclose_quietly(client)
        if current is not None:
            await current.aclose()

    def __copy__(self) -> ClientCache[SyncClientT, AsyncClientT]:
        return ClientCache()

    def __deepcopy__(self, memo: dict[int, Any]) -> ClientCache[SyncClientT, AsyncClientT]:
        return ClientCache()

    def __reduce__(self) -> tuple[type[ClientCache[Any, Any]], tuple[()]]:
        return (ClientCache, ())


class OwnsClients:
    """Copies with clients of their own, and settings that take effect after first use.

    For an adapter model whose core clients live in ``_clients``: a copy (``copy.copy``,
    ``copy.deepcopy``, ``model_copy``) gets clients of its own but shares an injected httpx
    client, and setting a field in ``CLIENT_FIELDS`` after use drops the clients, so that the
    next call sends with the new setting.
    """

    #: The fields the core clients are made from.
    CLIENT_FIELDS: ClassVar[frozenset[str]]
    _clients: ClientCache[Any, Any]

    def __copy__(self) -> Any:
        clone = super().__copy__()  # type: ignore[misc]
        clone._clients = ClientCache()  # the shallow copy would share the live clients
        return clone

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        memo = {} if memo is None else memo
        for name in self.CLIENT_FIELDS:
            value = getattr(self, name, None)
            if type(value).__module__.startswith("httpx"):
                memo[id(value)] = value  # shared, never copied: it holds sockets and locks
        return super().__deepcopy__(memo)  # type: ignore[misc]

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in self.CLIENT_FIELDS:
            self._clients.forget()


async def _aclose_quietly(client: _AsyncCloses) -> None:
    # The client's connections belong to a loop that is closed: closing them may fail there,
    # and nothing more can be done for them.
    with contextlib.suppress(Exception):
        await client.aclose()


# --------------------------------------------------------------------------- request parameters


def split_params(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """The core's keyword arguments from parameter layers (model fields, then per-call ones).

    A later layer wins, and its ``None`` unsets the name; ``extra_body`` dicts are merged (a
    later key wins); names the core does not take (``CHAT_PARAMS``) go into ``extra_body``,
    so that a service field this package does not know yet can still be sent.

    Example: ``split_params({"top_k": 5, "x": 1}, {"extra_body": {"y": 2}})`` is
    ``{"top_k": 5, "extra_body": {"x": 1, "y": 2}}``.
    """
    params: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for layer in layers:
        for name, value in layer.items():
            if name == "extra_body":
                extra.update(_extra_body(value))
            elif name in CHAT_PARAMS:
                params[name] = value
            else:
                extra[name] = value
    params = {name: value for name, value in params.items() if value is not None}
    extra = {name: value for name, value in extra.items() if value is not None}
    if extra:
        params["extra_body"] = extra
    return params


def _extra_body(value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RequestValidationError("extra_body", value, "a JSON object (dict)")
    return value


def sent_value(params: Mapping[str, Any], name: str) -> Any:
    """The value of ``name`` the request body will carry (``extra_body`` wins, as in the core)."""
    extra = params.get("extra_body") or {}
    return extra[name] if name in extra else params.get(name)


def forced_tool_settings(model: str, enable_thinking: bool | None, choice: Any) -> dict[str, Any]:
    """The parameters that make ``model`` call a tool (``choice``: ``required`` or a function).

    The service rejects a forced ``tool_choice`` while the model thinks (design, "Facts"), so:
    a model that does not think gets ``choice``; a hybrid model that would think by default
    (``enable_thinking`` unset) also gets ``enable_thinking: false``; a model that thinks anyway
    gets ``tool_choice: "auto"`` (it may then answer without calling the tool).
    ``enable_thinking`` is the value the request sends (see ``sent_value``).
    """
    profile = get_profile(model)
    if not thinking_enabled(profile, enable_thinking):
        return {"tool_choice": choice}
    if profile.thinking == "hybrid" and enable_thinking is None:
        return {"tool_choice": choice, "enable_thinking": False}
    return {"tool_choice": "auto"}


def wire_tool_choice(choice: str | Mapping[str, Any]) -> Any:
    """The wire ``tool_choice``: ``auto``/``none``/``required`` as they are, a name as a function.

    ``"weather"``, ``{"name": "weather"}`` and ``{"type": "function", "function": {"name":
    "weather"}}`` all become the last form.
    """
    if isinstance(choice, str):
        return choice if choice in TOOL_CHOICE_STRINGS else _named_choice(choice)
    if not isinstance(choice.get("function"), Mapping) and isinstance(choice.get("name"), str):
        return _named_choice(choice["name"])
    return dict(choice)


def _named_choice(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


# --------------------------------------------------------------------------- request messages


def merge_system_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` with every system message merged into one, first (the list is not changed).

    The service takes a system message only as ``messages[0]`` (api-docs 000), while agents
    and memories may add one later; the texts are joined with a blank line, in order.
    """
    systems = [message for message in messages if message.get("role") == "system"]
    if not systems or (len(systems) == 1 and messages[0] is systems[0]):
        return messages
    text = "\n\n".join(str(message["content"]) for message in systems if message.get("content"))
    rest = [message for message in messages if message.get("role") != "system"]
    return [{"role": "system", "content": text}, *rest]


def wire_tool_call(call_id: str | None, name: str | None, arguments: Any) -> dict[str, Any]:
    """A tool call of an assistant message in the history, as the service takes it.

    ``arguments`` is sent as given when it is a string (even one that is not JSON: it is what
    the model produced), JSON-encoded otherwise; no arguments are sent as ``"{}"``.
    """
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments or {}, ensure_ascii=False)
    return {
        "id": call_id or "",
        "type": "function",
        "function": {"name": name or "", "arguments": arguments or "{}"},
    }


def legacy_tool_call(raw: Any) -> dict[str, Any]:
    """A tool call kept in the OpenAI shape (a dict, or an SDK object with ``model_dump``)."""
    data = raw.model_dump() if hasattr(raw, "model_dump") else dict(raw)
    function = data.get("function") or {}
    return wire_tool_call(data.get("id"), function.get("name"), function.get("arguments"))


# --------------------------------------------------------------------------- responses


def first_choice(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The choice with index 0 of a completion or a chunk; None when the payload has none.

    Frameworks show one message, so only choice 0 is converted (and, when streaming with
    ``n > 1``, chunks of the other choices carry nothing for it).
    """
    for choice in payload.get("choices") or ():
        if (choice.get("index") or 0) == 0:
            return choice  # type: ignore[no-any-return]
    return None


def usage_counts(usage: Mapping[str, Any] | None) -> dict[str, int] | None:
    """Token counts of a wire ``usage``; None when there is none.

    Keys: ``prompt_tokens``, ``completion_tokens``, ``total_tokens`` (their sum when the
    service left it out), and ``cached_tokens`` / ``reasoning_tokens`` only when the service
    sent them (their ``*_details`` objects may be absent or null).
    """
    if not usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    total = usage.get("total_tokens")
    counts = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(total) if total is not None else prompt + completion,
    }
    cached = _detail(usage, "prompt_tokens_details", "cached_tokens")
    if cached is not None:
        counts["cached_tokens"] = cached
    reasoning = _detail(usage, "completion_tokens_details", "reasoning_tokens")
    if reasoning is not None:
        counts["reasoning_tokens"] = reasoning
    return counts


def _detail(usage: Mapping[str, Any], group: str, name: str) -> int | None:
    details = usage.get(group)
    value = details.get(name) if isinstance(details, Mapping) else None
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def parse_tool_arguments(arguments: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """The arguments object of a finished tool call; ``{}`` for a tool without parameters.

    Raises ``ValueError`` when the text is not a JSON object: a finished call is never
    repaired (control characters inside strings are tolerated, as models emit them).
    """
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if arguments is None or not arguments.strip():
        return {}
    value = json.loads(arguments, strict=False)
    if not isinstance(value, dict):
        raise ValueError(f"the arguments are a JSON {type(value).__name__}, not an object")
    return value


def new_tool_call_id() -> str:
    """An id for a tool call the service sent without one (a tool result must name its call)."""
    return f"call_{uuid.uuid4().hex[:24]}"


# --------------------------------------------------------------------------- knowledge-llm


def check_knowledge_settings(
    *,
    app: Any,
    host: str | None,
    auth: KnowledgeAuth,
    content: Sequence[str] | None = None,
    params: KnowledgeParams | None = None,
) -> None:
    """Raise ``RequestValidationError`` for a bad app, host, auth, fixed content or parameter.

    For construction time: the key is not looked up (a missing key is reported on the first
    call, as for chat).
    """
    resolve_app(app)
    resolve_host(host)
    _credentials(auth)
    build_knowledge_request(question="?", content=content, **(params or {}))


def knowledge_passages(*groups: Iterable[str]) -> list[str] | None:
    """The passages to send: every group's texts in order, without blank ones; None if none.

    A blank passage carries nothing for the answer, and the service rejects empty content.
    """
    kept = [text for group in groups for text in group if text.strip()]
    return kept or None
