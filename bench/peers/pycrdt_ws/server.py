"""pycrdt-websocket peer for bench/whiteboard.py: a y-websocket server as the library ships it.

    python bench/peers/pycrdt_ws/server.py PORT

pycrdt-websocket 0.16.5's ``WebsocketServer`` (rooms created on first use, no store, the defaults)
behind the ``websockets`` asyncio server on 127.0.0.1 (uvloop event loop, no compression, no
message size limit: the same as the Node reference server, whose ``ws`` server has compression
off). The document name is the URL path without its query string, as in ``@y/websocket-server``
(``req.url.slice(1).split('?')[0]``): ``/whiteboard/<room>/<board>?token=...`` is the document
``/whiteboard/<room>/<board>``; the token is ignored.

The library's documented ``serve(websocket_server.serve, ...)`` wiring needs the legacy
``websockets`` connection (``.path``), gone from the current asyncio API; ``Connection`` below is
the few lines of glue that take its place (pycrdt's ``Channel`` protocol: ``path``, ``send``,
``recv``, async iteration). A send to a client that has gone is dropped, as ``ws`` does in Node;
left to raise, it would fail the room's task group and with it every client of the board.

One workaround: the handler creates and starts a board's room under a lock before serving. In
0.16.5, when two clients connect at once to a board that has no room yet, both call
``start_room``; the second ``YRoom.start`` waits on the room's start lock, which the first holds
for the room's lifetime, so that client never gets sync step 1 and never syncs (measured: the
second of two simultaneous connections hung in 4 of 5 tries).

Prints ``ready PORT`` once listening; exits at once on SIGTERM/SIGINT or when stdin closes (the
harness died).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from urllib.parse import urlsplit

import uvloop
from pycrdt.websocket import WebsocketServer, exception_logger
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed


class Connection:
    """One client's WebSocket as a pycrdt ``Channel``."""

    def __init__(self, ws: ServerConnection) -> None:
        self._ws = ws
        self._path = urlsplit(ws.request.path if ws.request else "/").path

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> Connection:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    async def send(self, message: bytes) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(message)

    async def recv(self) -> bytes:
        message = await self._ws.recv()
        return message if isinstance(message, bytes) else message.encode()


async def main(port: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def stdin_closed() -> None:
        while await reader.read(4096):
            pass
        stop.set()

    async with WebsocketServer(exception_handler=exception_logger) as yws:
        first_use = asyncio.Lock()

        async def handler(ws: ServerConnection) -> None:
            conn = Connection(ws)
            async with first_use:
                await yws.get_room(conn.path)
            await yws.serve(conn)

        async with serve(handler, "127.0.0.1", port, compression=None, max_size=None) as server:
            bound = next(iter(server.sockets)).getsockname()[1]
            print(f"ready {bound}", flush=True)
            watcher = asyncio.create_task(stdin_closed())
            await stop.wait()
            watcher.cancel()
            # No graceful exit: with connections open, leaving these two context managers hangs
            # (the rooms' tasks do not all finish), and a benchmark peer has nothing to save.
            sys.stdout.flush()
            os._exit(0)


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
