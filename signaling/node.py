"""SignalingNode: the asyncio edge. WebSocket connections in, room hubs behind them.

A node holds connections and hubs only; what is acknowledged lives in the store. The per-connection
loop reads frames in order, enforces the frame size and rate limit, decodes against the protocol
and hands commands to the room's hub. Bad input gets a typed error frame and the connection and the
room go on (docs/protocol.md, "Error codes").
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import functools
import io
import json
import logging
import random
import ssl
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from rooms import (
    CSV_TABLES,
    BreakoutOpen,
    ClassExport,
    CloseCode,
    Command,
    Leave,
    NotAllowed,
    Participant,
    Record,
    RoomError,
    is_board_name,
)

from . import saved_groups, tracing
from .admin import (
    ADMIN,
    PARTICIPANTS_LISTED,
    ROOMS_LISTED,
    VERSION,
    AdminApi,
    NoSuchRoom,
    is_admin_path,
    iso_time,
    status_document,
)
from .audit import AUDITED, AuditLog, actor_at, actor_of, command_detail
from .auth import Access, Keyring, verify, verify_access
from .balance import Rebalancer
from .boards import BoardEndpoint, OpenRoom
from .bus import Bus
from .codec import (
    CommandFrame,
    GroupsRequest,
    Join,
    MediaFrame,
    Ping,
    SnapshotLinkRequest,
    decode,
    encode_error,
    encode_pong,
    encode_reconnect,
    encode_snapshot_link,
    peek_ref,
)
from .connection_cap import ConnectionCap
from .errors import (
    AlreadyJoined,
    BadFieldType,
    ClientError,
    ConnectionReplaced,
    FrameTooLarge,
    Internal,
    NotJoined,
    RateLimited,
    TextFrame,
    TokenInvalid,
    Unavailable,
)
from .http import HttpRoutes, HttpSettings, respond, text
from .hub import HubSettings, JoinRefused, Member, RoomHub, now_ms
from .log_context import CONNECTION, ROOM, in_room, unbound
from .media import MediaSession
from .metrics import BoardCollector, Metrics
from .node_heartbeat import NodeHeartbeat
from .origins import OriginPolicy
from .outbox import Outbox
from .ratelimit import AddressBuckets, SharedBuckets, TokenBucket
from .request_target import (
    BadTarget,
    BoardTarget,
    ExportTarget,
    HttpTarget,
    SnapshotTarget,
    Target,
    WsTarget,
    parse_target,
)
from .snapshot_links import (
    UsedLinks,
    download_refusal,
    mint_snapshot_token,
    snapshot_path,
    verify_snapshot_token,
)
from .store import EventStore, StoreUnavailable
from .waiting import Waiter

log = logging.getLogger(__name__)

#: Records read per store round trip while exporting a class.
_EXPORT_PAGE = 1000

#: Close reasons are at most 123 bytes (RFC 6455 section 5.5.1).
_REASON_MAX = 120
#: Frames a verified board connection buffers unread (high, low water marks): its messages may
#: be as large as a board, so it reads ahead little while one is applied (websockets' default: 16).
_BOARD_READ_AHEAD = (2, 1)
#: Commands one connection may have waiting for their batch before the node stops reading it
#: (a pipelining client's burst joins one batch; the bound keeps what a connection holds small).
_COMMANDS_IN_FLIGHT = 64


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """Limits and timings of a node (flags and defaults in liveclass/config.py)."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_frame_bytes: int = 16 * 1024
    ws_max_size: int = 64 * 1024
    rate_per_s: float = 20.0
    rate_burst: float = 40.0
    send_queue_frames: int = 1024
    #: Payload bytes queued for a ``/ws`` connection that is behind; past it: 4008.
    send_queue_bytes: int = 1024 * 1024
    #: A ``/ws`` connection that has not joined this long after it opened is closed (4401), so
    #: an anonymous connection does not stay open for ever.
    join_timeout_s: float = 30.0
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    room_idle_s: float = 30.0
    shutdown_grace_s: float = 5.0
    #: Joins admitted per second (and burst) on this node; past it a join is answered
    #: ``rate_limited`` with ``retry_after_ms`` (jittered) and the client sends it again.
    join_rate_per_s: float = 500.0
    join_burst: float = 500.0
    #: Frames per second (and burst) after ``join`` shared by all of one identity's connections
    #: to a room on this node, on top of each connection's own ``rate_per_s``.
    identity_rate_per_s: float = 20.0
    identity_burst: float = 40.0
    #: Connections one identity may hold to a room on this node; one more closes the oldest.
    max_connections_per_identity: int = 8
    #: Failed joins (a token that does not verify) per source address: they spend this budget,
    #: never the node's join budget; past it a failed join is answered ``rate_limited``. At most
    #: ``auth_failure_addresses`` addresses are tracked (least recently seen forgotten first).
    auth_failure_rate_per_s: float = 2.0
    auth_failure_burst: float = 20.0
    auth_failure_addresses: int = 10_000
    #: Which ``Origin`` a WebSocket handshake may carry (none at all is allowed: not a browser).
    origins: OriginPolicy = field(default_factory=OriginPolicy)
    #: Pending TCP connections the kernel queues (a join storm opens hundreds at once).
    listen_backlog: int = 1024
    hub: HubSettings = field(default_factory=HubSettings)
    #: Frames queued for a whiteboard connection that is behind; one more closes it with 1013.
    board_send_queue_frames: int = 4096
    #: Payload bytes queued for a whiteboard connection that is behind; past it: 1013.
    board_send_queue_bytes: int = 4 * 1024 * 1024
    #: The port's TLS (``--tls-cert``; :class:`signaling.tls.ServerTls`); None: plain.
    tls: ssl.SSLContext | None = None


