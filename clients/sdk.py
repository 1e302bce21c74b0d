"""The liveclass Python client SDK: one participant's connection to ``/ws``, over asyncio.

It speaks only the public protocol (docs/protocol.md): join, commands with refs answered by
``ack``/``error``, ordered ``event`` frames, ``presence``, vote ``tally`` frames, ``view`` frames
(the participant's place changed: a breakout room or the main room), heartbeats, and resume. With
``reconnect=True`` it reconnects by itself after a drop, a ``reconnect`` frame, or close codes
1012/4008, with exponential backoff and full jitter, presenting its last event id so it receives
exactly what it missed.

Example::

    async with ClassroomClient(url, token, room) as c:
        await c.ask("What is a monad?")
        event = await c.wait_for(lambda e: e.type == "question.answered")

Breakout rooms (staff)::

    await teacher.open_breakouts(["Red", "Blue"], auto=True, duration_s=600)
    await teacher.move_to_breakout("alice", "Blue")
    await teacher.set_breakout_timer(120)       # two minutes from now
    await teacher.close_breakouts()

and on a student's side ``c.session.place`` ("Red", or None for the main room),
``c.breakout_remaining_ms()`` and :meth:`ClassroomClient.wait_for_place`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msgpack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.protocol import State

from .breakout_commands import BreakoutCommands, given
from .breakouts import Breakouts

log = logging.getLogger(__name__)

#: Close codes after which reconnecting cannot help (docs/protocol.md, "Close codes"); after any
#: other (1011, 1012, 4008, 1006 ...) the client reconnects and resumes.
FINAL_CLOSE_CODES = frozenset({1000, 1002, 1007, 1009, 4401, 4403, 4409, 4410, 4423})
#: Join errors the client answers by joining again after ``retry_after_ms`` (plus jitter).
RETRY_JOIN_CODES = frozenset({"rate_limited", "unavailable"})


class ClientError(Exception):
    """Base of the SDK's errors."""


class CommandFailed(ClientError):
    """The server answered a command with ``error``.

    Attributes:
        code: the protocol's error code (``not_allowed``, ``already_voted``...).
        field: the offending field, when the server named one.
        retry_after_ms: for ``rate_limited``.
    """

    def __init__(self, frame: dict[str, Any]) -> None:
        super().__init__(f"{frame.get('code')}: {frame.get('message')}")
        self.code: str = frame.get("code", "")
        self.field: str | None = frame.get("field")
        self.retry_after_ms: int | None = frame.get("retry_after_ms")
        self.frame = frame


class Refused(ClientError):
    """The server refused the join or closed the session for good (code and close code)."""

    def __init__(self, code: str, close_code: int | None, message: str = "") -> None:
        super().__init__(f"{code} (close {close_code}): {message}")
        self.code = code
        self.close_code = close_code
        #: The server's hint for a join it could not take now (``rate_limited``, ``unavailable``).
        self.retry_after_ms: int | None = None


class ConnectionLost(ClientError):
    """The connection dropped before the command's answer arrived: it may or may not have
    taken effect; after a resume the event stream tells."""


@dataclass(frozen=True, slots=True)
class Event:
    """One room event as received: ``id``, ``ts`` (epoch ms), ``type`` and ``data``."""

    id: int
    ts: int
    type: str
    data: dict[str, Any]


