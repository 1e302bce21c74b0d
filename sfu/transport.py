"""WebRtcTransports: a participant's two peer connections with the SFU (mediasoup's names).

- :class:`PublishTransport`: the client offers (its camera, microphone, screen), the SFU answers;
  each incoming track becomes a :class:`sfu.router.Producer` in the participant's Router. A later
  offer on the same transport adds tracks (a screen share next to the camera).
- :class:`SubscribeTransport`: the SFU offers one ``sendonly`` m-line per producer of the other
  participants in the Router and renegotiates as producers come and go; the client answers.
  A removed producer's m-line goes ``inactive`` and is reused for the next producer of the same
  kind and codec (aiortc never reuses a stopped transceiver's m-line), so the SDP stays bounded.

The SDP is RFC 8829 (JSEP) offer/answer; every ICE candidate is gathered before an offer or answer
is returned (aiortc does not trickle out), so the SDP carries them. The client's candidates are
never used (:mod:`sfu.ice`: the SFU answers checks and starts none). Errors are
:class:`MediaError` with a protocol error code.

Every m-line of a connection is on one transport from the start (bundle policy ``max-bundle``).
aiortc's default, ``balanced``, gives the first m-line of each kind a transport of its own and
lets later m-lines of that kind share it, then on a BUNDLE answer (or offer) moves only that first
one to the BUNDLE transport: a later m-line of the other kind stayed on a stopped transport and
nothing was sent or received on it (a subscriber offered video, audio, video, audio never got the
second audio; a publisher offering audio, video, video never got its second video in).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_RTPFB_NACK,
    RTP_HISTORY_SIZE,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    unpack_remb_fci,
)
from aiortc.sdp import MediaDescription, SessionDescription, candidate_from_sdp

from .congestion import ConsumerDemand, LinkGovernor, VideoLayer
from .ice import MAX_REMOTE_ADDRESSES, announce, limit_remote_addresses, without_candidates
from .nack import ResendLimiter
from .passthrough import FORWARDED_MIME_TYPES
from .red import without_red
from .router import Consumer, Producer, Router

log = logging.getLogger(__name__)

#: What a published track is, as the client labels each m-line (by its ``mid``).
SOURCES = {"camera": "video", "screen": "video", "microphone": "audio"}
#: How long the SFU waits for the client's answer to a subscribe offer (s).
ANSWER_TIMEOUT_S = 10.0
#: A connection whose ICE has not connected this long after the SFU's first SDP is closed (s):
#: the SFU never gives up on its own, since it waits for the client's checks (sfu.ice).
ICE_CONNECT_TIMEOUT_S = 30.0
#: How often a subscribe connection's video layers are decided (s), and the window its
#: consumers' bitrates are measured over.
GOVERN_INTERVAL_S = 0.5
MEASURE_WINDOW_S = 1.0
#: A screen share is kept longest when a subscriber's link is short (sfu.congestion).
SOURCE_PRIORITY = {"screen": 10, "camera": 0}


class MediaError(Exception):
    """A media request the SFU refuses; ``code`` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _parse(sdp: str, expected: str) -> SessionDescription:
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise MediaError("bad_sdp", f"the {expected} is not an SDP (it must start with v=0)")
    try:
        return SessionDescription.parse(sdp)
    except (ValueError, IndexError, KeyError) as exc:
        raise MediaError("bad_sdp", f"the {expected} SDP cannot be parsed: {exc}") from exc


def media_ssrc(media: MediaDescription) -> int | None:
    """The SSRC a sender's media packets carry: the first of ``a=ssrc-group:FID`` (the second is
    its RTX stream, RFC 4588), else the first ``a=ssrc``; None when the SDP names none."""
    for group in media.ssrc_group:
        if group.semantic == "FID" and group.items:
            return int(group.items[0])
    return int(media.ssrc[0].ssrc) if media.ssrc else None


#: Opus parameters the SFU's answers ask publishers for (RFC 7587 section 6.1): in-band FEC, so
#: a subscriber's decoder rebuilds a lost packet from the next one, and DTX, so silence costs
#: next to nothing on a slow link. Both travel inside the Opus payload the SFU forwards.
OPUS_RESILIENCE = {"useinbandfec": "1", "usedtx": "1"}


