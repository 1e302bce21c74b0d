"""A whiteboard client for gevent: y-websocket sync on a pycrdt document, drawing strokes.

Connects to ``/whiteboard/<room>/<board>?token=...`` (docs/protocol.md, "Whiteboard";
docs/whiteboard.md), sends sync step 1, answers the server's step 1 with step 2, applies every
step 2 and update. A stroke is a record ``{key, val}`` appended to the ``records`` array (the
board's data model), its ``val`` carrying the send time; every client that receives it reports the
board's fan-out latency (``board`` / ``stroke``). The y-websocket messages are built and read by
the server's pure codec (``whiteboard.protocol``), which follows y-protocols and lib0.

:func:`converged` compares the boards of several clients once nothing more arrives: Yjs promises
every client that received the same updates holds the same document.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import gevent
import gevent.event
import websocket
from pycrdt import Array, Doc

from loadtest.wire import Fire, ProtocolFailure, open_websocket
from whiteboard.protocol import (
    MalformedMessage,
    PermissionDenied,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
    parse,
)

SYNC_TIMEOUT_S = 15.0


class BoardClient:
    """One board connection with its own document."""

    def __init__(
        self,
        base_url: str,
        token: str,
        room: str,
        board: str,
        identity: str,
        fire: Fire,
        *,
        expected_closes: frozenset[int] = frozenset(),
    ) -> None:
        self.url = f"{base_url}/whiteboard/{room}/{board}?token={token}"
        self.board = board
        self.identity = identity
        #: Close codes the server may send this connection in the normal course (a breakout
        #: room's board is closed with 4404 when its student moves away or the round closes):
        #: reported as ``closed <code>:expected``, not as failures.
        self.expected_closes = expected_closes
        self.close_code: int | None = None
        #: A write was refused: with breakout rooms, a stroke drawn on ``main`` as the student
        #: was being moved away (reported as ``write:denied`` then, not a failure). The refused
        #: record stays in this client's own document, so the converge check leaves it out.
        self.denials_expected = False
        self.denied = 0
        self.fire = fire
        self.doc = Doc()
        self.records: Array[Any] = self.doc.get("records", type=Array)
        self.records.observe(self._on_records)
        self.ws: websocket.WebSocket | None = None
        self.synced = gevent.event.Event()
        self.closed = gevent.event.Event()
        self.last_message = time.monotonic()
        self._strokes = itertools.count(1)
        self._reader: gevent.Greenlet | None = None
        self._applying = False
        self._closing = False

    def connect(self, source_address: str | None = None) -> None:
        """Open and sync (until the server's step 2); reports ``join`` / ``board``.

        Raises:
            ProtocolFailure: refused, closed before the sync (unless with one of
                ``expected_closes``: then it returns with ``closed`` set), or not synced within
                :data:`SYNC_TIMEOUT_S`.
        """
        start = time.perf_counter()
        try:
            self.ws = open_websocket(self.url, source_address, 10.0)
            self._reader = gevent.spawn(self._read)
            self.ws.send_bytes(encode_sync_step1(self.doc.get_state()))
            gevent.wait([self.synced, self.closed], timeout=SYNC_TIMEOUT_S, count=1)
            if not self.synced.is_set():
                if self.closed.is_set() and self.close_code in self.expected_closes:
                    return
                raise ProtocolFailure(
                    "board: no sync step 2"
                    if not self.closed.is_set()
                    else f"board: closed {self.close_code} before sync step 2"
                )
        except (OSError, websocket.WebSocketException, ProtocolFailure) as exc:
            failure = exc if isinstance(exc, ProtocolFailure) else ProtocolFailure(repr(exc))
            self.fire("join", "board", (time.perf_counter() - start) * 1000, 0, failure)
            self.close()
            raise failure from exc
        self.fire("join", "board", (time.perf_counter() - start) * 1000, 0, None)

    def draw(self, points: int = 8) -> None:
        """Append one stroke and send the update."""
        ws = self.ws
        if ws is None or self.closed.is_set():
            return
        captured: list[bytes] = []
        subscription = self.doc.observe(lambda event: captured.append(event.update))
        try:
            n = next(self._strokes)
            self.records.append(
                {
                    "key": f"{self.identity}-{n}",
                    "val": {
                        "type": "stroke",
                        "by": self.identity,
                        "sent_ms": time.time() * 1000.0,
                        "points": [[float(i), float(n % 97)] for i in range(points)],
                    },
                }
            )
        finally:
            self.doc.unobserve(subscription)
        try:
            ws.send_bytes(encode_update(captured[0]))
        except (OSError, websocket.WebSocketException):
            self.closed.set()

    def _on_records(self, event: Any) -> None:
        if not self._applying:
            return  # our own stroke
        now_ms = time.time() * 1000.0
        for change in event.delta:
            for record in change.get("insert", ()):
                val = record.get("val") if isinstance(record, dict) else None
                if isinstance(val, dict) and "sent_ms" in val:
                    self.fire("board", "stroke", now_ms - float(val["sent_ms"]), 0, None)

    def _read(self) -> None:
        ws = self.ws
        assert ws is not None
        try:
            while True:
                opcode, data = ws.recv_data()
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
                    self.close_code = code
                    if code in self.expected_closes:
                        self.fire("board", f"closed {code}:expected", 0, 0, None)
                    elif not self._closing:
                        self.fire(
                            "board", f"closed {code}", 0, 0, ProtocolFailure(f"closed {code}")
                        )
                    break
                if opcode != websocket.ABNF.OPCODE_BINARY:
                    continue
                self.last_message = time.monotonic()
                try:
                    message = parse(data)
                except MalformedMessage as exc:
                    self.fire("board", "message", 0, 0, ProtocolFailure(f"malformed: {exc}"))
                    continue
                if isinstance(message, SyncStep1):
                    ws.send_bytes(encode_sync_step2(self.doc.get_update(message.state_vector)))
                elif isinstance(message, SyncStep2 | SyncUpdate):
                    self._applying = True
                    try:
                        self.doc.apply_update(message.update)
                    finally:
                        self._applying = False
                    if isinstance(message, SyncStep2):
                        self.synced.set()
                elif isinstance(message, PermissionDenied):
                    self.denied += 1
                    if self.denials_expected:
                        self.fire("board", "write:denied", 0, 0, None)
                    else:
                        self.fire("board", "write", 0, 0, ProtocolFailure(message.reason))
        except (OSError, websocket.WebSocketException):
            pass
        finally:
            self.closed.set()

    def contents(self) -> list[Any]:
        return list(self.records.to_py() or [])

    def close(self) -> None:
        self._closing = True
        ws, self.ws = self.ws, None
        if self._reader is not None and self._reader is not gevent.getcurrent():
            self._reader.kill(block=False)
        if ws is not None:
            try:
                ws.send_close()
            except (OSError, websocket.WebSocketException):
                pass
            if ws.sock is not None:
                ws.sock.close()
        self.closed.set()


def converged(
    clients: list[BoardClient], quiet_s: float = 1.0, timeout_s: float = 10.0
) -> tuple[bool, str]:
    """Wait until no client received anything for ``quiet_s`` (at most ``timeout_s``), then check
    that every open client holds the same records. Returns (equal, what differs)."""
    open_clients = [c for c in clients if not c.closed.is_set() and not c.denied]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        newest = max((c.last_message for c in open_clients), default=0.0)
        if time.monotonic() - newest >= quiet_s:
            break
        gevent.sleep(0.1)
    if not open_clients:
        return True, "no open board"
    reference = open_clients[0].contents()
    for client in open_clients[1:]:
        theirs = client.contents()
        if theirs != reference:
            return False, (
                f"{client.identity} holds {len(theirs)} records, "
                f"{open_clients[0].identity} {len(reference)}"
            )
    return True, f"{len(open_clients)} boards of {len(reference)} records"