class SignalingNode:
    """One signaling process: serves ``/ws``, ``/whiteboard/<room>/<board>`` and the HTTP
    endpoints on one port."""

    def __init__(
        self,
        settings: NodeSettings,
        http: HttpSettings,
        keyring: Keyring,
        store: EventStore,
        bus: Bus,
        boards: Callable[[OpenRoom], BoardEndpoint] | None = None,
        metrics: Metrics | None = None,
        media: Any = None,
        ice_servers: Callable[[Participant], list[dict[str, object]]] | None = None,
    ) -> None:
        """``boards`` builds the whiteboard endpoint from the node's room hubs; without it
        ``/whiteboard`` answers 404. ``media`` is the SFU worker (:class:`sfu.worker.Worker`)
        that ``media.*`` frames go to; without it they get ``media_unavailable``.
        ``ice_servers`` gives each joining participant's ``iceServers`` (TURN), sent with
        ``welcome`` and ``resumed``."""
        self.settings = settings
        self.keyring = keyring
        self.store = store
        self.bus = bus
        self.boards = boards(self._hub) if boards is not None else None
        self.media = media
        self.ice_servers = ice_servers or (lambda participant: [])
        self._board_outboxes: set[Outbox] = set()
        #: Connections waiting in a room's waiting room (told to reconnect on drain).
        self._waiting_outboxes: set[Outbox] = set()
        self.metrics = metrics or Metrics()
        #: Every ``/ws`` connection's send queue (``liveclass_send_queue_bytes``).
        self._outboxes: set[Outbox] = set()
        self.metrics.ready.set_function(lambda: 1.0 if self.ready() else 0.0)
        self.metrics.send_queue_bytes.set_function(self._queued_bytes)
        if self.boards is not None:
            self.metrics.registry.register(BoardCollector(self.boards))
        #: Moderation, breakouts, failed authentication, origin refusals, rate-limit blocks
        #: (:mod:`signaling.audit`); off unless the composition root sets one.
        self.audit = AuditLog.off()
        self.routes = HttpRoutes(http, keyring, self.ready, self.metrics.registry)
        self.admin = AdminApi(http.admin_token, self)
        self.started_at = time.time()
        #: With a Redis Cluster, the status page's heartbeat (signaling/node_heartbeat.py).
        self.heartbeat: NodeHeartbeat | None = None
        self.public_url = http.public_url
        self.draining = False
        self._hubs: dict[str, RoomHub] = {}
        self._opening: dict[str, asyncio.Future[RoomHub]] = {}
        #: Hubs unloaded whose close (unsubscribing the room) has not ended: a room is opened
        #: again only after, or the old hub's unsubscribe would take the new one's subscription.
        self._closing: dict[str, asyncio.Task[None]] = {}
        #: Joins under way per room (from opening the room to the member's registration).
        self._joining: Counter[str] = Counter()
        self._idle_timers: dict[str, asyncio.TimerHandle] = {}
        #: Joined ``/ws`` connections -> their room.
        self._members: dict[Member, str] = {}
        #: Asks clients to reconnect when this node holds more than its share (a cluster node).
        self.balance: Rebalancer | None = None
        self._connections: set[ServerConnection] = set()
        self._server: Server | None = None
        self._join_bucket = TokenBucket(settings.join_rate_per_s, settings.join_burst)
        self._identity_buckets = SharedBuckets(
            settings.identity_rate_per_s, settings.identity_burst
        )
        #: Each (room, identity)'s joined ``/ws`` connections and board connections on this
        #: node, oldest first, at most ``max_connections_per_identity`` of each.
        self._ws_held = ConnectionCap[Member](settings.max_connections_per_identity)
        self._boards_held = ConnectionCap[Outbox](settings.max_connections_per_identity)
        #: Waiting-room connections, counted apart under the same cap: a student cannot make the
        #: node hold more waiting connections than joined ones.
        self._waiting_held = ConnectionCap[Outbox](settings.max_connections_per_identity)
        self._used_links = UsedLinks()
        self._auth_failures = AddressBuckets(
            settings.auth_failure_rate_per_s,
            settings.auth_failure_burst,
            settings.auth_failure_addresses,
        )
        #: The route of each accepted handshake, from _process_request to _handle.
        self._targets: weakref.WeakKeyDictionary[ServerConnection, Target] = (
            weakref.WeakKeyDictionary()
        )

    # -- serving -------------------------------------------------------------------------------

    async def start(self) -> Server:
        """Connect the bus, then listen.

        Raises:
            signaling.redis_cluster.ClusterUnavailable: the cluster cannot be reached.
            OSError: the address cannot be bound.
        """
        s = self.settings
        await self.bus.start()
        if self.balance is not None:
            self.balance.start()
        if self.heartbeat is not None:
            await self.heartbeat.start()
        self._server = await serve(
            self._handle,
            s.host,
            s.port,
            process_request=self._process_request,
            process_response=self._process_response,
            compression=None,
            # Every connection starts with the small limit; a whiteboard connection gets the
            # board's once its token has verified (_handle_board).
            max_size=s.ws_max_size,
            ping_interval=s.ping_interval_s,
            ping_timeout=s.ping_timeout_s,
            close_timeout=2,
            server_header="liveclass",
            backlog=s.listen_backlog,
            ssl=s.tls,
        )
        return self._server

    @property
    def _board_ws_max_size(self) -> int:
        # Up to twice the limit a message is read and refused with 4413 (y-websocket clients do
        # not retry 44xx); past that the WebSocket layer closes with 1009 without reading it.
        return 2 * self.boards.max_message_bytes if self.boards is not None else 0

    def joined_members(self) -> list[tuple[str, Member]]:
        """Every joined ``/ws`` connection of this node with its room id."""
        return [(room, member) for member, room in self._members.items()]

    def _queued_bytes(self) -> float:
        """Payload bytes waiting in every send queue of this node (classroom and whiteboard)."""
        return float(
            sum(o.queued_bytes for o in self._outboxes)
            + sum(o.queued_bytes for o in self._board_outboxes)
        )

    def ready(self) -> bool:
        return (
            not self.draining
            and self.store.ready()
            and self.bus.ready()
            and (self.boards is None or self.boards.ready())
        )

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """Route the request on one parse of its target (:func:`parse_target`): refuse a bad
        target (400/404) or a WebSocket handshake from an origin not allowed (403) before any
        upgrade, answer plain HTTP, or let ``/ws`` and ``/whiteboard/<room>/<board>`` upgrade
        (their route is kept for :meth:`_handle`)."""
        target = parse_target(request.path)
        if isinstance(target, BadTarget):
            return text(target.status, f"{target.reason}\n")
        if isinstance(target, HttpTarget) and is_admin_path(target.path):
            answer = await self.admin(target.path, target.query, request)
            if answer.status_code in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
                self.audit.record(
                    "auth",
                    "admin",
                    actor_at(_source_address(connection)),
                    code="token_invalid",
                    detail={"path": target.path[:200], "status": answer.status_code},
                )
            return answer
        if isinstance(target, HttpTarget):
            return self.routes(request)
        if self.boards is None and isinstance(target, BoardTarget | SnapshotTarget):
            return text(HTTPStatus.NOT_FOUND, "not found\n")
        if isinstance(target, SnapshotTarget):
            return await self._snapshot_download(target, _source_address(connection))
        if isinstance(target, ExportTarget):
            return await self._class_export(target, request, _source_address(connection))
        origins = request.headers.get_all("Origin")
        if not self.settings.origins.allows(origins):
            self.audit.record(
                "origin",
                "board" if isinstance(target, BoardTarget) else "ws",
                actor_at(_source_address(connection)),
                room=target.room if isinstance(target, BoardTarget) else None,
                code="origin_not_allowed",
                detail={"origin": ", ".join(origins)[:200]},
            )
            return text(HTTPStatus.FORBIDDEN, "origin not allowed (--allowed-origins)\n")
        self._targets[connection] = target
        return None

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> Response:
        return self.routes.secure(response)

    async def _snapshot_download(self, target: SnapshotTarget, address: str) -> Response:
        """``GET /whiteboard/<room>/<board>/snapshots/<id>?token=<link token>``: one Yjs update.

        The token is a snapshot link's (:mod:`signaling.snapshot_links`): for this snapshot, not
        expired, not used before on this node, and its holder still in a running session. An
        access token is refused."""
        assert self.boards is not None
        room, board, snapshot = target.room, target.board, target.snapshot
        if not snapshot.isdigit() or len(snapshot) > 18:
            return text(HTTPStatus.NOT_FOUND, "no such snapshot\n")
        token = parse_qs(target.query).get("token", [""])[0]
        try:
            grant = verify_snapshot_token(
                self.keyring, token, room=room, board=board, snapshot_id=int(snapshot)
            )
        except ClientError as exc:
            self.audit.record("auth", "snapshot", actor_at(address), room=room, code=exc.code)
            return text(HTTPStatus.FORBIDDEN, f"{exc.code}: {exc.message}\n")
        if not self._used_links.claim(grant):
            self.audit.record(
                "auth",
                "snapshot",
                actor_at(address),
                room=room,
                code="token_invalid",
                detail={"used": True},
            )
            return text(HTTPStatus.FORBIDDEN, "token_invalid: this link was used already\n")
        refusal = await self._snapshot_refusal(room, grant.identity)
        if refusal is not None:
            if refusal.status_code == HTTPStatus.SERVICE_UNAVAILABLE:
                self._used_links.release(grant)  # the server failed, not the link: retry it
            return refusal
        try:
            data = await self.boards.snapshot(room, board, int(snapshot))
        except OSError:
            self._used_links.release(grant)
            return text(HTTPStatus.SERVICE_UNAVAILABLE, "the board store is unavailable\n")
        if data is None:
            return text(HTTPStatus.NOT_FOUND, "no such snapshot\n")
        response = respond(HTTPStatus.OK, data, "application/octet-stream")
        response.headers["Content-Disposition"] = (
            f'attachment; filename="{room}-{board}-{snapshot}.yjs"'
        )
        return response

    async def _class_export(self, target: ExportTarget, request: Request, address: str) -> Response:
        """``GET /rooms/<room>/export.json`` (or ``.csv?table=chat|questions|polls|attendance``)
        with a staff access token in ``Authorization: Bearer``: the class from the room's log
        (docs/protocol.md, "Class export"). The log is read in pages and folded into a bounded
        :class:`rooms.export.ClassExport`, so memory follows the export, not the log."""
        room = target.room
        table = parse_qs(target.query).get("table", ["chat"])[0]
        if target.format == "csv" and table not in CSV_TABLES:
            return text(HTTPStatus.NOT_FOUND, f"no such table; one of {', '.join(CSV_TABLES)}\n")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self.audit.record("auth", "export", actor_at(address), room=room, code="token_invalid")
            return text(
                HTTPStatus.UNAUTHORIZED, "an access token (Authorization: Bearer) is needed\n"
            )
        try:
            participant = verify_access(self.keyring, token.strip(), room).participant
        except ClientError as exc:
            self.audit.record("auth", "export", actor_at(address), room=room, code=exc.code)
            return text(HTTPStatus.FORBIDDEN, f"{exc.code}: {exc.message}\n")
        if not participant.is_staff:
            self.audit.record(
                "auth", "export", actor_of(participant), room=room, code="not_allowed"
            )
            return text(HTTPStatus.FORBIDDEN, "not_allowed: only the staff export the class\n")
        try:
            hub = await self._hub(room)
        except StoreUnavailable:
            return text(HTTPStatus.SERVICE_UNAVAILABLE, "the room store is unavailable\n")
        try:
            if participant.identity in hub.state.removed:
                self.audit.record(
                    "auth", "export", actor_of(participant), room=room, code="participant_removed"
                )
                return text(HTTPStatus.FORBIDDEN, "participant_removed: you were removed\n")
            export = ClassExport(room)
            through, after = hub.state.last_id, 0
            while after < through:
                records = await self.store.read(room, after, min(_EXPORT_PAGE, through - after))
                if not records:
                    break
                for record in records:
                    export.add(record)
                after = records[-1].id
            export.class_name = export.class_name or hub.state.class_name
        except StoreUnavailable:
            return text(HTTPStatus.SERVICE_UNAVAILABLE, "the room store is unavailable\n")
        finally:
            if hub.idle:
                self._idle(hub)
        if target.format == "json":
            body = json.dumps(export.to_data(), ensure_ascii=False).encode()
            response = respond(HTTPStatus.OK, body, "application/json")
            filename = f"{room}-class.json"
        else:
            out = io.StringIO()
            csv.writer(out).writerows(export.rows(table))
            response = respond(HTTPStatus.OK, out.getvalue().encode(), "text/csv; charset=utf-8")
            filename = f"{room}-{table}.csv"
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response  # Cache-Control: no-store, as every answer but the static files

    async def _snapshot_refusal(self, room: str, identity: str) -> Response | None:
        """Why ``identity`` may not download ``room``'s snapshots now, as the room's state says
        (a token outlives a removal and the session's end); None when it may."""
        try:
            hub = await self._hub(room)
        except StoreUnavailable:
            return text(HTTPStatus.SERVICE_UNAVAILABLE, "the room store is unavailable\n")
        try:
            refusal = download_refusal(hub.state, identity)
        finally:
            if hub.idle:
                self._idle(hub)  # a hub opened only for this check is unloaded as usual
        if refusal is not None:
            return text(HTTPStatus.FORBIDDEN, f"{refusal.code}: {refusal.message}\n")
        return None

    def _snapshot_link(self, hub: RoomHub, member: Member, request: SnapshotLinkRequest) -> bytes:
        """The answer to ``board.snapshot_link``: an ``ack`` with the link's path, or an error."""
        participant = member.participant
        error: Exception | None = None
        if not participant.is_staff:
            error = NotAllowed("only staff download snapshots")
        elif not is_board_name(request.board):
            error = BadFieldType("board must be 1-64 of A-Za-z0-9_-", field="board")
        elif request.snapshot_id < 1:
            error = BadFieldType("snapshot_id must be a positive event id", field="snapshot_id")
        else:
            error = download_refusal(hub.state, participant.identity)
        if error is not None:
            return encode_error(error, request.ref)
        token = mint_snapshot_token(
            self.keyring,
            room=hub.room_id,
            board=request.board,
            snapshot_id=request.snapshot_id,
            identity=participant.identity,
        )
        return encode_snapshot_link(
            request.ref, snapshot_path(hub.room_id, request.board, request.snapshot_id, token)
        )

    async def _with_groups(self, hub: RoomHub, member: Member, command: Command) -> Command:
        """``breakout.open{groups}`` of a staff member with the saved set's rooms and members in
        place of the name (identities not participants of this room left out); any other command
        as it is. A student's goes on unchanged: the room refuses it (``not_allowed``).

        Raises:
            BadFieldType: no saved set of that name (field ``groups``).
            StoreUnavailable: the store failed.
        """
        if not isinstance(command, BreakoutOpen) or command.groups is None:
            return command
        participant = member.participant
        if not participant.is_staff:
            return command
        group = await saved_groups.find(self.store, participant.identity, command.groups)
        state = hub.state
        present = {i: p for i, p in state.participants.items() if i not in state.removed}
        rooms, members = saved_groups.expand(group, present)
        return dataclasses.replace(command, rooms=rooms, members=members, groups=None)

    async def drain(self) -> None:
        """Stop taking joins, tell every client to reconnect (1012), close the store."""
        self.draining = True
        if self._server is not None:
            self._server.close(close_connections=False)
        if self.balance is not None:
            await self.balance.close()
        frame = encode_reconnect("shutdown", 1000)
        outboxes = [m.outbox for m in self._members] + list(self._waiting_outboxes)
        closing = [
            o.close(CloseCode.SERVICE_RESTART, "server restarting", final_frame=frame)
            for o in outboxes
        ]
        if closing:
            await asyncio.wait(
                [asyncio.ensure_future(c) for c in closing], timeout=self.settings.shutdown_grace_s
            )
        closing = [
            o.close(CloseCode.SERVICE_RESTART, "server restarting", final_frame=None)
            for o in list(self._board_outboxes)
        ]
        if closing:
            await asyncio.wait(
                [asyncio.ensure_future(c) for c in closing], timeout=self.settings.shutdown_grace_s
            )
        for ws in list(self._connections):
            ws.transport.abort()
        if self.boards is not None:
            await self.boards.close()
        for hub in list(self._hubs.values()):
            await hub.close()
        if self.heartbeat is not None:
            await self.heartbeat.close()
        await self.bus.close()
        await self.store.close()

    # -- one connection ------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        target = self._targets.pop(ws, None)
        if isinstance(target, BoardTarget):
            self._connections.add(ws)
            try:
                await self._handle_board(ws, target)
            finally:
                self._connections.discard(ws)
            return
        if not isinstance(target, WsTarget):
            return
        address = _source_address(ws)
        CONNECTION.set(ws.id.hex[:12])  # this task's context: every line it logs carries it
        self._connections.add(ws)
        self.metrics.connections.inc()
        outbox = Outbox(
            ws,
            self.settings.send_queue_frames,
            self.metrics.slow_consumers.inc,
            self.metrics.frames_sent,
            limit_bytes=self.settings.send_queue_bytes,
        )
        self._outboxes.add(outbox)
        bucket = TokenBucket(self.settings.rate_per_s, self.settings.rate_burst)
        identity_bucket: TokenBucket | None = None
        member: Member | None = None
        hub: RoomHub | None = None
        waiter: Waiter | None = None
        media: MediaSession | None = None
        in_flight: deque[asyncio.Future[tuple[Record, ...]]] = deque()
        #: A rate-limit block is audited once, not once per refused frame, until a frame passes.
        limited = False
        left = False
        join_deadline = asyncio.get_running_loop().call_later(
            self.settings.join_timeout_s, self._join_timed_out, outbox
        )
        try:
            async for frame in ws:
                self.metrics.frames_received.inc()
                if outbox.closed:
                    break
                if member is None and waiter is not None and waiter.entered is not None:
                    member = waiter.entered  # admitted from the waiting room: joined now
                    key = _identity_key(member_room(hub), member.participant)
                    self._waiting_outboxes.discard(outbox)
                    self._waiting_held.release(key, outbox)
                    identity_bucket = self._identity_buckets.acquire(key)
                try:
                    message = self._read(frame, bucket)
                    if isinstance(message, Join):
                        if member is not None or waiter is not None:
                            raise AlreadyJoined("this connection has joined already")
                        ROOM.set(message.room)
                        joined = await self._join(message, outbox, address)
                        if joined is None:
                            return
                        hub, entry = joined
                        join_deadline.cancel()
                        if isinstance(entry, Waiter):
                            waiter = entry
                            continue
                        member = entry
                        identity_bucket = self._identity_buckets.acquire(
                            _identity_key(hub.room_id, member.participant)
                        )
                    elif isinstance(message, Ping):
                        pong = encode_pong(message.ref, now_ms())
                        if hub is None:
                            outbox.put(pong)
                        else:
                            hub.reply(outbox, pong)  # after the events already delivered
                    elif waiter is not None and member is None:
                        if not isinstance(message, CommandFrame):
                            raise NotJoined("you are in the waiting room: staff let you in")
                        if isinstance(message.command, Leave):
                            await outbox.close(CloseCode.NORMAL_CLOSURE, "left", final_frame=None)
                            return
                        raise NotJoined("you are in the waiting room: staff let you in")
                    elif member is None or hub is None:
                        raise NotJoined("send join first")
                    elif identity_bucket is not None and (wait_ms := identity_bucket.take()):
                        raise RateLimited(
                            "too many frames from your connections together; slow down",
                            retry_after_ms=wait_ms,
                        )
                    elif isinstance(message, SnapshotLinkRequest):
                        hub.reply(outbox, self._snapshot_link(hub, member, message))
                    elif isinstance(message, GroupsRequest):
                        answer = await saved_groups.answer(self.store, member.participant, message)
                        hub.reply(outbox, answer)
                    elif isinstance(message, MediaFrame):
                        read_at = time.perf_counter()
                        if media is None:
                            media = MediaSession(self.media, hub, member.participant, outbox.put)
                        hub.reply(outbox, await self._media(media, message))
                        self.metrics.command_seconds.labels(message.type).observe(
                            time.perf_counter() - read_at
                        )
                    else:
                        read_at = time.perf_counter()
                        command = await self._with_groups(hub, member, message.command)
                        span = tracing.start_command(message.command.type, hub.room_id)
                        with unbound():  # the room's batch writer is not this connection's
                            done = hub.submit(member, message.ref, command, span)
                        done.add_done_callback(
                            functools.partial(
                                _observe_command,
                                self.metrics.command_seconds.labels(command.type),
                                read_at,
                            )
                        )
                        done.add_done_callback(
                            functools.partial(_if_unavailable, hub.room_id, outbox, message.ref)
                        )
                        if span is not None:
                            done.add_done_callback(functools.partial(_end_command, span))
                        if command.type in AUDITED:
                            done.add_done_callback(
                                functools.partial(
                                    self.audit.command, hub.room_id, member.participant, command
                                )
                            )
                        in_flight.append(done)
                        while in_flight and in_flight[0].done():
                            in_flight.popleft()
                        if isinstance(message.command, Leave):
                            left = True
                            await asyncio.wait(in_flight)
                            hub.flush()  # hand.lowered and the ack go out before the close
                            await outbox.close(CloseCode.NORMAL_CLOSURE, "left", final_frame=None)
                            return
                        if len(in_flight) >= _COMMANDS_IN_FLIGHT:
                            await asyncio.wait([in_flight[0]])
                    limited = False
                except ClientError as exc:
                    self.metrics.command_errors.labels(exc.code).inc()
                    if isinstance(exc, RateLimited) and not limited:
                        limited = True
                        self.audit.record(
                            "rate_limit",
                            "frames" if member is not None else "join",
                            actor_of(member.participant) if member else actor_at(address),
                            room=ROOM.get(),
                            code=exc.code,
                            detail={"retry_after_ms": exc.retry_after_ms},
                        )
                    ref = peek_ref(frame) if isinstance(frame, bytes) else None
                    outbox.put(encode_error(exc, ref))
                except StoreUnavailable as exc:
                    log.error("room %s: store unavailable: %s", ROOM.get(), exc)
                    ref = peek_ref(frame) if isinstance(frame, bytes) else None
                    retry_ms = 250 + random.randrange(250)  # jitter: clients do not retry at once
                    error = Unavailable("the store is unavailable; retry", retry_after_ms=retry_ms)
                    outbox.put(encode_error(error, ref))
        except ConnectionClosed:
            pass
        finally:
            join_deadline.cancel()
            self._connections.discard(ws)
            self._outboxes.discard(outbox)
            self.metrics.connections.dec()
            if waiter is not None and hub is not None:
                self._waiting_outboxes.discard(outbox)
                self._waiting_held.release(_identity_key(hub.room_id, waiter.participant), outbox)
                if member is None and waiter.entered is not None:
                    member = waiter.entered  # admitted, closed before it sent a frame
                    # Held as the read loop would have, so the release below balances.
                    self._identity_buckets.acquire(_identity_key(hub.room_id, member.participant))
                elif member is None:
                    hub.unwait(waiter)
            if member is not None and hub is not None:
                self._members.pop(member, None)
                with unbound():
                    hub.remove(member)
                self._release_identity(hub, member)
                p = member.participant
                log.info(
                    "leave: %s (%s) %s",
                    p.identity,
                    p.role.value,
                    "left" if left else f"closed {ws.close_code}",
                    extra={
                        "event": "leave",
                        "identity": p.identity,
                        "role": p.role.value,
                        "close_code": ws.close_code,
                    },
                )
            if media is not None:
                await media.close()

    async def _handle_board(self, ws: ServerConnection, target: BoardTarget) -> None:
        """One y-websocket connection: verify the token (query parameter ``token``), then let the
        whiteboard endpoint serve it and close with the code it returns."""
        assert self.boards is not None
        room, board = target.room, target.board
        CONNECTION.set(ws.id.hex[:12])  # this task's context: every line it logs carries them
        ROOM.set(room)
        token = parse_qs(target.query).get("token", [""])[0]
        outbox = Outbox(
            ws,
            self.settings.board_send_queue_frames,
            self.metrics.slow_consumers.inc,
            self.metrics.frames_sent,
            overflow_close=(CloseCode.TRY_AGAIN_LATER, None),
            limit_bytes=self.settings.board_send_queue_bytes,
        )
        self._board_outboxes.add(outbox)
        self.metrics.board_connections.inc()
        held: tuple[str, str] | None = None
        try:
            if self.draining:
                close: tuple[int, str] | None = (CloseCode.SERVICE_RESTART, "server restarting")
            else:
                try:
                    participant = verify(self.keyring, token, room)
                except ClientError as exc:
                    self.audit.record(
                        "auth", "board", actor_at(_source_address(ws)), room=room, code=exc.code
                    )
                    close = (exc.close_code or CloseCode.UNAUTHORIZED, exc.message)
                else:
                    # Only now may a message be as large as a board's (a frame's limit is taken
                    # when its first byte arrives; y-websocket's first messages are small), and
                    # so few are read ahead of the one being applied.
                    ws.protocol.max_message_size = self._board_ws_max_size
                    ws.recv_messages.high, ws.recv_messages.low = _BOARD_READ_AHEAD
                    held = _identity_key(room, participant)
                    self._hold_board(held, outbox)
                    try:
                        close = await self.boards.serve(room, board, participant, outbox, ws)
                    except StoreUnavailable as exc:  # admitting to the room appends to its log
                        log.error("room %s: store unavailable: %s", room, exc)
                        close = (CloseCode.INTERNAL_ERROR, "room store unavailable; reconnect")
            if close is not None:
                code, reason = close
                self.metrics.board_closes.labels(str(code)).inc()
                reason = reason.encode()[:_REASON_MAX].decode(errors="ignore")
                await outbox.close(code, reason, final_frame=None)
        except ConnectionClosed:
            pass
        finally:
            if held is not None:
                self._boards_held.release(held, outbox)
            self._board_outboxes.discard(outbox)
            self.metrics.board_connections.dec()

    def _read(
        self, frame: str | bytes, bucket: TokenBucket
    ) -> Join | Ping | CommandFrame | MediaFrame | SnapshotLinkRequest | GroupsRequest:
        """Check one frame against the limits and decode it; raises ClientError."""
        wait_ms = bucket.take()
        if wait_ms:
            raise RateLimited("too many frames; slow down", retry_after_ms=wait_ms)
        if isinstance(frame, str):
            raise TextFrame("text frames are not part of the protocol; send binary MessagePack")
        if len(frame) > self.settings.max_frame_bytes:
            raise FrameTooLarge(f"frames are at most {self.settings.max_frame_bytes} bytes")
        return decode(frame)

    async def _media(self, media: MediaSession, message: MediaFrame) -> bytes:
        """One media frame's answer; a failure in the SFU is reported (``internal``) and
        leaves this connection, and everyone else's media, as it was."""
        try:
            with tracing.root(
                "liveclass.media", "SERVER", **{"liveclass.media.type": message.type}
            ):
                return await media.handle(message)
        except ClientError:
            raise
        except Exception:
            log.exception("media %s failed for %s", message.type, media.peer_id)
            raise Internal(f"{message.type} failed in the SFU") from None

    async def _join(
        self, join: Join, outbox: Outbox, address: str
    ) -> tuple[RoomHub, Member | Waiter] | None:
        """Verify the token, then admit the connection within the node's join budget (or let it
        wait in the room's waiting room); None when refused (and closed)."""
        try:
            if self.draining:
                raise _Draining()
            access = self._authenticate(join, address)
            wait_ms = self._join_bucket.take()
            if wait_ms:
                # Jitter spreads the retries of a storm instead of bringing it back at once.
                retry_ms = wait_ms + random.randrange(max(wait_ms, 50))
                raise RateLimited("too many joins right now; join again", retry_after_ms=retry_ms)
            hub, member = await self._enter(join.room, access, outbox, join.last_id)
        except _Draining:
            await outbox.close(
                CloseCode.SERVICE_RESTART,
                "server restarting",
                final_frame=encode_reconnect("shutdown", 1000),
            )
            return None
        except ClientError as exc:
            self.metrics.join_rejections.labels(exc.code).inc()
            if exc.close_code is None:
                raise
            await outbox.close(exc.close_code, exc.code, final_frame=encode_error(exc))
            return None
        except JoinRefused as exc:
            self.metrics.join_rejections.labels(exc.error.code).inc()
            self._log_join(access.participant, join.last_id, refused=exc.error.code)
            self.audit.record(
                "join",
                "join",
                actor_of(access.participant),
                room=join.room,
                code=exc.error.code,
            )
            await outbox.close(exc.close_code, exc.error.code, final_frame=encode_error(exc.error))
            return None
        if isinstance(member, Waiter):
            log.info(
                "waiting: %s (%s)",
                access.participant.identity,
                access.participant.role.value,
                extra={
                    "event": "waiting",
                    "identity": access.participant.identity,
                    "role": access.participant.role.value,
                },
            )
            member.on_enter = functools.partial(self._admitted, hub)
            self._waiting_outboxes.add(outbox)
            key = _identity_key(hub.room_id, member.participant)
            for oldest in self._waiting_held.hold(key, outbox):
                error = ConnectionReplaced("this identity waits on a newer connection")
                asyncio.get_running_loop().create_task(
                    oldest.close(
                        CloseCode.CONNECTION_REPLACED, error.code, final_frame=encode_error(error)
                    )
                )
            return hub, member
        self._entered(hub, member)
        self._log_join(member.participant, join.last_id, resumed=member.resumed)
        return hub, member

    def _entered(self, hub: RoomHub, member: Member) -> None:
        """A connection joined ``hub`` (at once, or admitted from its waiting room)."""
        self._members[member] = hub.room_id
        if self.balance is not None:
            self.balance.joined(hub.room_id, member.participant.identity)
        self._hold_identity(hub, member)

    def _admitted(self, hub: RoomHub, member: Member) -> None:
        """A waiting connection was let in by staff."""
        self._entered(hub, member)
        self._log_join(member.participant, None)

    def _log_join(
        self,
        participant: Participant,
        last_id: int | None,
        *,
        resumed: bool | None = None,
        refused: str | None = None,
    ) -> None:
        """One INFO line per join: ``join`` (no ``last_id``) or ``resume``, with its outcome:
        ``exact`` (the missed events), ``snapshot`` (a fresh welcome: the log no longer reached
        back, or the participant's place changed) or ``refused`` with the error code."""
        event = "join" if last_id is None else "resume"
        if refused is not None:
            outcome = "refused"
        elif last_id is None:
            outcome = "ok"
        else:
            outcome = "exact" if resumed else "snapshot"
        if last_id is not None:
            self.metrics.resumes.labels(outcome).inc()
        log.info(
            "%s: %s (%s) %s%s",
            event,
            participant.identity,
            participant.role.value,
            outcome,
            f" {refused}" if refused else "",
            extra={
                "event": event,
                "identity": participant.identity,
                "role": participant.role.value,
                "outcome": outcome,
                "code": refused,
                "last_id": last_id,
            },
        )

    async def _enter(
        self, room_id: str, access: Access, outbox: Outbox, last_id: int | None
    ) -> tuple[RoomHub, Member | Waiter]:
        """Open the room and join it. The room stays loaded while the join is under way: a hub
        unloaded meanwhile would take the member into a room it no longer hears.

        Raises:
            JoinRefused: the room refused the join.
            StoreUnavailable: the store failed.
        """
        self._joining[room_id] += 1
        hub: RoomHub | None = None
        try:
            hub = await self._hub(room_id)
            return hub, await hub.join(access.participant, outbox, last_id, access.class_name)
        finally:
            self._joining[room_id] -= 1
            if not self._joining[room_id]:
                del self._joining[room_id]
            if hub is not None and hub.idle and self._hubs.get(room_id) is hub:
                self._idle(hub)  # a refused join leaves the room as idle as it found it

    def _join_timed_out(self, outbox: Outbox) -> None:
        error = TokenInvalid(f"no join within {self.settings.join_timeout_s:g} s of connecting")
        self.metrics.join_rejections.labels(error.code).inc()
        asyncio.get_running_loop().create_task(
            outbox.close(CloseCode.UNAUTHORIZED, error.code, final_frame=encode_error(error))
        )

    def _hold_identity(self, hub: RoomHub, member: Member) -> None:
        """Count a joined connection against its identity's cap; past the cap the oldest of the
        identity's connections is closed (``connection_replaced``, 4410)."""
        error = ConnectionReplaced(
            "this identity opened a newer connection to the room; this one is closed"
        )
        for oldest in self._ws_held.hold(_identity_key(hub.room_id, member.participant), member):
            if oldest.closing:
                continue
            oldest.closing = True
            self.metrics.command_errors.labels(error.code).inc()
            asyncio.get_running_loop().create_task(
                oldest.outbox.close(
                    CloseCode.CONNECTION_REPLACED, error.code, final_frame=encode_error(error)
                )
            )

    def _release_identity(self, hub: RoomHub, member: Member) -> None:
        key = _identity_key(hub.room_id, member.participant)
        self._identity_buckets.release(key)
        self._ws_held.release(key, member)

    def _hold_board(self, key: tuple[str, str], outbox: Outbox) -> None:
        """Count a verified board connection against its identity's cap (board connections are
        counted apart from ``/ws`` ones); past it the oldest is closed with 4410."""
        for oldest in self._boards_held.hold(key, outbox):
            self.metrics.board_closes.labels(str(int(CloseCode.CONNECTION_REPLACED))).inc()
            asyncio.get_running_loop().create_task(
                oldest.close(CloseCode.CONNECTION_REPLACED, "connection_replaced", final_frame=None)
            )

    def _authenticate(self, join: Join, address: str) -> Access:
        """The join's verified participant and class name. Only a verified token spends the
        node's join budget; a failure spends the source address's failed-join budget instead,
        and past that budget it is answered ``rate_limited`` (the connection stays open) rather
        than with its token error.

        Raises:
            ClientError: the token error (``token_*``), or ``rate_limited``.
        """
        try:
            return verify_access(self.keyring, join.token, join.room)
        except ClientError as exc:
            wait_ms = self._auth_failures.take(address)
            if wait_ms:
                raise RateLimited(
                    "too many failed joins from this address; join again later",
                    retry_after_ms=wait_ms,
                ) from None
            self.audit.record("auth", "join", actor_at(address), room=join.room, code=exc.code)
            raise

    # -- rooms ---------------------------------------------------------------------------------

    async def _hub(self, room_id: str) -> RoomHub:
        timer = self._idle_timers.pop(room_id, None)
        if timer is not None:
            timer.cancel()
        hub = self._hubs.get(room_id)
        if hub is not None:
            return hub
        opening = self._opening.get(room_id)
        if opening is not None:
            return await asyncio.shield(opening)
        future: asyncio.Future[RoomHub] = asyncio.get_running_loop().create_future()
        self._opening[room_id] = future
        try:
            closing = self._closing.get(room_id)
            if closing is not None:
                await asyncio.wait([closing])
            hub = RoomHub(
                room_id,
                self.store,
                self.bus,
                self.settings.hub,
                self.metrics,
                self._idle,
                self.ice_servers,
            )
            with in_room(room_id):  # its subscription's tasks are the room's, not a connection's
                await hub.open()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._opening[room_id]
        self._hubs[room_id] = hub
        self.metrics.rooms.set(len(self._hubs))
        future.set_result(hub)
        return hub

    # -- the admin API (signaling/admin.py) --------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        """The status page's document (signaling/admin.py): this node's facts, or with a Redis
        Cluster every node's from their heartbeats, the SFU workers and the cluster's state.

        Raises:
            ClusterUnavailable: the cluster did not answer.
        """
        if self.heartbeat is not None:
            return await self.heartbeat.document()
        workers = [] if self.media is None else [{"id": "in-process", "url": "", "state": "live"}]
        return status_document([self.node_facts()], workers, None)

    def node_facts(self) -> dict[str, Any]:
        """This node: id, address, connections, rooms open (with their participants online
        here, each list bounded: ``online`` counts them all), version, when it started and
        whether it is ready."""
        rooms = []
        for room_id, hub in sorted(self._hubs.items())[:ROOMS_LISTED]:
            online = sorted({m.participant for m in hub.members}, key=lambda p: p.identity)
            listed = [
                {"identity": p.identity, "name": p.name, "role": p.role.value}
                for p in online[:PARTICIPANTS_LISTED]
            ]
            rooms.append({"room": room_id, "online": len(online), "participants": listed})
        return {
            "id": str(getattr(self.bus, "node_id", "") or "embedded"),
            "address": self.public_url,
            "connections": len(self._connections),
            "rooms": len(self._hubs),
            "rooms_open": rooms,
            "version": VERSION,
            "started": iso_time(self.started_at),
            "ready": self.ready(),
        }

    async def admin_command(self, room: str, command: Command) -> int:
        """Decide and append ``command`` in ``room`` as :data:`signaling.admin.ADMIN`; returns
        how many events it appended.

        Raises:
            RoomError: the room's rules refused it (``NoSuchRoom`` for a room with no log).
            StoreUnavailable: nothing was appended.
        """
        hub = await self._hub(room)
        code: str | None = None
        try:
            if hub.state.last_id == 0:
                raise NoSuchRoom(f"{room} has never been joined")
            return len(await hub.propose(ADMIN, command))
        except RoomError as exc:
            code = exc.code
            raise
        except NoSuchRoom:
            code = "no_such_room"
            raise
        except StoreUnavailable:
            code = "unavailable"
            raise
        finally:
            if hub.idle:
                self._idle(hub)
            self.audit.record(
                AUDITED.get(command.type, "moderation"),
                command.type,
                {"identity": ADMIN.identity, "role": "admin"},
                room=room,
                target=getattr(command, "identity", None),
                code=code,
                outcome="failed" if code == "unavailable" else None,
                detail=command_detail(command),
            )

    async def drain_worker(self, worker_id: str, draining: bool) -> bool:
        """Take an SFU worker out of placement (``draining`` False: put it back) through the
        cluster's registry; False when no such worker is registered (or media is in-process).

        Raises:
            RegistryUnavailable: the cluster did not answer.
        """
        registry = getattr(self.media, "registry", None)
        if registry is None:
            return False
        changed = bool(await registry.drain(worker_id, draining))
        if changed:
            self.audit.record(
                "sfu",
                "drain" if draining else "undrain",
                {"identity": ADMIN.identity, "role": "admin"},
                target=worker_id,
            )
        return changed

    def _idle(self, hub: RoomHub) -> None:
        """Unload a room no local member has used for ``room_idle_s``."""
        if hub.room_id in self._idle_timers:
            return

        def unload() -> None:
            self._idle_timers.pop(hub.room_id, None)
            if hub.room_id in self._joining:
                return  # the join's end arms the timer again if the room is still idle then
            if hub.idle and self._hubs.get(hub.room_id) is hub:
                del self._hubs[hub.room_id]
                self.metrics.rooms.set(len(self._hubs))
                closing = asyncio.get_running_loop().create_task(hub.close())
                self._closing[hub.room_id] = closing
                closing.add_done_callback(lambda task: self._closed(hub.room_id, task))

        loop = asyncio.get_running_loop()
        self._idle_timers[hub.room_id] = loop.call_later(self.settings.room_idle_s, unload)

    def _closed(self, room_id: str, task: asyncio.Task[None]) -> None:
        if self._closing.get(room_id) is task:
            del self._closing[room_id]
        if not task.cancelled() and task.exception() is not None:
            log.warning("room %s: closing failed: %s", room_id, task.exception())


class _Draining(Exception):
    pass


def _if_unavailable(
    room_id: str, outbox: Outbox, ref: int, done: asyncio.Future[tuple[Record, ...]]
) -> None:
    """A submitted command's store failure becomes its ``unavailable`` error frame (the writer
    answered every other outcome itself)."""
    if done.cancelled():
        return
    exc = done.exception()
    if isinstance(exc, StoreUnavailable):
        log.error("room %s: store unavailable: %s", room_id, exc)
        retry_ms = 250 + random.randrange(250)  # jitter: clients do not retry at once
        outbox.put(
            encode_error(
                Unavailable("the store is unavailable; retry", retry_after_ms=retry_ms), ref
            )
        )


def _observe_command(
    histogram: Any, read_at: float, done: asyncio.Future[tuple[Record, ...]]
) -> None:
    """A command was answered (ack, error or ``unavailable``): how long since its frame was read
    (``liveclass_command_seconds``)."""
    histogram.observe(time.perf_counter() - read_at)


def _end_command(span: Any, done: asyncio.Future[tuple[Record, ...]]) -> None:
    """End a command's span once it was answered (with the error code it was refused with)."""
    exc = None if done.cancelled() else done.exception()
    code = "cancelled" if done.cancelled() else getattr(exc, "code", None)
    tracing.end(span, code if exc is not None or done.cancelled() else None)


def member_room(hub: RoomHub | None) -> str:
    """The room of a connection that has a hub (joined, or waiting to)."""
    assert hub is not None
    return hub.room_id


def _identity_key(room_id: str, participant: Participant) -> tuple[str, str]:
    return room_id, participant.identity


def _source_address(ws: ServerConnection) -> str:
    """The peer's IP address (behind HAProxy in ``mode tcp``: HAProxy's)."""
    peer = ws.remote_address
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
