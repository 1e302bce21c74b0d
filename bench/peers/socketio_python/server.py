"""python-socketio peer for bench/fanout.py and bench/idle_rss.py.

    python bench/peers/socketio_python/server.py PORT

The same room broadcast as the Node peer (bench/peers/socketio_node/server.js) and as liveclass's
chat: an ``AsyncServer`` on aiohttp (uvloop event loop, websocket transport only, no compression),
bound to 127.0.0.1. A client connects with auth ``{room, identity, role}`` and enters that room; a
``chat`` event (payload: the text) is stamped like a liveclass ``chat.message`` and emitted to the
whole room, sender included; the handler's return value is the ack. Prints ``ready PORT`` once
listening; stops on SIGTERM/SIGINT or when stdin closes (the harness died).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

import socketio
import uvloop
from aiohttp import web


def build() -> tuple[socketio.AsyncServer, web.Application]:
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        transports=["websocket"],
        cors_allowed_origins=None,
        logger=False,
        engineio_logger=False,
        max_http_buffer_size=64 * 1024,
    )
    app = web.Application()
    sio.attach(app)
    sessions: dict[str, tuple[str, str, str]] = {}
    seq = 0

    @sio.event
    async def connect(sid: str, environ: dict[str, object], auth: dict[str, str] | None) -> None:
        auth = auth or {}
        room = str(auth.get("room") or "class")
        sessions[sid] = (room, str(auth.get("identity") or sid), str(auth.get("role") or "student"))
        await sio.enter_room(sid, room)

    @sio.event
    async def disconnect(sid: str, reason: object = None) -> None:
        sessions.pop(sid, None)

    @sio.on("chat")
    async def chat(sid: str, text: object) -> int:
        nonlocal seq
        room, identity, role = sessions[sid]
        seq += 1
        message = {
            "id": seq,
            "ts": int(time.time() * 1000),
            "from": identity,
            "name": identity,
            "role": role,
            "text": str(text),
            "thread": None,
        }
        await sio.emit("chat", message, room=room)
        return seq

    return sio, app


async def main(port: int) -> None:
    _, app = build()
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"ready {bound}", flush=True)
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

    watcher = asyncio.create_task(stdin_closed())
    try:
        await stop.wait()
    finally:
        watcher.cancel()
        await runner.cleanup()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
