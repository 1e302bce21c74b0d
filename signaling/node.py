"""SignalingNode: the asyncio edge. WebSocket connections in, room hubs behind them.

A node holds connections and hubs only; what is acknowledged lives in the store. The per-connection
loop reads frames in order, enforces the frame size and rate limit, decodes against the protocol
and hands commands to the room's hub. Bad input gets a typed error frame and the connection and the
room go on (docs/protocol.md, "Error codes").
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from rooms import Leave, Participant

from .auth import Keyring, verify
from .boards import BoardEndpoint, OpenRoom
from .bus import Bus
from .codec import (
    CommandFrame,
    Join,
    MediaFrame,
    Ping,
    decode,
    encode_error,
    encode_pong,
    encode_reconnect,
    peek_ref,
)
from .errors import (
    AlreadyJoined,
    ClientError,
    FrameTooLarge,
    Internal,
    NotJoined,
    RateLimited,
    TextFrame,
    Unavailable,
)
from .http import HttpRoutes, HttpSettings, respond, text
from .hub import HubSettings, JoinRefused, Member, RoomHub, now_ms
from .media import MediaSession
from .metrics import Metrics
from .outbox import Outbox
from .ratelimit import TokenBucket
from .store import EventStore, StoreUnavailable

log = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_INTERNAL_ERROR = 1011
CLOSE_SERVICE_RESTART = 1012
CLOSE_TRY_AGAIN_LATER = 1013
#: Close reasons are at most 123 bytes (RFC 6455 section 5.5.1).
_REASON_MAX = 120


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
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    room_idle_s: float = 30.0
    shutdown_grace_s: float = 5.0
    #: Joins admitted per second (and burst) on this node; past it a join is answered
    #: ``rate_limited`` with ``retry_after_ms`` (jittered) and the client sends it again.
    join_rate_per_s: float = 500.0
    join_burst: float = 500.0
    #: Pending TCP connections the kernel queues (a join storm opens hundreds at once).
    listen_backlog: int = 1024
    hub: HubSettings = field(default_factory=HubSettings)
    #: Frames queued for a whiteboard connection that is behind; one more closes it with 1013.
    board_send_queue_frames: int = 4096
    #: Payload bytes queued for a whiteboard connection that is behind; past it: 1013.
    board_send_queue_bytes: int = 4 * 1024 * 1024


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
        self.metrics = metrics or Metrics()
        self.routes = HttpRoutes(http, keyring, self.ready, self.metrics.registry)
        self.draining = False
        self._hubs: dict[str, RoomHub] = {}
        self._opening: dict[str, asyncio.Future[RoomHub]] = {}
        self._idle_timers: dict[str, asyncio.TimerHandle] = {}
        self._members: dict[Member, None] = {}
        self._connections: set[ServerConnection] = set()
        self._server: Server | None = None
        self._join_bucket = TokenBucket(settings.join_rate_per_s, settings.join_burst)

    # -- serving -------------------------------------------------------------------------------

    async def start(self) -> Server:
        """Connect the bus, then listen.

        Raises:
            signaling.redis_cluster.ClusterUnavailable: the cluster cannot be reached.
            OSError: the address cannot be bound.
        """
        s = self.settings
        await self.bus.start()
        self._server = await serve(
            self._handle,
            s.host,
            s.port,
            process_request=self._process_request,
            compression=None,
            # The largest limit; each connection gets its own in _process_request.
            max_size=max(s.ws_max_size, self._board_ws_max_size),
            ping_interval=s.ping_interval_s,
            ping_timeout=s.ping_timeout_s,
            close_timeout=2,
            server_header="liveclass",
            backlog=s.listen_backlog,
        )
        return self._server

    @property
    def _board_ws_max_size(self) -> int:
        # Up to twice the limit a message is read and refused with 4413 (y-websocket clients do
        # not retry 44xx); past that the WebSocket layer closes with 1009 without reading it.
        return 2 * self.boards.max_message_bytes if self.boards is not None else 0

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
        path = urlsplit(request.path).path
        if path.startswith("/whiteboard/") and self.boards is not None:
            parts = path.split("/")
            if len(parts) == 4:
                connection.protocol.max_message_size = self._board_ws_max_size
                return None
            if len(parts) == 6 and parts[4] == "snapshots":
                return await self._snapshot_download(request, parts)
            return text(HTTPStatus.NOT_FOUND, "not found\n")
        connection.protocol.max_message_size = self.settings.ws_max_size
        return self.routes(request)

    async def _snapshot_download(self, request: Request, parts: list[str]) -> Response:
        """``GET /whiteboard/<room>/<board>/snapshots/<id>?token=<staff jwt>``: one Yjs update."""
        assert self.boards is not None
        room, board, snapshot = unquote(parts[2]), unquote(parts[3]), parts[5]
        token = parse_qs(urlsplit(request.path).query).get("token", [""])[0]
        try:
            participant = verify(self.keyring, token, room)
        except ClientError as exc:
            return text(HTTPStatus.FORBIDDEN, f"{exc.code}: {exc.message}\n")
        if not participant.is_staff:
            return text(HTTPStatus.FORBIDDEN, "not_allowed: only staff download snapshots\n")
        if not snapshot.isdigit():
            return text(HTTPStatus.NOT_FOUND, "no such snapshot\n")
        try:
            data = await self.boards.snapshot(room, board, int(snapshot))
        except OSError:
            return text(HTTPStatus.SERVICE_UNAVAILABLE, "the board store is unavailable\n")
        if data is None:
            return text(HTTPStatus.NOT_FOUND, "no such snapshot\n")
        response = respond(HTTPStatus.OK, data, "application/octet-stream")
        response.headers["Content-Disposition"] = (
            f'attachment; filename="{room}-{board}-{snapshot}.yjs"'
        )
        return response

    async def drain(self) -> None:
        """Stop taking joins, tell every client to reconnect (1012), close the store."""
        self.draining = True
        if self._server is not None:
            self._server.close(close_connections=False)
        frame = encode_reconnect("shutdown", 1000)
        closing = [
            m.outbox.close(CLOSE_SERVICE_RESTART, "server restarting", final_frame=frame)
            for m in list(self._members)
        ]
        if closing:
            await asyncio.wait(
                [asyncio.ensure_future(c) for c in closing], timeout=self.settings.shutdown_grace_s
            )
        closing = [
            o.close(CLOSE_SERVICE_RESTART, "server restarting", final_frame=None)
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
        await self.bus.close()
        await self.store.close()

    # -- one connection ------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        if (
            self.boards is not None
            and ws.request is not None
            and ws.request.path.startswith("/whiteboard/")
        ):
            self._connections.add(ws)
            try:
                await self._handle_board(ws)
            finally:
                self._connections.discard(ws)
            return
        self._connections.add(ws)
        self.metrics.connections.inc()
        outbox = Outbox(
            ws,
            self.settings.send_queue_frames,
            self.metrics.slow_consumers.inc,
            self.metrics.frames_sent,
            limit_bytes=self.settings.send_queue_bytes,
        )
        bucket = TokenBucket(self.settings.rate_per_s, self.settings.rate_burst)
        member: Member | None = None
        hub: RoomHub | None = None
        media: MediaSession | None = None
        try:
            async for frame in ws:
                self.metrics.frames_received.inc()
                if outbox.closed:
                    break
                try:
                    message = self._read(frame, bucket)
                    if isinstance(message, Join):
                        if member is not None:
                            raise AlreadyJoined("this connection has joined already")
                        joined = await self._join(message, outbox)
                        if joined is None:
                            return
                        hub, member = joined
                    elif isinstance(message, Ping):
                        pong = encode_pong(message.ref, now_ms())
                        if hub is None:
                            outbox.put(pong)
                        else:
                            hub.reply(outbox, pong)  # after the events already delivered
                    elif member is None or hub is None:
                        raise NotJoined("send join first")
                    elif isinstance(message, MediaFrame):
                        if media is None:
                            media = MediaSession(self.media, hub, member.participant, outbox.put)
                        hub.reply(outbox, await self._media(media, message))
                    else:
                        await hub.execute(member, message.ref, message.command)
                        if isinstance(message.command, Leave):
                            await outbox.close(CLOSE_NORMAL, "left", final_frame=None)
                            return
                except ClientError as exc:
                    self.metrics.command_errors.labels(exc.code).inc()
                    ref = peek_ref(frame) if isinstance(frame, bytes) else None
                    outbox.put(encode_error(exc, ref))
                except StoreUnavailable as exc:
                    log.error("store unavailable: %s", exc)
                    ref = peek_ref(frame) if isinstance(frame, bytes) else None
                    retry_ms = 250 + random.randrange(250)  # jitter: clients do not retry at once
                    error = Unavailable("the store is unavailable; retry", retry_after_ms=retry_ms)
                    outbox.put(encode_error(error, ref))
        except ConnectionClosed:
            pass
        finally:
            self._connections.discard(ws)
            self.metrics.connections.dec()
            if member is not None and hub is not None:
                self._members.pop(member, None)
                hub.remove(member)
            if media is not None:
                await media.close()

    async def _handle_board(self, ws: ServerConnection) -> None:
        """One y-websocket connection: verify the token (query parameter ``token``), then let the
        whiteboard endpoint serve it and close with the code it returns."""
        assert ws.request is not None and self.boards is not None
        url = urlsplit(ws.request.path)
        _, _, room, board = url.path.split("/")
        room, board = unquote(room), unquote(board)
        token = parse_qs(url.query).get("token", [""])[0]
        outbox = Outbox(
            ws,
            self.settings.board_send_queue_frames,
            self.metrics.slow_consumers.inc,
            self.metrics.frames_sent,
            overflow_close=(CLOSE_TRY_AGAIN_LATER, None),
            limit_bytes=self.settings.board_send_queue_bytes,
        )
        self._board_outboxes.add(outbox)
        self.metrics.board_connections.inc()
        try:
            if self.draining:
                close: tuple[int, str] | None = (CLOSE_SERVICE_RESTART, "server restarting")
            else:
                try:
                    participant = verify(self.keyring, token, room)
                except ClientError as exc:
                    close = (exc.close_code or 4401, exc.message)
                else:
                    try:
                        close = await self.boards.serve(room, board, participant, outbox, ws)
                    except StoreUnavailable as exc:  # admitting to the room appends to its log
                        log.error("store unavailable: %s", exc)
                        close = (CLOSE_INTERNAL_ERROR, "room store unavailable; reconnect")
            if close is not None:
                code, reason = close
                self.metrics.board_closes.labels(str(code)).inc()
                reason = reason.encode()[:_REASON_MAX].decode(errors="ignore")
                await outbox.close(code, reason, final_frame=None)
        except ConnectionClosed:
            pass
        finally:
            self._board_outboxes.discard(outbox)
            self.metrics.board_connections.dec()

    def _read(
        self, frame: str | bytes, bucket: TokenBucket
    ) -> Join | Ping | CommandFrame | MediaFrame:
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
            return await media.handle(message)
        except ClientError:
            raise
        except Exception:
            log.exception("media %s failed for %s", message.type, media.peer_id)
            raise Internal(f"{message.type} failed in the SFU") from None

    async def _join(self, join: Join, outbox: Outbox) -> tuple[RoomHub, Member] | None:
        """Verify the token and admit the connection; None when refused (and closed)."""
        try:
            if self.draining:
                raise _Draining()
            wait_ms = self._join_bucket.take()
            if wait_ms:
                # Jitter spreads the retries of a storm instead of bringing it back at once.
                retry_ms = wait_ms + random.randrange(max(wait_ms, 50))
                raise RateLimited("too many joins right now; join again", retry_after_ms=retry_ms)
            participant = verify(self.keyring, join.token, join.room)
            hub = await self._hub(join.room)
            member = await hub.join(participant, outbox, join.last_id)
        except _Draining:
            await outbox.close(
                CLOSE_SERVICE_RESTART,
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
            await outbox.close(exc.close_code, exc.error.code, final_frame=encode_error(exc.error))
            return None
        self._members[member] = None
        return hub, member

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
            hub = RoomHub(
                room_id,
                self.store,
                self.bus,
                self.settings.hub,
                self.metrics,
                self._idle,
                self.ice_servers,
            )
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

    def _idle(self, hub: RoomHub) -> None:
        """Unload a room no local member has used for ``room_idle_s``."""
        if hub.room_id in self._idle_timers:
            return

        def unload() -> None:
            self._idle_timers.pop(hub.room_id, None)
            if hub.idle and self._hubs.get(hub.room_id) is hub:
                del self._hubs[hub.room_id]
                self.metrics.rooms.set(len(self._hubs))
                asyncio.get_running_loop().create_task(hub.close())

        loop = asyncio.get_running_loop()
        self._idle_timers[hub.room_id] = loop.call_later(self.settings.room_idle_s, unload)


class _Draining(Exception):
    pass
