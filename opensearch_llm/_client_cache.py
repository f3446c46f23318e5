"""The adapters' live core clients: one sync client, one async client per event loop.

``ClientCache`` holds them; ``OwnsClients`` gives an adapter model copies with clients of their
own and settings that take effect after first use; ``SyncHttpClient``/``AsyncHttpClient`` are
the field types of an injected httpx client.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, Protocol, TypeAlias, TypeVar

from pydantic import AfterValidator

if TYPE_CHECKING:
    import httpx


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
