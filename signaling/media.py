"""Media signaling on ``/ws``: SDP offers and answers between a client and the SFU worker, and the
classroom's media rules carried out at the SFU.

Frames (docs/protocol.md, "Media"):

- ``media.publish {ref, sdp, sources}``: the client's offer for its publish connection;
  ``sources`` maps each m-line's ``mid`` to ``"camera"``, ``"microphone"`` or ``"screen"``.
  Answered ``ack {ref, ids: [], sdp}`` with the SFU's answer.
- ``media.unpublish {ref, source}``: stop publishing one source (the user stopped the camera
  or the screen share): the SFU removes its producer at once; ``ack``. A later
  ``media.publish`` naming that source's m-line publishes it again.
- ``media.subscribe {ref}``: start the subscribe connection; answered ``ack``, then the server
  sends ``media.offer {version, sdp, producers}`` now and whenever producers come and go.
- ``media.answer {ref, version, sdp}``: the client's answer to offer ``version``; ``ack``.
- ``media.candidate {ref, transport, candidate, sdp_mid}``: a trickled ICE candidate (RFC 8838)
  for the ``"publish"`` or ``"subscribe"`` connection; ``ack``.
- ``media.reset {reason}`` (server): the SFU worker holding this room's media was lost; the
  client publishes and subscribes again, on new connections.

The room's rules (:mod:`rooms.media`) decide which of a participant's sources are forwarded (a
staff mute, lecture mode, the teacher's permission) and which Router (main room or breakout) the
participant's media is in. A :class:`MediaSession` follows the room's log and tells the worker
whenever either changes, so the rules hold at the SFU, not only in the clients.

Errors are ``error`` frames with the codes of :mod:`signaling.errors` (``bad_sdp``,
``unsupported_codec``, ``stale_answer``, ``no_transport``, ``not_allowed``, ``media_unavailable``,
``bad_field``); a refused request leaves the room's media as it was.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Any

from rooms import Participant, Record, RoomState
from rooms.media import SOURCES, forwarded_sources, may_publish, router_id
from sfu.transport import MediaError

from .codec import MediaFrame, encode_ack, pack
from .errors import (
    BadFieldType,
    BadSdp,
    MediaNotAllowed,
    MediaUnavailable,
    NoTransport,
    StaleAnswer,
    UnsupportedCodec,
)

log = logging.getLogger(__name__)

_peer_ids = itertools.count(1)

_ERRORS = {
    "bad_sdp": BadSdp,
    "unsupported_codec": UnsupportedCodec,
    "stale_answer": StaleAnswer,
    "no_transport": NoTransport,
    "bad_field": BadFieldType,
}
_ALL_SOURCES = frozenset(SOURCES)
_RULE_EVENTS = ("media.", "breakout.")


class MediaSession:
    """One ``/ws`` connection's media with the room's Router on the worker.

    Args:
        worker: the SFU worker (:class:`sfu.worker.Worker`, or a proxy with the same async
            methods), or None when media is off.
        hub: the room (its ``room_id``, ``state`` and ``watch``/``unwatch`` of folded records).
        participant: who is on this connection, with the token's grants.
        send: puts one server frame on the connection.
    """

    def __init__(
        self,
        worker: Any,
        hub: Any,
        participant: Participant,
        send: Callable[[bytes], None],
    ) -> None:
        self.worker = worker
        self.hub = hub
        self.room_id: str = hub.room_id
        self.participant = participant
        self.peer_id = f"{self.room_id}#{next(_peer_ids)}"
        self._send = send
        # What the worker was last told: blocked sources and Router (None: nothing yet).
        self._blocked: frozenset[str] | None = None
        self._router: str | None = None
        #: The videos the client shows (``media.view``), told to the worker once it subscribes
        #: (and again after a ``media.reset``).
        self._view: str | list[str] = "all"
        self._subscribed = False
        self._lock = asyncio.Lock()
        self._sync: asyncio.Task[None] | None = None
        self._watching = False
        self._closed = False
        # Remote workers (signaling.sfu_placement) reset the sessions of a worker they lose.
        if hasattr(worker, "add_reset_listener"):
            worker.add_reset_listener(self.peer_id, self.reset)

    def _wanted(self) -> tuple[frozenset[str], str]:
        state: RoomState = self.hub.state
        blocked = _ALL_SOURCES - forwarded_sources(state, self.participant)
        return blocked, router_id(state, self.participant.identity)

    def _watch(self) -> None:
        if not self._watching:
            self._watching = True
            self.hub.watch(self._on_record)

    async def handle(self, frame: MediaFrame) -> bytes:
        """Carry out one media frame; returns the ``ack`` frame to send.

        Raises:
            ClientError: the codes listed in the module docstring.
        """
        if self.worker is None:
            raise MediaUnavailable("this server runs without media (no SFU worker)")
        try:
            if frame.type == "media.publish":
                return await self._publish(frame)
            if frame.type == "media.unpublish":
                assert frame.source is not None
                await self.worker.unpublish(self.peer_id, frame.source)
                return encode_ack(frame.ref, [])
            if frame.type == "media.subscribe":
                await self._subscribe()
                return encode_ack(frame.ref, [])
            if frame.type == "media.view":
                assert frame.video is not None
                self._view = frame.video if isinstance(frame.video, str) else list(frame.video)
                if self._subscribed:
                    await self.worker.view(self.peer_id, self._view)
                return encode_ack(frame.ref, [])
            if frame.type == "media.candidate":
                assert frame.transport is not None and frame.candidate is not None
                await self.worker.candidate(
                    self.peer_id, frame.transport, frame.candidate, frame.sdp_mid
                )
                return encode_ack(frame.ref, [])
            assert frame.sdp is not None and frame.version is not None
            await self.worker.answer(self.peer_id, frame.version, frame.sdp)
            return encode_ack(frame.ref, [])
        except MediaError as exc:
            raise _ERRORS.get(exc.code, BadSdp)(exc.message) from exc

    async def _publish(self, frame: MediaFrame) -> bytes:
        assert frame.sdp is not None and frame.sources is not None
        state: RoomState = self.hub.state
        if not may_publish(state, self.participant):
            raise MediaNotAllowed(self._refusal(state))
        self._watch()
        async with self._lock:
            blocked, router = self._wanted()
            answer = await self.worker.publish(
                self.peer_id,
                router,
                self.participant.identity,
                frame.sdp,
                frame.sources,
                blocked,
            )
            self._blocked, self._router = blocked, router
        self._schedule_sync()  # the rules may have changed while the offer was answered
        return pack({"t": "ack", "ref": frame.ref, "ids": [], "sdp": answer})

    def _refusal(self, state: RoomState) -> str:
        if self.participant.is_staff or not self.participant.can_publish:
            return "your access token does not let you publish media; ask the teacher"
        return "the class is in lecture mode: only staff publish; ask the teacher for permission"

    async def _subscribe(self) -> None:
        if not self.participant.can_subscribe:
            raise MediaNotAllowed("your access token does not let you receive media")
        self._watch()
        async with self._lock:
            _, router = self._wanted()
            if self._router is not None and self._router != router:
                await self.worker.move(self.peer_id, router)
            await self.worker.subscribe(
                self.peer_id, router, self.participant.identity, self._offer, self._layers
            )
            self._router = router
            self._subscribed = True
            if self._view != "all":
                await self.worker.view(self.peer_id, self._view)
        # A move folded while the worker answered found no Router to compare with: check now.
        self._schedule_sync()

    def _on_record(self, record: Record) -> None:
        if record.event.type.startswith(_RULE_EVENTS):
            self._schedule_sync()

    def _schedule_sync(self) -> None:
        if self._closed or (self._sync is not None and not self._sync.done()):
            return
        blocked, router = self._wanted()
        stale_blocked = self._blocked is not None and self._blocked != blocked
        stale_router = self._router is not None and self._router != router
        if not (stale_blocked or stale_router):
            return
        self._sync = asyncio.get_running_loop().create_task(self._apply())

    async def _apply(self) -> None:
        """Tell the worker what the rules now say, until it matches (the rules may change again
        while a call is under way)."""
        try:
            async with self._lock:
                while not self._closed:
                    blocked, router = self._wanted()
                    if self._router is not None and router != self._router:
                        await self.worker.move(self.peer_id, router)
                        self._router = router
                    elif self._blocked is not None and blocked != self._blocked:
                        await self.worker.restrict(self.peer_id, blocked)
                        self._blocked = blocked
                    else:
                        return
        except Exception:
            log.exception("media rules for %s could not be applied", self.peer_id)

    def reset(self, reason: str) -> None:
        """The worker holding this connection's media is gone: forget what it was told and ask
        the client to publish and subscribe again (``media.reset``)."""
        self._blocked = self._router = None
        self._subscribed = False
        self._send(pack({"t": "media.reset", "reason": reason}))

    def _layers(self, producers: dict[str, str]) -> None:
        """The SFU changed what it forwards of some videos for this participant's link."""
        self._send(pack({"t": "media.layers", "producers": producers, "reason": "bandwidth"}))

    def _offer(self, sdp: str, version: int, producers: dict[str, dict[str, str]]) -> None:
        offer = {"t": "media.offer", "version": version, "sdp": sdp, "producers": producers}
        self._send(pack(offer))

    async def close(self) -> None:
        self._closed = True
        if self._watching:
            self._watching = False
            self.hub.unwatch(self._on_record)
        if self._sync is not None:
            self._sync.cancel()
        if hasattr(self.worker, "remove_reset_listener"):
            self.worker.remove_reset_listener(self.peer_id)
        if self.worker is not None:
            await self.worker.close_peer(self.peer_id)