def with_opus_resilience(sdp: str) -> str:
    """``sdp`` with :data:`OPUS_RESILIENCE` on every Opus payload type's ``a=fmtp`` line (RFC
    8866 section 6.15; one is added after the ``a=rtpmap`` line where there is none). Other
    lines, and the line endings, are kept."""
    newline = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(newline)
    opus = {
        line.split()[0].removeprefix("a=rtpmap:")
        for line in lines
        if line.startswith("a=rtpmap:") and line.lower().split()[-1].startswith("opus/")
    }
    fmtp = {line.split()[0].removeprefix("a=fmtp:") for line in lines if line.startswith("a=fmtp:")}
    out = []
    for line in lines:
        if line.startswith("a=fmtp:") and line.split()[0].removeprefix("a=fmtp:") in opus:
            head, _, params = line.partition(" ")
            values = dict(p.split("=", 1) for p in params.split(";") if "=" in p)
            values.update(OPUS_RESILIENCE)
            line = head + " " + ";".join(f"{k}={v}" for k, v in values.items())
        out.append(line)
        if line.startswith("a=rtpmap:"):
            pt = line.split()[0].removeprefix("a=rtpmap:")
            if pt in opus and pt not in fmtp:
                params = ";".join(f"{k}={v}" for k, v in OPUS_RESILIENCE.items())
                out.append(f"a=fmtp:{pt} {params}")
    return newline.join(out)


def _smoothed(old: float, new: float) -> float:
    return new if not old else 0.7 * old + 0.3 * new


class _Transport:
    """One peer connection with the client; closed (:meth:`close`) when ICE or DTLS fails."""

    closed: bool
    #: The address put in place of gathered host candidates (:func:`sfu.ice.announce`).
    announced_ip: str | None = None
    #: Remote addresses whose checks ICE answers (:func:`sfu.ice.limit_remote_addresses`).
    max_remote_addresses: int = MAX_REMOTE_ADDRESSES

    def __init__(self, ice_servers: list[RTCIceServer]) -> None:
        # Always explicit: aiortc's default configuration uses a public STUN server. One
        # transport for every m-line (see the module docstring).
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=ice_servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.closed = False
        self._deadline: asyncio.TimerHandle | None = None
        self.pc.on("connectionstatechange", self._on_state)

    def local_sdp(self) -> str:
        """The local description as the client gets it (host candidates announced); from the
        first one on, ICE has :data:`ICE_CONNECT_TIMEOUT_S` to connect."""
        if self._deadline is None:
            loop = asyncio.get_running_loop()
            self._deadline = loop.call_later(ICE_CONNECT_TIMEOUT_S, self._connect_timed_out)
        # Before the client has the SDP, so before any check can arrive.
        for transceiver in self.pc.getTransceivers():
            ice = transceiver.receiver.transport.transport
            limit_remote_addresses(ice._connection, self.max_remote_addresses)
        return announce(str(self.pc.localDescription.sdp), self.announced_ip)

    def _connect_timed_out(self) -> None:
        if not self.closed and self.pc.connectionState != "connected":
            # The operator's first clue when clients cannot reach the announced address (the
            # page tells its user after 8 s; docs/operations.md, "When media cannot connect").
            log.warning(
                "sfu: closing a transport whose ICE did not connect within %.0f s; if this "
                "repeats, clients cannot reach the address the SFU announces (%s): check "
                "--sfu-announced-ip, --sfu-listen-ips, the UDP ports and the firewall",
                ICE_CONNECT_TIMEOUT_S,
                self.announced_ip or "its listen addresses",
            )
            asyncio.get_running_loop().create_task(self.close())

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            asyncio.get_running_loop().create_task(self.close())

    async def add_candidate(self, candidate: str, sdp_mid: str | None) -> None:
        """Check one remote ICE candidate trickled by the client (RFC 8838); ``candidate`` is the
        ``candidate:...`` attribute value (RFC 8839 section 5.1). A valid one is dropped like
        those of the SDP (the SFU answers checks and starts none, :mod:`sfu.ice`); an empty
        string is the end of candidates and changes nothing.

        Raises:
            MediaError: ``bad_field`` (the candidate cannot be parsed, or names no m-line).
        """
        if candidate == "":
            return
        try:
            parsed = candidate_from_sdp(candidate.removeprefix("a=").removeprefix("candidate:"))
        except (AssertionError, ValueError, IndexError) as exc:  # aiortc asserts the arity
            raise MediaError("bad_field", f"the candidate cannot be parsed: {exc!r}") from exc
        parsed.sdpMid = sdp_mid
        mids = {t.mid for t in self.pc.getTransceivers()}
        if sdp_mid is None or sdp_mid not in mids:
            raise MediaError("bad_field", f"the candidate's mid {sdp_mid!r} names no m-line")
        log.debug("sfu: dropped a trickled candidate %s %s", parsed.ip, parsed.port)

    async def close(self) -> None:
        raise NotImplementedError