@dataclass(slots=True)
class Session:
    """What the client knows of its session: who it is, the snapshot, presence, and the log."""

    you: dict[str, Any] = field(default_factory=dict)
    room: dict[str, Any] = field(default_factory=dict)
    roster: dict[str, dict[str, Any]] = field(default_factory=dict)
    online: int = 0
    last_id: int = 0
    events: list[Event] = field(default_factory=list)
    welcomes: int = 0
    resumes: int = 0
    presence_frames: int = 0
    #: Upvotes per question id, as current as this participant is told: the welcome's
    #: ``room.questions``, moved by the vote events received and set by each ``tally``
    #: (docs/protocol.md, "Vote tallies"); ``voted``: the questions this participant upvoted.
    votes: dict[int, int] = field(default_factory=dict)
    voted: set[int] = field(default_factory=set)
    tally_frames: int = 0
    reconnect_reasons: list[str] = field(default_factory=list)
    #: The ``iceServers`` of the last ``welcome``/``resumed`` (TURN credentials for media).
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: The ``waiting`` frame while this participant is in the waiting room (None otherwise:
    #: never waited, or admitted: the ``welcome`` followed on the same connection).
    waiting: dict[str, Any] | None = None
    #: The breakout rooms: from the welcome's ``room.breakouts``, moved by the ``breakout.*``
    #: events received and replaced by each ``view`` frame.
    breakouts: Breakouts = field(default_factory=Breakouts)
    #: ``view`` frames received (each replaced ``room`` and moved ``last_id``).
    views: int = 0
    #: The server's clock minus this host's (ms): from ``server_time_ms`` of the last
    #: ``welcome``/``resumed`` (one-way delay included), refined by each ``ping`` (half its
    #: round trip).
    server_offset_ms: float = 0.0

    @property
    def identity(self) -> str:
        return str(self.you.get("identity", ""))

    @property
    def staff(self) -> bool:
        return self.you.get("role") in ("teacher", "assistant")

    @property
    def place(self) -> str | None:
        """The breakout room this participant is in, or None for the main room."""
        return self.breakouts.place_of(self.identity)

    def server_now_ms(self) -> float:
        """The server's time now (epoch ms), from this host's clock and the measured offset."""
        return time.time() * 1000.0 + self.server_offset_ms


def _replace_view(s: Session, room: dict[str, Any]) -> None:
    """Take ``room`` (a ``welcome``'s or ``view``'s RoomView) as the session's snapshot."""
    s.room = room
    s.votes = {q["question_id"]: q["votes"] for q in room.get("questions", [])}
    s.voted = {q["question_id"] for q in room.get("questions", []) if q["voted"]}
    s.breakouts = Breakouts.from_view(room.get("breakouts"), before=s.breakouts)


def _count_votes(s: Session, event: Event) -> None:
    """Fold one Q&A event into ``s.votes`` and ``s.voted``."""
    data = event.data
    if event.type == "question.asked":
        s.votes[data["question_id"]] = 0
    elif event.type == "question.dismissed":
        s.votes.pop(data["question_id"], None)
        s.voted.discard(data["question_id"])
    elif event.type in ("question.upvoted", "question.unvoted"):
        question, up = data["question_id"], event.type == "question.upvoted"
        s.votes[question] = s.votes.get(question, 0) + (1 if up else -1)
        if data["identity"] != s.you.get("identity"):
            return
        if up:
            s.voted.add(question)
        else:
            s.voted.discard(question)


class ClassroomClient(BreakoutCommands):
    """One participant's connection.

    Args:
        url: the server's WebSocket URL, e.g. ``ws://127.0.0.1:8080/ws``.
        token: an access token for ``room``.
        room: the room to join.
        reconnect: reconnect and resume by itself after a drop (default True).
        local_addr: bind the client socket to this ``(host, port)`` before connecting (to spread
            simulated clients over source addresses behind a source-hashing balancer).
        open_timeout: seconds to wait for the connection and the welcome.
        backoff: (first, cap) reconnect delays in seconds; full jitter is applied.
        resume_from: the last event id a previous session of this participant saw; the first
            join then resumes from it (``resumed`` + the missed events) instead of a snapshot.
    """

    def __init__(
        self,
        url: str,
        token: str,
        room: str,
        *,
        reconnect: bool = True,
        local_addr: tuple[str, int] | None = None,
        open_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.2, 5.0),
        rng: random.Random | None = None,
        resume_from: int | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.room = room
        self.auto_reconnect = reconnect
        self.local_addr = local_addr
        self.open_timeout = open_timeout
        self.backoff = backoff
        self.session = Session()
        self._resume_from = resume_from
        self.closed_with: tuple[int | None, str] | None = None
        self._rng = rng or random.Random()
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ref = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._changed = asyncio.Condition()
        #: Called with each ``media.offer`` frame (the SFU's subscribe offers).
        self.media_offer_listeners: list[Callable[[dict[str, Any]], None]] = []
        #: Called with each ``media.reset`` frame: the SFU worker holding this connection's
        #: media was lost; close the peer connections and publish / subscribe again.
        self.media_reset_listeners: list[Callable[[dict[str, Any]], None]] = []
        #: What the SFU forwards of each video to this participant's link, by producer id, as
        #: the ``media.layers`` frames said (absent: ``"all"``).
        self.media_layers: dict[str, str] = {}
        #: Called with each ``view`` frame (after the session took it): this participant's place
        #: changed, so switch chat, Q&A and the whiteboard (``session.breakouts.board_of``).
        self.view_listeners: list[Callable[[dict[str, Any]], None]] = []
        #: Called with the ``welcome`` or ``resumed`` of each join after the first (a reconnect:
        #: a new WebSocket, and the SFU closed the old one's peer connections, so publish and
        #: subscribe again, as ``media.reset`` asks).
        self.rejoin_listeners: list[Callable[[dict[str, Any]], None]] = []
        self._greeted: asyncio.Future[dict[str, Any]] | None = None
        self._stopping = False
        self._reconnecting = False

    # -- connection ----------------------------------------------------------------------------

    async def __aenter__(self) -> ClassroomClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        greeted = self._greeted
        return (
            self._ws is not None
            and self._ws.state is State.OPEN
            and greeted is not None
            and greeted.done()
            and greeted.exception() is None
        )

    async def connect(self) -> dict[str, Any]:
        """Connect and join (resuming from ``session.last_id`` if it has one).

        Returns the ``welcome`` or ``resumed`` frame, or the ``waiting`` frame when the join
        waits in the room's waiting room (the ``welcome`` follows once staff admit it:
        :meth:`wait_until` ``session.waiting is None``).

        Raises:
            Refused: the server refused the join (token, removed, locked, ended).
            OSError, InvalidHandshake, TimeoutError: the connection could not be made.
        """
        extra: dict[str, Any] = {}
        if self.local_addr is not None:
            extra["local_addr"] = self.local_addr
        ws = await connect(
            self.url,
            open_timeout=self.open_timeout,
            max_size=None,
            compression=None,
            ping_interval=None,
            **extra,
        )
        self._ws = ws
        self._greeted = asyncio.get_running_loop().create_future()
        greeted_before = self.session.welcomes or self.session.resumes
        last_id = self.session.last_id if greeted_before else self._resume_from
        join = msgpack.packb(
            {"t": "join", "token": self.token, "room": self.room, "last_id": last_id}
        )
        await ws.send(join)
        self._reader = asyncio.get_running_loop().create_task(self._read(ws))
        async with asyncio.timeout(self.open_timeout):
            while True:
                try:
                    return await asyncio.shield(self._greeted)
                except Refused as exc:
                    # A join storm (rate_limited) or a failover (unavailable): join again after
                    # the server's hint, with full jitter on top.
                    if exc.retry_after_ms is None or exc.code not in RETRY_JOIN_CODES:
                        raise
                    await asyncio.sleep(exc.retry_after_ms / 1000 * (1 + self._rng.random()))
                    self._greeted = asyncio.get_running_loop().create_future()
                    await ws.send(join)

    async def close(self) -> None:
        """Close without leaving (the participant may come back); stops reconnecting."""
        self._stopping = True
        ws = self._ws
        if ws is not None:
            await ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    async def drop(self) -> None:
        """Cut the TCP connection abruptly (as a flaky network would); reconnects if enabled."""
        if self._ws is not None:
            self._ws.transport.abort()

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                if isinstance(frame, bytes):
                    await self._dispatch(msgpack.unpackb(frame, raw=False))
        except ConnectionClosed:
            pass
        finally:
            await self._on_closed(ws)

    async def _on_closed(self, ws: ClientConnection) -> None:
        code = ws.close_code
        reason = ws.close_reason or ""
        if self._ws is ws:
            self._ws = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(f"connection closed ({code})"))
        self._pending.clear()
        greeted = self._greeted
        if greeted is not None and not greeted.done():
            greeted.set_exception(Refused(reason or "closed", code, "closed before welcome"))
            greeted.exception()
        self.closed_with = (code, reason)
        async with self._changed:
            self._changed.notify_all()
        if self._stopping or not self.auto_reconnect or code in FINAL_CLOSE_CODES:
            return
        if greeted is None or not greeted.done() or greeted.exception() is not None:
            return
        asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        if self._reconnecting:
            return
        self._reconnecting = True
        first, cap = self.backoff
        attempt = 0
        try:
            while not self._stopping:
                delay = self._rng.uniform(0, min(cap, first * 2**attempt))
                await asyncio.sleep(delay)
                attempt += 1
                try:
                    await self.connect()
                    return
                except Refused as exc:
                    if exc.close_code in FINAL_CLOSE_CODES:
                        return
                except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed):
                    continue
        finally:
            self._reconnecting = False

    # -- frames in -----------------------------------------------------------------------------

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        t = msg.get("t")
        s = self.session
        if t == "event":
            event = Event(msg["id"], msg["ts"], msg["type"], msg["data"])
            s.events.append(event)
            s.last_id = msg["id"]
            _count_votes(s, event)
            s.breakouts.apply(event.type, event.data, event.ts, me=s.identity, staff=s.staff)
        elif t == "tally":
            s.tally_frames += 1
            for entry in msg["questions"]:
                s.votes[entry["question_id"]] = entry["votes"]
            # Every event up to ``through`` this participant may see came before the tally.
            s.last_id = max(s.last_id, msg["through"])
        elif t == "waiting":
            s.waiting = msg
            if self._greeted is not None and not self._greeted.done():
                self._greeted.set_result(msg)
        elif t in ("welcome", "resumed"):
            s.waiting = None
            s.you = msg["you"]
            s.roster = {p["identity"]: p for p in msg["roster"]}
            s.online = msg["online"]
            s.ice_servers = list(msg.get("ice_servers", []))
            if msg.get("server_time_ms") is not None:
                s.server_offset_ms = msg["server_time_ms"] - time.time() * 1000.0
            if t == "welcome":
                s.last_id = msg["last_id"]
            elif not (s.welcomes or s.resumes) and self._resume_from is not None:
                s.last_id = self._resume_from  # the missed events follow and advance it
            if t == "welcome":
                _replace_view(s, msg["room"])
                s.welcomes += 1
            else:
                s.resumes += 1
            if self._greeted is not None and not self._greeted.done():
                self._greeted.set_result(msg)
            if s.welcomes + s.resumes > 1:
                for rejoin_listener in tuple(self.rejoin_listeners):
                    rejoin_listener(msg)
        elif t == "view":
            # The place changed: the view replaces the snapshot; events above last_id follow.
            s.last_id = msg["last_id"]
            _replace_view(s, msg["room"])
            s.views += 1
            for view_listener in tuple(self.view_listeners):
                view_listener(msg)
        elif t == "presence":
            s.presence_frames += 1
            for p in msg["joined"]:
                s.roster[p["identity"]] = p
            for identity in msg["left"]:
                s.roster.pop(identity, None)
            s.online = msg["online"]
        elif t in ("ack", "error", "pong"):
            if t == "error":
                s.errors.append(msg)
            future = self._pending.pop(msg.get("ref"), None) if msg.get("ref") is not None else None
            if future is not None and not future.done():
                if t == "error":
                    future.set_exception(CommandFailed(msg))
                else:
                    future.set_result(msg)
            elif t == "error" and self._greeted is not None and not self._greeted.done():
                refused = Refused(msg["code"], None, msg.get("message", ""))
                refused.retry_after_ms = msg.get("retry_after_ms")
                self._greeted.set_exception(refused)
                self._greeted.exception()
        elif t == "reconnect":
            s.reconnect_reasons.append(msg.get("reason", ""))
        elif t == "media.offer":
            for listener in tuple(self.media_offer_listeners):
                listener(msg)
        elif t == "media.layers":
            for producer_id, layer in dict(msg.get("producers") or {}).items():
                if layer == "all":
                    self.media_layers.pop(str(producer_id), None)
                else:
                    self.media_layers[str(producer_id)] = str(layer)
        elif t == "media.reset":
            self.media_layers.clear()  # new connections: every video starts at "all"
            for listener in tuple(self.media_reset_listeners):
                listener(msg)
        async with self._changed:
            self._changed.notify_all()

    # -- commands out --------------------------------------------------------------------------

    async def request(self, type_: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """Send one command and wait for its ``ack``.

        Returns the ack frame (``ids``: the event ids appended).

        Raises:
            CommandFailed: the server answered ``error``.
            ConnectionLost: the connection dropped first.
            TimeoutError: no answer within ``timeout`` seconds.
        """
        ws = self._ws
        if ws is None:
            raise ConnectionLost("not connected")
        self._ref += 1
        ref = self._ref
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ref] = future
        try:
            await ws.send(msgpack.packb({"t": type_, "ref": ref, **fields}))
        except ConnectionClosed as exc:
            self._pending.pop(ref, None)
            raise ConnectionLost(str(exc)) from exc
        async with asyncio.timeout(timeout):
            return await future

    async def send_raw(self, frame: bytes | str) -> None:
        """Send a frame as is (for testing the server's handling of bad input)."""
        if self._ws is None:
            raise ConnectionLost("not connected")
        await self._ws.send(frame)

    async def ping(self) -> dict[str, Any]:
        """Send the application ``ping``; returns the ``pong``. Also measures the server's clock
        (``session.server_offset_ms``) from its ``server_time_ms`` at half the round trip."""
        sent = time.time() * 1000.0
        pong = await self.request("ping")
        if pong.get("server_time_ms") is not None:
            self.session.server_offset_ms = (
                pong["server_time_ms"] - (sent + time.time() * 1000.0) / 2
            )
        return pong

    # -- media signaling (docs/protocol.md, "Media") ----------------------------------------------

    async def publish_media(self, sdp: str, sources: dict[str, str]) -> str:
        """Send the publish connection's offer; returns the SFU's answer SDP."""
        ack = await self.request("media.publish", sdp=sdp, sources=sources)
        return str(ack["sdp"])

    async def unpublish_media(self, source: str) -> None:
        """Stop publishing ``source`` (``"camera"``, ``"microphone"`` or ``"screen"``): the SFU
        removes its producer for everyone. Stop the local track too. To publish it again, send
        a new offer on the same connection with :meth:`publish_media`, naming its m-line in
        ``sources``.

        Raises:
            CommandFailed: ``no_transport`` (nothing published on this connection),
                ``bad_field``.
        """
        await self.request("media.unpublish", source=source)

    async def subscribe_media(self) -> None:
        """Start the subscribe connection; offers arrive at ``media_offer_listeners``."""
        await self.request("media.subscribe")

    async def view_media(self, video: str | Sequence[str]) -> None:
        """Say which videos this client shows (``media.view``): ``"all"``, ``"none"`` (audio
        only) or the producer ids on screen; the SFU forwards no other video to it."""
        await self.request("media.view", video=video if isinstance(video, str) else list(video))

    async def answer_media(self, version: int, sdp: str) -> None:
        """Answer subscribe offer ``version``."""
        await self.request("media.answer", version=version, sdp=sdp)

    async def chat(
        self, text: str, to: str | None = None, room: str | None = None
    ) -> dict[str, Any]:
        """Send a chat line: room-wide (``to`` None) or into a private thread with student
        ``to``. It goes to the sender's place (its breakout room or the main room); staff may
        name another open breakout ``room`` to post into.

        Raises:
            CommandFailed: ``chat_muted``, ``bad_field``; ``not_allowed`` (a student naming a
                room), ``no_such_breakout`` (``room`` is not open).
        """
        return await self.request("chat.send", text=text, to=to, **given(room=room))

    async def raise_hand(self) -> dict[str, Any]:
        return await self.request("hand.raise")

    async def lower_hand(self, identity: str | None = None) -> dict[str, Any]:
        return await self.request("hand.lower", identity=identity)

    async def call_next(self) -> dict[str, Any]:
        return await self.request("hand.call_next")

    async def lower_all_hands(self) -> dict[str, Any]:
        return await self.request("hand.lower_all")

    async def ask(self, text: str, room: str | None = None) -> dict[str, Any]:
        """Ask a question in the asker's place; staff may name another open breakout ``room``.

        Raises:
            CommandFailed: ``bad_field``, ``limit_reached``; ``not_allowed`` (a student naming a
                room), ``no_such_breakout``.
        """
        return await self.request("question.ask", text=text, **given(room=room))

    async def upvote(self, question_id: int) -> dict[str, Any]:
        """Upvote a question of this participant's place.

        Raises:
            CommandFailed: ``no_such_question`` (also a question of another breakout room, for
                a student), ``already_voted``, ``question_closed``.
        """
        return await self.request("question.upvote", question_id=question_id)

    async def unvote(self, question_id: int) -> dict[str, Any]:
        return await self.request("question.unvote", question_id=question_id)

    async def answer_question(self, question_id: int) -> dict[str, Any]:
        return await self.request("question.answer", question_id=question_id)

    async def dismiss_question(self, question_id: int) -> dict[str, Any]:
        return await self.request("question.dismiss", question_id=question_id)

    async def pin_question(self, question_id: int, pinned: bool = True) -> dict[str, Any]:
        return await self.request("question.pin", question_id=question_id, pinned=pinned)

    async def open_poll(
        self, question: str, options: Sequence[str], multiple: bool = False
    ) -> dict[str, Any]:
        return await self.request(
            "poll.open", question=question, options=list(options), multiple=multiple
        )

    async def answer_poll(self, poll_id: int, choices: Sequence[int]) -> dict[str, Any]:
        return await self.request("poll.answer", poll_id=poll_id, choices=list(choices))

    async def close_poll(self, poll_id: int) -> dict[str, Any]:
        return await self.request("poll.close", poll_id=poll_id)

    async def mute_chat(self, identity: str | None, muted: bool = True) -> dict[str, Any]:
        return await self.request("chat.mute", identity=identity, muted=muted)

    async def remove(self, identity: str, reason: str = "") -> dict[str, Any]:
        return await self.request("participant.remove", identity=identity, reason=reason)

    async def lock_room(self, locked: bool = True) -> dict[str, Any]:
        return await self.request("room.lock", locked=locked)

    async def lock_board(self, board: str = "main", locked: bool = True) -> dict[str, Any]:
        return await self.request("board.lock", board=board, locked=locked)

    async def clear_board(self, board: str = "main") -> dict[str, Any]:
        return await self.request("board.clear", board=board)

    async def snapshot_board(self, board: str = "main") -> dict[str, Any]:
        """Ask for a snapshot; the ack's event id names it (``ids[0]``)."""
        return await self.request("board.snapshot", board=board)

    async def snapshot_link(self, board: str, snapshot_id: int) -> str:
        """A short-lived, single-use download URL for one saved snapshot (staff only)."""
        ack = await self.request("board.snapshot_link", board=board, snapshot_id=snapshot_id)
        parts = urlsplit(self.url)
        scheme = "https" if parts.scheme == "wss" else "http"
        return f"{scheme}://{parts.netloc}{ack['url']}"

    async def download_snapshot(self, board: str, snapshot_id: int) -> bytes:
        """Download a saved snapshot (one Yjs v1 update) through a fresh snapshot link.

        Raises:
            CommandFailed: the link was refused (not staff, removed, session ended).
            urllib.error.HTTPError: the download was refused (404: no such snapshot yet).
        """
        url = await self.snapshot_link(board, snapshot_id)

        def fetch() -> bytes:
            with urllib.request.urlopen(url, timeout=10) as response:
                return bytes(response.read())

        return await asyncio.to_thread(fetch)

    async def set_media_mode(self, mode: str) -> dict[str, Any]:
        """``"lecture"`` (only staff publish in the main room) or ``"discussion"``."""
        return await self.request("media.mode", mode=mode)

    async def mute_media(
        self, identity: str | None, source: str, muted: bool = True
    ) -> dict[str, Any]:
        """Stop (or resume) forwarding ``source`` of ``identity`` (None: every student's)."""
        return await self.request("media.mute", identity=identity, source=source, muted=muted)

    async def permit_media(self, identity: str, allowed: bool = True) -> dict[str, Any]:
        return await self.request("media.permit", identity=identity, allowed=allowed)

    async def spotlight(self, identity: str | None) -> dict[str, Any]:
        return await self.request("media.spotlight", identity=identity)

    async def set_stage(self, view: str) -> dict[str, Any]:
        """Put ``view`` (``"video"`` or ``"board"``) on every page's stage (staff)."""
        return await self.request("stage.set", view=view)

    async def end_session(self, reason: str = "") -> dict[str, Any]:
        return await self.request("session.end", reason=reason)

    async def set_waiting_room(self, enabled: bool = True) -> dict[str, Any]:
        return await self.request("room.waiting_room", enabled=enabled)

    async def admit_waiting(self, identity: str | None = None) -> dict[str, Any]:
        """Admit one waiting student (None: everyone waiting)."""
        return await self.request("waiting.admit", identity=identity)

    async def deny_waiting(self, identity: str) -> dict[str, Any]:
        return await self.request("waiting.deny", identity=identity)

    async def leave(self) -> dict[str, Any]:
        self._stopping = True
        return await self.request("leave")

    # -- waiting -------------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        """The first received event (already received or arriving) that matches ``predicate``.

        Raises:
            TimeoutError: none within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            async with self._changed:
                while True:
                    for event in self.session.events:
                        if predicate(event):
                            return event
                    await self._changed.wait()

    async def wait_for_place(self, room: str | None, timeout: float = 10.0) -> None:
        """Wait until this participant is in breakout ``room`` (None: the main room).

        Raises:
            TimeoutError: it was not within ``timeout`` seconds.
        """
        await self.wait_until(lambda: self.session.place == room, timeout)

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``condition()`` holds (checked after every frame).

        Raises:
            TimeoutError: it did not within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(condition)
