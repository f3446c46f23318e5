"""``serve()``: the emulator on a real socket, uvicorn in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opensearch_llm.emulator._asgi import TRANSPORT_EXTENSION
from opensearch_llm.emulator._core import Emulator

if TYPE_CHECKING:
    import uvicorn

_START_TIMEOUT = 10.0


@dataclass(frozen=True)
class EmulatorServer:
    """A running emulator: its :class:`Emulator` and URLs."""

    emulator: Emulator
    host: str
    port: int

    @property
    def origin(self) -> str:
        """``http://HOST:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def compatible_base_url(self) -> str:
        """The compatible-mode base URL (``origin + "/compatible-mode/v1"``)."""
        return self.origin + "/compatible-mode/v1"

    @property
    def gateway_base_url(self) -> str:
        """The AI gateway base URL (``origin + "/api/v1"``)."""
        return self.origin + "/api/v1"

    def knowledge_url(self, app: str = "emulator-app") -> str:
        """The knowledge-llm URL of application ``app``."""
        return f"{self.origin}/v3/openapi/apps/{app}/actions/knowledge-llm"


def _with_transport(protocol: Any) -> None:
    """Wrap the protocol's app so each request's scope carries the connection's transport."""
    inner = protocol.app

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["extensions"] = {
            **(scope.get("extensions") or {}),
            TRANSPORT_EXTENSION: protocol.transport,
        }
        await inner(scope, receive, send)

    protocol.app = app


def protocol_class(emulator: Emulator, http: str = "auto") -> type[asyncio.Protocol]:
    """A uvicorn HTTP protocol class (``h11``, ``httptools``, ``auto``) exposing the transport.

    Each connection it accepts counts in ``emulator.connection_count``.
    """
    base = _base_protocol(http)

    class EmulatorProtocol(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            _with_transport(self)

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            emulator.connection_opened()
            super().connection_made(transport)

    return EmulatorProtocol


def _base_protocol(http: str) -> type[asyncio.Protocol]:
    if http == "h11":
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    if http == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    return AutoHTTPProtocol


def make_config(
    emulator: Emulator, *, http: str = "auto", log_level: str = "warning"
) -> uvicorn.Config:
    """A uvicorn config for ``emulator`` (also used by the CLI)."""
    import uvicorn

    return uvicorn.Config(
        emulator.app,
        http=protocol_class(emulator, http),
        ws="none",
        lifespan="off",
        log_level=log_level,
        log_config=None,  # leave the application's logging configuration alone
        access_log=False,
        timeout_graceful_shutdown=1,
    )


@contextlib.contextmanager
def serve(
    emu: Emulator | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    http: str = "auto",
    log_level: str = "warning",
) -> Iterator[EmulatorServer]:
    """Run ``emu`` (a new :class:`Emulator` if ``None``) with uvicorn until the block ends.

    Port 0 picks a free port. Returns once the server accepts connections.

    Example::

        with serve() as server:
            httpx.post(server.compatible_base_url + "/chat/completions", ...)
    """
    import uvicorn

    emulator = emu if emu is not None else Emulator()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:  # in use, or not an address of this machine
        sock.close()
        raise
    server = uvicorn.Server(make_config(emulator, http=http, log_level=log_level))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="opensearch-llm-emulator", daemon=True
    )
    thread.start()
    try:
        _wait_started(server, thread)
        yield EmulatorServer(emulator, host, sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(_START_TIMEOUT)
        sock.close()


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("The emulator server did not start")
        time.sleep(0.005)