class PublishTransport(_Transport):
    """The participant's publish connection: the client offers, the SFU answers.

    Args:
        router: where this participant's producers go.
        identity: the participant.
        ice_servers: the SFU's own STUN/TURN servers (usually none: it has a public address).
        blocked: sources not forwarded (see :meth:`restrict`).
    """

    def __init__(
        self,
        router: Router,
        identity: str,
        ice_servers: list[RTCIceServer],
        blocked: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(ice_servers)
        self.router = router
        self.identity = identity
        self.blocked = blocked
        self.producers: dict[str, Producer] = {}  # by source
        self._sources: dict[str, str] = {}  # mid -> source
        self._ssrcs: dict[str, int | None] = {}  # mid -> media SSRC
        self._new: list[Producer] = []
        self._unpublished: set[str] = set()  # sources unpublished, their m-line kept
        self._lock = asyncio.Lock()
        self.pc.on("track", self._on_track)

    async def answer(self, offer: str, sources: Mapping[str, str]) -> str:
        """Answer the client's ``offer``; ``sources`` labels each m-line by ``mid``.

        Returns the answer SDP (with the SFU's candidates).

        Raises:
            MediaError: ``bad_sdp`` (not an SDP, or aiortc refused it), ``unsupported_codec``
                (an m-line offers no codec the SFU forwards), ``bad_field`` (an m-line without
                a valid source, a source used twice, an m-line relabelled, not audio or video).

        A known m-line keeps its source; naming it in ``sources`` again publishes it again if
        it was unpublished (:meth:`unpublish`).
        """
        description = _parse(offer, "offer")
        async with self._lock:
            if self.closed:
                raise MediaError("bad_request", "this publish transport is closed")
            labels = dict(self._sources)
            republished: list[str] = []
            for media in description.media:
                mid = media.rtp.muxId
                if media.kind not in ("audio", "video"):
                    raise MediaError("bad_field", f"m-line {mid!r}: only audio and video")
                if mid in self._sources:
                    named = sources.get(mid)
                    if named is not None and named != self._sources[mid]:
                        raise MediaError(
                            "bad_field",
                            f"m-line {mid!r} carries {self._sources[mid]!r}: the source of an "
                            "m-line cannot change on one connection",
                        )
                    if named is not None and named in self._unpublished:
                        republished.append(named)
                    continue
                source = sources.get(mid)
                if SOURCES.get(source or "") != media.kind:
                    raise MediaError(
                        "bad_field",
                        f"m-line {mid!r} ({media.kind}) needs a source: "
                        + ", ".join(s for s, k in SOURCES.items() if k == media.kind),
                    )
                if source in labels.values():
                    raise MediaError("bad_field", f"source {source!r} is already published")
                if not any(c.mimeType.lower() in FORWARDED_MIME_TYPES for c in media.rtp.codecs):
                    offered = sorted({c.mimeType for c in media.rtp.codecs})
                    raise MediaError(
                        "unsupported_codec",
                        f"m-line {mid!r} offers {offered}; the SFU forwards VP8, H.264 and Opus",
                    )
                labels[mid] = str(source)
                self._ssrcs[mid] = media_ssrc(media)
            self._sources = labels
            try:
                await self.pc.setRemoteDescription(
                    RTCSessionDescription(without_red(without_candidates(offer)), "offer")
                )
                answer = await self.pc.createAnswer()
                await self.pc.setLocalDescription(answer)
            except MediaError:
                raise
            except Exception as exc:  # aiortc raises ValueError, OperationError, ...
                await self.close()
                raise MediaError("bad_sdp", f"the offer was refused: {exc}") from exc
            local = SessionDescription.parse(self.pc.localDescription.sdp)
            codecs = {m.rtp.muxId: m.rtp.codecs[0] for m in local.media if m.rtp.codecs}
            # Producers join the Router only now, when their codec is known.
            new, self._new = self._new, []
            for producer in new:
                producer.codec = codecs.get(producer.mid)
                producer.pause(producer.source in self.blocked)
                self.router.add_producer(producer)
            for source in republished:
                self._unpublished.discard(source)
                producer = self.producers.get(source)
                if producer is not None and not producer.closed:
                    producer.renew_id()
                    producer.pause(source in self.blocked)
                    self.router.add_producer(producer)
            return with_opus_resilience(self.local_sdp())

    async def unpublish(self, source: str) -> None:
        """Stop publishing ``source``: its Producer leaves the Router at once (subscribers'
        m-lines for it go inactive in their next offer) and forwards nothing more. Its m-line
        stays negotiated: what still arrives on it is read and dropped, and a later offer naming
        the m-line in ``sources`` publishes it again (a new producer id). A source that is not
        published changes nothing."""
        async with self._lock:
            producer = self.producers.get(source)
            if producer is None or source in self._unpublished:
                return
            self._unpublished.add(source)
            producer.detach_consumers()
            if producer.id in self.router.producers:
                self.router.remove_producer(producer)

    def restrict(self, blocked: frozenset[str]) -> None:
        """Forward only the sources not in ``blocked`` (the classroom rules: a muted microphone,
        a student who may not publish); a blocked producer stays negotiated but sends nothing."""
        self.blocked = blocked
        for source, producer in self.producers.items():
            producer.pause(source in blocked)

    def move(self, router: Router) -> None:
        """Move this participant's producers to ``router`` (a breakout room); the connection and
        its ICE session stay as they are."""
        old, self.router = self.router, router
        for producer in self.producers.values():
            if producer.id in old.producers:
                old.remove_producer(producer)
                router.add_producer(producer)

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(
            (t for t in self.pc.getTransceivers() if t.receiver.track is track), None
        )
        if transceiver is None or transceiver.mid is None:
            return
        mid = transceiver.mid
        source = self._sources[mid]
        ssrc = self._ssrcs.get(mid)
        receiver = transceiver.receiver

        async def request_pli() -> None:
            if ssrc is not None:
                await receiver._send_rtcp_pli(ssrc)

        producer = Producer(track, self.identity, source, request_pli)
        producer.mid = mid
        self.producers[source] = producer
        self._new.append(producer)

    async def close(self) -> None:
        """Close the connection; its producers leave the Router."""
        if self.closed:
            return
        self.closed = True
        if self._deadline is not None:
            self._deadline.cancel()
        for producer in tuple(self.producers.values()):
            await producer.close()
        await self.pc.close()


class SubscribeTransport(_Transport):
    """The participant's subscribe connection: the SFU offers, the client answers.

    Args:
        router: whose producers (other than the participant's own) are forwarded.
        identity: the participant.
        ice_servers: the SFU's own STUN/TURN servers.
        send_offer: called as ``send_offer(sdp, version, producers)`` with each new offer;
            ``producers`` maps each ``mid`` to :meth:`sfu.router.Producer.describe` (inactive
            m-lines are not listed). The client answers with :meth:`answer` and ``version``.
    """

    def __init__(
        self,
        router: Router,
        identity: str,
        ice_servers: list[RTCIceServer],
        send_offer: Callable[[str, int, dict[str, dict[str, str]]], None],
    ) -> None:
        super().__init__(ice_servers)
        self.router = router
        self.identity = identity
        self.version = 0
        self._send_offer = send_offer
        self._slots: dict[str, tuple[RTCRtpTransceiver, Consumer]] = {}  # producer id ->
        self._idle: list[tuple[RTCRtpTransceiver, Consumer]] = []  # inactive m-lines
        self._answered: asyncio.Future[str] | None = None
        self._task: asyncio.Task[None] | None = None
        self._dirty = False
        #: What the subscriber's link can take (:mod:`sfu.congestion`), fed by its RTCP.
        self.governor = LinkGovernor()
        #: Told each change of video layers, as {producer id: layer} (the client shows it).
        self.on_layers: Callable[[dict[str, str]], None] = lambda changes: None
        self._demands: dict[str, ConsumerDemand] = {}
        #: producer id -> (when, bytes, base-layer bytes) queued by its consumer
        self._measured: dict[str, tuple[float, int, int]] = {}
        self._last_rtcp: object = None
        self._governing: asyncio.Task[None] | None = None
        #: The videos the client shows (``media.view``): "all", "none" or producer ids.
        self.video: str | frozenset[str] = "all"
        router.listen(self.update)

    def update(self) -> None:
        """Renegotiate if what should be forwarded changed (coalesced; one offer at a time)."""
        if self.closed:
            return
        if self._governing is None:
            self._governing = asyncio.get_running_loop().create_task(self._govern())
        if self._task is not None:
            self._dirty = True
            return
        self._task = asyncio.get_running_loop().create_task(self._negotiate())
        self._task.add_done_callback(self._negotiated)

    def _negotiated(self, task: asyncio.Task[None]) -> None:
        self._task = None
        if not task.cancelled() and task.exception() is not None and not self.closed:
            log.warning("sfu: %s: renegotiation failed: %r", self.identity, task.exception())
        if self._dirty and not self.closed:
            self._dirty = False
            self.update()

    def _wanted(self) -> dict[str, Producer]:
        return {
            pid: p
            for pid, p in self.router.producers.items()
            if p.identity != self.identity and getattr(p, "codec", None) is not None
        }

    def move(self, router: Router) -> None:
        """Forward ``router``'s producers instead (a breakout room, or back to the main room):
        one renegotiation on the same connection, no new ICE session."""
        if router is self.router:
            return
        self.router.unlisten(self.update)
        self.router = router
        router.listen(self.update)
        self.update()

    async def _negotiate(self) -> None:
        self._dirty = False
        wanted = self._wanted()
        changed = False
        for pid in [pid for pid in self._slots if pid not in wanted]:
            transceiver, consumer = self._slots.pop(pid)
            consumer.detach()
            transceiver.direction = "inactive"
            self._idle.append((transceiver, consumer))
            changed = True
        for pid, producer in wanted.items():
            if pid in self._slots:
                continue
            self._slots[pid] = self._attach(producer)
            self._slots[pid][1].set_hidden(not self._shown(pid))
            changed = True
        if not changed:
            # Nothing new; and no first offer without an m-line (an SDP whose BUNDLE group
            # names no mid, which browsers refuse).
            return
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        self.version += 1
        mids = {
            str(transceiver.mid): producer.describe()
            for transceiver, consumer in self._slots.values()
            if (producer := consumer.producer) is not None
        }
        self._answered = asyncio.get_running_loop().create_future()
        self._send_offer(self.local_sdp(), self.version, mids)
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT_S):
                answer = await self._answered
        except TimeoutError:
            log.warning("sfu: %s did not answer offer %s", self.identity, self.version)
            await self.close()
            return
        await self.pc.setRemoteDescription(
            RTCSessionDescription(without_candidates(answer), "answer")
        )
        for transceiver, _ in (*self._slots.values(), *self._idle):
            transceiver._lc_answered = list(transceiver._codecs)  # type: ignore[attr-defined]

    def _attach(self, producer: Producer) -> tuple[RTCRtpTransceiver, Consumer]:
        codec = producer.codec
        idle = next(
            (
                (transceiver, consumer)
                for transceiver, consumer in self._idle
                if transceiver.kind == producer.kind
                and getattr(transceiver, "_lc_codec", None) == codec.mimeType
            ),
            None,
        )
        if idle is not None:
            # Reuse the m-line and its sender: the same Consumer track, pointed at this producer.
            self._idle.remove(idle)
            transceiver, consumer = idle
            transceiver.direction = "sendonly"
            consumer.attach(producer)
            return transceiver, consumer
        consumer = producer.consume()
        transceiver = self.pc.addTransceiver(consumer, direction="sendonly")
        capabilities = RTCRtpSender.getCapabilities(producer.kind).codecs
        mime = codec.mimeType.lower()
        pinned = [c for c in capabilities if c.mimeType.lower() == mime]
        pinned += [c for c in capabilities if c.mimeType.lower().endswith("/rtx")]
        if mime == "audio/opus":
            # Redundant audio first, for a subscriber that takes it (sfu.red); plain Opus else.
            pinned[:0] = [c for c in capabilities if c.mimeType.lower() == "audio/red"]
        transceiver.setCodecPreferences(pinned)
        transceiver._lc_codec = codec.mimeType  # type: ignore[attr-defined]
        # aiortc starts the sender once DTLS is up, with the codecs the transceiver holds then;
        # a renegotiation's createOffer in between resets them to all that is offered (redundant
        # audio first), which the client may not have taken: it starts with those it answered.
        send = transceiver.sender.send

        async def send_answered(parameters: RTCRtpSendParameters) -> None:
            answered = getattr(transceiver, "_lc_answered", None)
            if answered:
                parameters.codecs = answered
            await send(parameters)

        transceiver.sender.send = send_answered  # type: ignore[method-assign]
        # A subscriber's PLI/FIR asks the publisher, not an encoder (there is none).
        transceiver.sender._send_keyframe = consumer.request_keyframe  # type: ignore[method-assign]
        # Its receiver reports (loss) and REMB (estimate) tell the governor what the link takes.
        handle_rtcp = transceiver.sender._handle_rtcp_packet

        sender = transceiver.sender
        resends = ResendLimiter()

        async def heard(packet: Any) -> None:
            self._round_trip(packet, sender)
            self._heard(packet)
            if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                await self._resend(sender, resends, packet.lost)
            else:
                await handle_rtcp(packet)

        transceiver.sender._handle_rtcp_packet = heard  # type: ignore[method-assign]
        return transceiver, consumer

    def view(self, video: str | frozenset[str]) -> None:
        """Forward only the videos the client shows (``"all"``, ``"none"`` or producer ids)."""
        self.video = video
        for pid, (_, consumer) in self._slots.items():
            consumer.set_hidden(not self._shown(pid))

    def _shown(self, pid: str) -> bool:
        return self.video == "all" or (not isinstance(self.video, str) and pid in self.video)

    # -- the subscriber's link (sfu.congestion) ---------------------------------------------------

    def _heard(self, packet: Any) -> None:
        """One RTCP packet from the subscriber, as the governor needs it. A packet reaches each
        sender it concerns; it is counted once."""
        if packet is self._last_rtcp:
            return
        self._last_rtcp = packet
        now = asyncio.get_running_loop().time()
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            # RFC 3550 section 6.4.1: the fraction lost is 8-bit fixed point.
            for report in packet.reports:
                self.governor.report(
                    now,
                    fraction_lost=report.fraction_lost / 256,
                    stream=report.ssrc,
                    highest_sequence=report.highest_sequence,
                )
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, _ = unpack_remb_fci(packet.fci)
            except ValueError:
                return  # an application-layer feedback that is not REMB
            self.governor.report(now, estimate_bps=bitrate)

    async def _resend(self, sender: RTCRtpSender, resends: ResendLimiter, lost: list[int]) -> None:
        """Resend what a NACK names (RFC 4585 section 6.2.1) as :mod:`sfu.nack` allows: each
        packet at most once a round trip and a few times in all. aiortc's sender keeps the last
        packets it sent by sequence number (a private name of the pinned version; without it,
        nothing is resent)."""
        history = getattr(sender, "_RTCRtpSender__rtp_history", None)
        if not isinstance(history, dict):
            return

        def kept(number: int) -> bool:
            packet = history.get(number % RTP_HISTORY_SIZE)
            return packet is not None and packet.sequence_number == number

        now = asyncio.get_running_loop().time()
        for number in resends.allow(lost, now, self.governor.min_rtt_s, kept):
            await sender._retransmit(number)

    def _round_trip(self, packet: Any, sender: RTCRtpSender) -> None:
        """The round trip a receiver report block about ``sender``'s stream shows (RFC 3550
        section 6.4.1: now, less when the sender report it names was sent, less the receiver's
        delay since), for the governor. aiortc keeps the last sender report's LSR and send time
        on the sender (private names of the pinned version; without them, no round trip)."""
        if not isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            return
        lsr = getattr(sender, "_RTCRtpSender__lsr", None)
        sent_at = getattr(sender, "_RTCRtpSender__lsr_time", None)
        for report in packet.reports:
            if report.ssrc == sender._ssrc and report.lsr and report.lsr == lsr and sent_at:
                rtt = time.time() - sent_at - report.dlsr / 65536
                self.governor.report(asyncio.get_running_loop().time(), rtt_s=rtt)

    async def _govern(self) -> None:
        while not self.closed:
            await asyncio.sleep(GOVERN_INTERVAL_S)
            try:
                self.govern(asyncio.get_running_loop().time())
            except Exception:
                log.exception("sfu: %s: deciding video layers failed", self.identity)

    def govern(self, now: float) -> dict[str, str]:
        """Measure the video consumers' bitrates, let the governor decide their layers, apply
        the changes and tell :attr:`on_layers`; returns the changes ({producer id: layer})."""
        demands = []
        for pid, (_, consumer) in self._slots.items():
            if consumer.kind != "video" or consumer.hidden:
                continue
            demand = self._demands.get(pid)
            if demand is None:
                producer = consumer.producer
                source = producer.source if producer is not None else ""
                demand = self._demands[pid] = ConsumerDemand(
                    pid, priority=SOURCE_PRIORITY.get(source, 0)
                )
            counts = consumer.bytes_queued, consumer.base_bytes_queued
            since, counted, base_counted = self._measured.setdefault(pid, (now, *counts))
            if now - since >= MEASURE_WINDOW_S:
                bps = (counts[0] - counted) * 8 / (now - since)
                base_bps = (counts[1] - base_counted) * 8 / (now - since)
                self._measured[pid] = (now, *counts)
                # Smoothed over a few windows: a keyframe is a burst, not a new rate. The base
                # layer's rate is measured at all layers too, so the first step down knows it
                # (Chromium's L1T3 base took 37-42 % of the bits; the governor guesses 45).
                if consumer.layer is VideoLayer.ALL and bps > 0:
                    demand.full_bps = _smoothed(demand.full_bps, bps)
                if consumer.layer is not VideoLayer.PAUSED and base_bps > 0:
                    demand.base_bps = _smoothed(demand.base_bps, base_bps)
            demand.layered = consumer.producer is not None and consumer.producer.layered
            demand.layer = consumer.layer
            demands.append(demand)
        for pid in [pid for pid in self._demands if pid not in self._slots]:
            del self._demands[pid]
            self._measured.pop(pid, None)
        changes = self.governor.plan(now, demands)
        for pid, layer in changes.items():
            self._slots[pid][1].set_layer(layer)
            demand = self._demands[pid]
            log.info(
                "sfu: %s: video of %s now %s (link estimate %s bit/s, loss %s; the video "
                "measured %d bit/s, its base layer %d)",
                self.identity,
                pid,
                layer.value,
                None if self.governor.estimate_bps is None else int(self.governor.estimate_bps),
                round(self.governor.latest_loss, 3),
                demand.full_bps,
                demand.base_bps,
            )
        if changes:
            self.on_layers({pid: layer.value for pid, layer in changes.items()})
        return {pid: layer.value for pid, layer in changes.items()}

    async def answer(self, version: int, sdp: str) -> None:
        """The client's answer to offer ``version``.

        Raises:
            MediaError: ``bad_sdp`` (not an SDP), ``stale_answer`` (not the offer awaited).
        """
        _parse(sdp, "answer")
        future = self._answered
        if version != self.version or future is None or future.done():
            raise MediaError("stale_answer", f"offer {version} is not awaiting an answer")
        future.set_result(sdp)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._deadline is not None:
            self._deadline.cancel()
        self.router.unlisten(self.update)
        if self._governing is not None and self._governing is not asyncio.current_task():
            self._governing.cancel()
        for _, consumer in (*self._slots.values(), *self._idle):
            consumer.stop()
        self._slots.clear()
        self._idle.clear()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.pc.close()
