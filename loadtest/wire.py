"""A blocking liveclass protocol client for gevent (locust users), on websocket-client and msgpack.

Written from docs/protocol.md alone: one binary frame holds one MessagePack map; ``join`` is
answered by ``welcome``, ``resumed`` or an ``error`` (``rate_limited`` and ``unavailable`` are
retried after ``retry_after_ms`` plus jitter, on the same connection); commands carry ``ref``
and are answered by ``ack`` or ``error`` with that ref (matched by ref: pipelined commands need
not be answered in the order sent). The server's WebSocket pings are answered by websocket-client
itself (the protocol's heartbeat); :meth:`Client.ping` is the application ``ping``.

What is measured is handed to ``fire`` (``request_type, name, response_time_ms, length,
exception``), the shape of locust's ``request`` event, so this module does not import locust. One
greenlet per connection reads frames and calls ``on_frame`` for each; the user's greenlet sends.

A ``view`` frame (the participant's place changed: docs/protocol.md) moves ``last_id`` to its own
``last_id``, as a ``welcome`` would, without starting a new window of the log.

Resume checks (what the reconnect churn asks of the server): after ``resumed{last_id, missed}``
exactly ``missed`` events with ids above the client's ``last_id`` and at most ``resumed.last_id``
must follow before any newer one, and no event id may ever come twice or go backwards.
"""

from __future__ import annotations

import itertools
import random
import socket
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.event
import msgpack
import websocket

Frame = dict[str, Any]
Fire = Callable[[str, str, float, int, BaseException | None], None]

#: Errors a join retries after ``retry_after_ms``, on the same connection (docs/protocol.md).
JOIN_RETRY_CODES = frozenset({"rate_limited", "unavailable"})
#: How long a join (with its retries) may take before it counts as failed (s).
JOIN_TIMEOUT_S = 30.0
#: How long a resume's missed events may take to arrive (s).
REPLAY_TIMEOUT_S = 15.0


class ProtocolFailure(Exception):
    """What the server sent broke the protocol's promise (an error, a missed or repeated event)."""


@dataclass
class Resume:
    """A resume under way: which events must follow ``resumed``."""

    after: int
    through: int
    missed: int
    started: float
    replayed: int = 0
    done: bool = False


def source_address(spec: str, n: int) -> str | None:
    """User ``n``'s source address: none (the kernel's), ``loopback`` (its own ``127.a.b.c``, from
    127.1.1.1 on, every octet in 1-254, so HAProxy's ``balance source`` spreads the users; Linux
    routes all of 127.0.0.0/8 to ``lo``), or the ``n``-th of a comma list (round robin)."""
    if not spec:
        return None
    if spec == "loopback":
        a, rest = divmod(n % (253 * 254 * 254), 254 * 254)
        b, c = divmod(rest, 254)
        return f"127.{a + 1}.{b + 1}.{c + 1}"
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    return parts[n % len(parts)]


