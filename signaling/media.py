"""Media signaling on ``/ws``: SDP offers and answers between a client and the SFU worker.

Frames (docs/protocol.md, "Media"):

- ``media.publish {ref, sdp, sources}``: the client's offer for its publish connection;
  ``sources`` maps each m-line's ``mid`` to ``"camera"``, ``"microphone"`` or ``"screen"``.
  Answered ``ack {ref, ids: [], sdp}`` with the SFU's answer.
- ``media.subscribe {ref}``: start the subscribe connection; answered ``ack``, then the server
  sends ``media.offer {version, sdp, producers}`` now and whenever producers come and go.
- ``media.answer {ref, version, sdp}``: the client's answer to offer ``version``; ``ack``.

Errors are ``error`` frames with the codes of :mod:`signaling.errors` (``bad_sdp``,
``unsupported_codec``, ``stale_answer``, ``no_transport``, ``not_allowed``, ``media_unavailable``);
a refused request leaves the room's media as it was.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from rooms import Participant
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

_peer_ids = itertools.count(1)

_ERRORS = {
    "bad_sdp": BadSdp,
    "unsupported_codec": UnsupportedCodec,
    "stale_answer": StaleAnswer,
    "no_transport": NoTransport,
    "bad_field": BadFieldType,
}


class MediaSession:
    """One ``/ws`` connection's media with the room's Router on the worker.

    Args:
        worker: the SFU worker (:class:`sfu.worker.Worker`), or None when media is off.
        room_id: the room (its Router).
        participant: who is on this connection (``can_publish`` is checked).
        send: puts one server frame on the connection.
    """

    def __init__(
        self,
        worker: Any,
        room_id: str,
        participant: Participant,
        send: Callable[[bytes], None],
    ) -> None:
        self.worker = worker
        self.room_id = room_id
        self.participant = participant
        self.peer_id = f"{room_id}#{next(_peer_ids)}"
        self._send = send

    async def handle(self, frame: MediaFrame) -> bytes:
        """Carry out one media frame; returns the ``ack`` frame to send.

        Raises:
            ClientError: the codes listed in the module docstring.
        """
        if self.worker is None:
            raise MediaUnavailable("this server runs without media (no SFU worker)")
        identity = self.participant.identity
        try:
            if frame.type == "media.publish":
                if not self.participant.can_publish:
                    raise MediaNotAllowed("your access token does not let you publish media")
                assert frame.sdp is not None and frame.sources is not None
                answer = await self.worker.publish(
                    self.peer_id, self.room_id, identity, frame.sdp, frame.sources
                )
                return pack({"t": "ack", "ref": frame.ref, "ids": [], "sdp": answer})
            if frame.type == "media.subscribe":
                if not self.participant.can_subscribe:
                    raise MediaNotAllowed("your access token does not let you receive media")
                self.worker.subscribe(self.peer_id, self.room_id, identity, self._offer)
                return encode_ack(frame.ref, [])
            assert frame.sdp is not None and frame.version is not None
            await self.worker.answer(self.peer_id, frame.version, frame.sdp)
            return encode_ack(frame.ref, [])
        except MediaError as exc:
            raise _ERRORS.get(exc.code, BadSdp)(exc.message) from exc

    def _offer(self, sdp: str, version: int, producers: dict[str, dict[str, str]]) -> None:
        offer = {"t": "media.offer", "version": version, "sdp": sdp, "producers": producers}
        self._send(pack(offer))

    async def close(self) -> None:
        if self.worker is not None:
            await self.worker.close_peer(self.peer_id)
