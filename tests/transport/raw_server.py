"""A bare HTTP server on 127.0.0.1 whose handlers send exactly the bytes a test needs.

For what the emulator does not do: bodies over a size limit, gzip bombs, a body trickled one
byte at a time. aiohttp's web server in a background thread with its own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.contextmanager
def raw_server(routes: dict[str, Handler]) -> Iterator[str]:
    """Serve ``routes`` (path -> handler, POST) until the block ends; yields the origin URL."""
    loop = asyncio.new_event_loop()
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_post(path, handler)
    runner = web.AppRunner(app, access_log=None)
    started = threading.Event()
    origin: list[str] = []

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        origin.append(f"http://127.0.0.1:{port}")
        started.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, name="raw-http-server", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the raw server did not start")
    try:
        yield origin[0]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