def open_websocket(url: str, source_address: str | None, timeout_s: float) -> websocket.WebSocket:
    """A blocking WebSocket to ``url`` from ``source_address`` (None: the kernel's choice)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    sock = socket.create_connection(
        (host, port),
        timeout=timeout_s,
        source_address=(source_address, 0) if source_address else None,
    )
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ws = websocket.create_connection(
        url,
        socket=sock,
        timeout=timeout_s,
        skip_utf8_validation=True,
        enable_multithread=True,
        # A program sends no Origin (a browser's is checked against --allowed-origins).
        suppress_origin=True,
    )
    ws.settimeout(None)
    return ws


def _now_ms() -> float:
    return time.perf_counter() * 1000.0


class Client:
    """One ``/ws`` connection of one participant."""

    def __init__(
        self,
        url: str,
        token: str,
        room: str,
        *,
        fire: Fire,
        on_frame: Callable[[Frame, int], None] | None = None,
        source_address: str | None = None,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self.token = token
        self.room = room
        self.fire = fire
        self.on_frame = on_frame
        self.source_address = source_address
        self.connect_timeout_s = connect_timeout_s
        self.ws: websocket.WebSocket | None = None
        self.welcome: Frame | None = None
        #: The newest event id received (the resume position; a ``tally.through`` may move it).
        self.last_id = 0
        #: The ``last_id`` of the ``welcome`` that started the client's current view of the log
        #: (set by the reader as the welcome arrives, before any event that follows it).
        self.window_start = 0
        #: The newest event id actually received (``last_id`` without tallies).
        self.last_event_id = 0
        self.closed = gevent.event.Event()
        self.close_code: int | None = None
        self.resume: Resume | None = None
        self.resume_done = gevent.event.Event()
        self.resume_failure: str | None = None
        self._refs = itertools.count(1)
        self._pending: dict[int, tuple[str, float]] = {}
        self._joined = gevent.event.AsyncResult()
        self._reader: gevent.Greenlet | None = None

    # ------------------------------------------------------------------ connection

    def _open(self) -> websocket.WebSocket:
        return open_websocket(self.url, self.source_address, self.connect_timeout_s)

    def join(self, last_id: int | None = None, window_start: int | None = None) -> Frame:
        """Connect and join (resume after ``last_id`` when given, continuing the view of the log
        that began at ``window_start``); returns the ``welcome`` or ``resumed``. Reports a
        ``join`` request named after the answer.

        Raises:
            ProtocolFailure: refused, or no answer within :data:`JOIN_TIMEOUT_S`.
        """
        start = _now_ms()
        if last_id is not None:
            self.last_id = self.last_event_id = last_id
            self.window_start = last_id if window_start is None else window_start
        try:
            self.ws = self._open()
            self._reader = gevent.spawn(self._read)
            join = {"t": "join", "token": self.token, "room": self.room, "last_id": last_id}
            deadline = time.monotonic() + JOIN_TIMEOUT_S
            while True:
                self._joined = gevent.event.AsyncResult()
                self._send(join)
                answer = self._joined.get(timeout=max(0.1, deadline - time.monotonic()))
                if answer.get("t") != "error":
                    break
                if answer.get("code") not in JOIN_RETRY_CODES or time.monotonic() > deadline:
                    raise ProtocolFailure(f"join refused: {answer.get('code')}")
                delay = (answer.get("retry_after_ms") or 100) / 1000.0
                gevent.sleep(delay + random.uniform(0, delay))
        except gevent.Timeout:
            failure = ProtocolFailure("join: no answer")
            self.fire("join", "timeout", _now_ms() - start, 0, failure)
            self.abort()
            raise failure from None
        except (OSError, websocket.WebSocketException, ProtocolFailure) as exc:
            failure = exc if isinstance(exc, ProtocolFailure) else ProtocolFailure(repr(exc))
            self.fire("join", "refused", _now_ms() - start, 0, failure)
            self.abort()
            raise failure from exc
        self.fire("join", str(answer["t"]), _now_ms() - start, 0, None)
        return answer

    def abort(self) -> None:
        """Drop the connection without a close handshake (a network failure, as the server sees
        it)."""
        ws, self.ws = self.ws, None
        if ws is not None and ws.sock is not None:
            try:
                ws.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            ws.sock.close()
        if self._reader is not None and self._reader is not gevent.getcurrent():
            self._reader.kill(block=False)
        self.closed.set()

    def close(self) -> None:
        """Send a close frame (1000, a tab closed) and stop reading without waiting for the answer
        (waiting would read the socket beside the reader greenlet)."""
        ws = self.ws
        if ws is not None:
            try:
                ws.send_close()
            except (OSError, websocket.WebSocketException):
                pass
        self.abort()

    # ------------------------------------------------------------------ commands

    def command(self, kind: str, **fields: Any) -> int:
        """Send a command; its ``ack`` or ``error`` is reported as an ``ack`` request named
        ``kind``. Returns the ref."""
        ref = next(self._refs)
        self._pending[ref] = (kind, _now_ms())
        self._send({"t": kind, "ref": ref, **fields})
        return ref

    def ping(self) -> int:
        return self.command("ping")

    def _send(self, frame: Frame) -> None:
        ws = self.ws
        if ws is None:
            raise ProtocolFailure("not connected")
        ws.send_bytes(msgpack.packb(frame))

    # ------------------------------------------------------------------ reading

    def _read(self) -> None:
        ws = self.ws
        assert ws is not None
        try:
            while True:
                opcode, data = ws.recv_data()
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    self.close_code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
                    break
                if opcode != websocket.ABNF.OPCODE_BINARY:
                    continue
                frame = msgpack.unpackb(data)
                self._dispatch(frame, len(data))
        except (OSError, websocket.WebSocketException):
            pass
        finally:
            if not self._joined.ready():
                self._joined.set_exception(ProtocolFailure(f"closed ({self.close_code})"))
            self.closed.set()

    def _dispatch(self, frame: Frame, size: int) -> None:
        kind = frame.get("t")
        if kind == "event":
            self._on_event(frame)
        elif kind in ("ack", "pong") or (kind == "error" and frame.get("ref") is not None):
            self._on_answer(frame, size)
        elif kind in ("welcome", "resumed") or kind == "error":
            self._on_join_answer(frame)
        elif kind == "tally":
            through = int(frame.get("through") or 0)
            self.last_id = max(self.last_id, through)
        elif kind == "view":
            # the place changed: the view holds the room up to its last_id, newer events follow
            self.last_id = max(self.last_id, int(frame.get("last_id") or 0))
        if self.on_frame is not None:
            self.on_frame(frame, size)

    def _on_join_answer(self, frame: Frame) -> None:
        kind = frame["t"]
        if kind == "welcome":
            self.welcome = frame
            self.window_start = self.last_id = self.last_event_id = int(frame["last_id"])
            if self.resume is not None:
                self.resume = None
                self.resume_done.set()
        elif kind == "resumed":
            through = int(frame["last_id"])
            self.resume = Resume(self.last_id, through, int(frame["missed"]), _now_ms())
            self._check_replay_done()
        if not self._joined.ready():
            self._joined.set(frame)

    def _on_answer(self, frame: Frame, size: int) -> None:
        pending = self._pending.pop(int(frame["ref"]), None)
        if pending is None:
            return
        kind, sent = pending
        elapsed = _now_ms() - sent
        if frame["t"] == "error":
            code = frame.get("code")
            self.fire("ack", kind, elapsed, size, ProtocolFailure(f"{kind}: {code}"))
        else:
            self.fire("ack", kind, elapsed, size, None)

    def _on_event(self, frame: Frame) -> None:
        event_id = int(frame["id"])
        resume = self.resume
        if event_id <= self.last_event_id or event_id <= self.last_id:
            why = f"event {event_id} after {max(self.last_event_id, self.last_id)}"
            self._fail_order(why)
            self._fail_resume(f"repeated or reordered: {why}")
            return
        if resume is not None and not resume.done:
            if event_id <= resume.through:
                resume.replayed += 1
            else:
                self._fail_resume(
                    f"event {event_id} past resumed.last_id {resume.through} after "
                    f"{resume.replayed} of {resume.missed} missed events"
                )
        self.last_event_id = max(self.last_event_id, event_id)
        self.last_id = max(self.last_id, event_id)
        if resume is not None and not resume.done:
            self._check_replay_done()

    def _check_replay_done(self) -> None:
        resume = self.resume
        if resume is None or resume.done:
            return
        if resume.replayed >= resume.missed:
            resume.done = True
            if resume.replayed > resume.missed:
                self._fail_resume(f"{resume.replayed} events replayed, {resume.missed} announced")
            else:
                self.fire("resume", "replay", _now_ms() - resume.started, resume.missed, None)
            self.resume_done.set()

    def _fail_resume(self, why: str) -> None:
        resume = self.resume
        if resume is not None and not resume.done:
            resume.done = True
            self.resume_failure = why
            self.fire("resume", "replay", _now_ms() - resume.started, 0, ProtocolFailure(why))
            self.resume_done.set()

    def _fail_order(self, why: str) -> None:
        self.fire("event", "order", 0.0, 0, ProtocolFailure(f"repeated or reordered: {why}"))

    def wait_replay(self, timeout: float = REPLAY_TIMEOUT_S) -> bool:
        """Wait until a resume's missed events all arrived (or failed); a timeout is a failure."""
        if self.resume is None:
            return True
        if not self.resume_done.wait(timeout):
            resume = self.resume
            self._fail_resume(
                f"{resume.replayed if resume else 0} of {resume.missed if resume else 0} missed "
                f"events in {timeout:g} s"
            )
        return self.resume_failure is None
