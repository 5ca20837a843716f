"""A slow API server, made honestly: a TCP proxy in front of it that holds every answer back.

The proxy listens on 127.0.0.1 (the API server's certificate names that address, so TLS is
verified as usual) and forwards every connection to the real API server. Bytes from the client go
through at once; every piece of the answer is held for `delay_s` before it is passed on (in order,
so a stream keeps flowing, only late). That is what a loaded API server or a slow link looks like
to a client: each answer, TLS handshake included, arrives `delay_s` late. A kubeconfig that points
at the proxy puts any client behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

#: How long `start()` waits for the proxy's event loop to listen.
START_S = 10.0
_CHUNK = 65536


class DelayProxy:
    """Forwards 127.0.0.1:<port> to `upstream` (host, port), every answer `delay_s` late."""

    def __init__(self, upstream: tuple[str, int], delay_s: float) -> None:
        self.upstream = upstream
        self.delay_s = delay_s
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-api-proxy", daemon=True)

    @property
    def url(self) -> str:
        """The proxy's https URL (the API server speaks TLS through it)."""
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> DelayProxy:
        """Listen (returns self once it does)."""
        self._thread.start()
        if not self._ready.wait(START_S) or self._server is None:
            raise RuntimeError(f"the slow API proxy did not listen within {START_S:.0f}s")
        return self

    def stop(self) -> None:
        """Stop listening and drop every connection (bounded wait)."""
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    async def _handle(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        try:
            upstream_in, upstream_out = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_out.close()
            return
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        tasks = [
            asyncio.ensure_future(self._pass(client_in, upstream_out)),
            asyncio.ensure_future(self._hold(upstream_in, held)),
            asyncio.ensure_future(self._release(held, client_out)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            # The answer side drains what it holds before the connection is closed.
            await asyncio.wait(tasks[2:], timeout=self.delay_s + 1.0)
        finally:
            for task in tasks:
                task.cancel()
            for writer in (client_out, upstream_out):
                writer.close()

    @staticmethod
    async def _pass(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(_CHUNK):
            sink.write(data)
            await sink.drain()

    async def _hold(self, source: asyncio.StreamReader, held: asyncio.Queue[Any]) -> None:
        loop = asyncio.get_running_loop()
        while data := await source.read(_CHUNK):
            await held.put((loop.time() + self.delay_s, data))
        await held.put((loop.time() + self.delay_s, b""))

    @staticmethod
    async def _release(held: asyncio.Queue[Any], sink: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data = await held.get()
            # The delay is the fault itself (the answer is late), not a wait for some state.
            await asyncio.sleep(max(0.0, due - loop.time()))
            if not data:
                return
            sink.write(data)
            await sink.drain()


def upstream_of(kubeconfig: Path, context: str | None = None) -> tuple[str, int]:
    """The API server (host, port) of a kubeconfig's context (default: its current context)."""
    config = yaml.safe_load(kubeconfig.read_text())
    name = context or config.get("current-context")
    ctx = next(c["context"] for c in config["contexts"] if c["name"] == name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
    server = urlsplit(str(cluster["server"]))
    return str(server.hostname), int(server.port or 443)


def behind(kubeconfig: Path, proxy: DelayProxy, target: Path) -> Path:
    """Write `target`: `kubeconfig` with every cluster's server pointing at `proxy`."""
    config = yaml.safe_load(kubeconfig.read_text())
    for cluster in config.get("clusters") or []:
        cluster["cluster"]["server"] = proxy.url
    target.write_text(yaml.safe_dump(config))
    return target
