"""A lean benchmark client: websockets' sans-I/O ``ClientProtocol`` on a plain asyncio.Protocol.

One class speaks two dialects over a raw WebSocket, so the client costs the same kind of work for
every server under test:

- ``liveclass``: binary MessagePack frames on ``/ws`` (docs/protocol.md): ``join`` -> ``welcome``;
  ``chat.send{ref, text}`` -> ``ack{ref}`` + ``event{type: "chat.message"}``.
- ``socketio``: Engine.IO v4 / Socket.IO v5 text packets on
  ``/socket.io/?EIO=4&transport=websocket``: receive ``0{...}`` (open), send ``40{auth}``, receive
  ``40{...}``; answer the server's ping ``2`` with ``3``; events are ``42["chat",payload]``, an
  emit with ack id is ``42<id>["chat",text]`` answered by ``43<id>[...]``.

No task per connection and no per-message future: ``data_received`` parses the frames and calls
``sink(text, recv_ns)`` for each chat message, where ``recv_ns`` is ``time.monotonic_ns()`` taken
once when the bytes arrived. Every chat text the benchmarks send is ``"<phase>|<seq>|<send_ns>"``
with the sender's ``time.monotonic_ns()`` (CLOCK_MONOTONIC is system-wide, so processes compare).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import msgpack
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

LIVECLASS = "liveclass"
SOCKETIO = "socketio"
PATHS = {LIVECLASS: "/ws", SOCKETIO: "/socket.io/?EIO=4&transport=websocket"}

Sink = Callable[[str, int], None]


class JoinFailed(Exception):
    """The server refused or dropped the connection before it joined."""


def liveclass_join(token: str, room: str) -> bytes:
    return msgpack.packb({"t": "join", "token": token, "room": room, "last_id": None})


def socketio_auth(room: str, identity: str, role: str) -> bytes:
    return json.dumps({"room": room, "identity": identity, "role": role}).encode()


def _ignore(text: str, recv_ns: int) -> None:
    pass


class BenchConn(asyncio.Protocol):
    """One connection. ``joined`` resolves to the monotonic ns the welcome (or ``40``) arrived.

    Args:
        kind: ``liveclass`` or ``socketio``.
        url: full WebSocket URL (``PATHS[kind]`` on 127.0.0.1).
        hello: liveclass: the ``join`` frame (None: open the WebSocket only, no join);
            socketio: the auth JSON for the ``40`` CONNECT packet.
        sink: called with each chat message's text and its arrival time.
        on_ack: called with the ref of each acknowledged command.
    """

    def __init__(
        self,
        kind: str,
        url: str,
        hello: bytes | None,
        sink: Sink = _ignore,
        on_ack: Callable[[int], None] | None = None,
    ) -> None:
        self.kind = kind
        self.proto = ClientProtocol(parse_uri(url), max_size=1 << 20)
        self.hello = hello
        self.sink = sink
        self.on_ack = on_ack
        self.joined: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.frames = 0
        self.reads = 0
        self.errors: dict[str, int] = {}
        self.close_code: int | None = None
        self._on_message = self._liveclass_message if kind == LIVECLASS else self._socketio_message

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.proto.send_request(self.proto.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        self.reads += 1
        proto = self.proto
        proto.receive_data(data)
        for event in proto.events_received():
            if type(event) is Frame:
                op = event.opcode
                if op is Opcode.BINARY or op is Opcode.TEXT:
                    self.frames += 1
                    self._on_message(event.data, now)
            elif proto.handshake_exc is not None:
                self._fail(f"handshake: {proto.handshake_exc}")
            else:
                self._opened(now)
        self._flush()
        if proto.state is State.CLOSED and self.transport is not None:
            self.close_code = proto.close_code
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.close_code is None:
            self.close_code = self.proto.close_code
        self._fail(f"closed before join ({self.close_code})")

    # -- sending -------------------------------------------------------------------------------

    def _flush(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for chunk in self.proto.data_to_send():
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():
                transport.write_eof()

    def send_chat(self, text: str, ref: int) -> None:
        """Send one chat message; ``on_ack(ref)`` fires when the server acknowledges it."""
        if self.closed or self.proto.state is not State.OPEN:
            raise ConnectionError("connection is not open")
        if self.kind == LIVECLASS:
            self.proto.send_binary(msgpack.packb({"t": "chat.send", "ref": ref, "text": text}))
        else:
            self.proto.send_text(f'42{ref}["chat",{json.dumps(text)}]'.encode())
        self._flush()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- receiving -----------------------------------------------------------------------------

    def _fail(self, why: str) -> None:
        if not self.joined.done():
            self.joined.set_exception(JoinFailed(why))
            self.joined.exception()  # retrieved here; awaiters re-raise it

    def _error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1

    def _opened(self, now: int) -> None:
        if self.kind == LIVECLASS:
            if self.hello is None:
                self.joined.set_result(now)
            else:
                self.proto.send_binary(self.hello)
        # socketio: wait for the Engine.IO open packet "0{...}"

    def _liveclass_message(self, data: Any, now: int) -> None:
        msg = msgpack.unpackb(data)
        t = msg.get("t")
        if t == "event":
            if msg.get("type") == "chat.message":
                self.sink(msg["data"]["text"], now)
        elif t == "ack":
            if self.on_ack is not None:
                self.on_ack(msg["ref"])
        elif t == "welcome" or t == "resumed":
            if not self.joined.done():
                self.joined.set_result(now)
        elif t == "error":
            code = str(msg.get("code"))
            self._error(code)
            if not self.joined.done() and msg.get("ref") is None:
                self._fail(code)
        elif t == "reconnect":
            self._error("reconnect:" + str(msg.get("reason")))

    def _socketio_message(self, data: Any, now: int) -> None:
        head = data[:2]
        if head == b"42":
            name, payload = json.loads(data[2:])
            if name == "chat":
                self.sink(payload["text"], now)
        elif head == b"43":
            if self.on_ack is not None:
                end = data.index(b"[")
                self.on_ack(int(data[2:end]))
        elif head == b"2":
            self.proto.send_text(b"3")
        elif head[:1] == b"0":
            self.proto.send_text(b"40" + (self.hello or b""))
        elif head == b"40":
            if not self.joined.done():
                self.joined.set_result(now)
        elif head == b"44":
            self._error("connect_error")
            self._fail("connect_error: " + bytes(data[2:200]).decode(errors="replace"))
        elif head[:1] == b"1":
            self._error("engineio_close")


async def open_conn(
    kind: str,
    port: int,
    hello: bytes | None,
    sink: Sink = _ignore,
    on_ack: Callable[[int], None] | None = None,
    timeout: float = 30.0,
) -> tuple[BenchConn, int]:
    """Connect to 127.0.0.1:``port`` and join; returns the connection and the join time in ns
    (connect start -> welcome).

    Raises:
        JoinFailed, OSError, TimeoutError.
    """
    loop = asyncio.get_running_loop()
    url = f"ws://127.0.0.1:{port}{PATHS[kind]}"
    started = time.monotonic_ns()
    conn: BenchConn | None = None
    try:
        async with asyncio.timeout(timeout):
            _, conn = await loop.create_connection(
                lambda: BenchConn(kind, url, hello, sink, on_ack), "127.0.0.1", port
            )
            joined_ns = await conn.joined
    except BaseException:
        if conn is not None:
            conn.abort()
        raise
    return conn, joined_ns - started
