"""Encoded pass-through for aiortc: media is received and sent as encoded frames, never decoded.

aiortc hands every remote track's reassembled frames to a decoder thread, and every sender runs
an encoder. An SFU forwards: :func:`install` replaces, process-wide, the receiver's decoder factory
with one that wraps each encoded frame in an ``av.Packet`` (pts = the RTP timestamp, time_base =
1 / clock rate, ``is_keyframe`` from the bitstream), and the sender's encoder factory with one
whose ``encode`` refuses. A sender given an ``av.Packet`` calls only ``pack`` (RTP packetization:
RFC 7741 for VP8, RFC 6184 for H.264, RFC 7587 for Opus), so a forwarded stream is never
transcoded; an attempt to encode raises :class:`EncodingRefused` and is counted in
:data:`STATS`.

It also replaces the receiver's depayloader for VP8 with one that keeps each frame's temporal
layer (the TID and layer sync bit of RFC 7741's payload descriptor), so a subscriber on a slow
link can be sent the base layer only (:mod:`sfu.congestion`), and all layers again from a point
where they decode; the packet's ``opaque`` carries it (:class:`TemporalLayer`).

These are hooks into aiortc's private names (``aiortc.rtcrtpreceiver.get_decoder``,
``aiortc.rtcrtpreceiver.depayload``, ``aiortc.rtcrtpsender.get_encoder``), so aiortc is pinned
and :func:`install` checks they exist.
Only an SFU process installs them: a process that must decode media (a test's subscriber, a bot)
never does.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import aiortc.codecs
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import av
from aiortc.codecs.base import Decoder
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from . import red

log = logging.getLogger(__name__)

#: The codecs forwarded (lower-case MIME types); the SFU negotiates only these.
FORWARDED_MIME_TYPES = frozenset({"video/vp8", "video/h264", "audio/opus"})


class EncodingRefused(RuntimeError):
    """Something asked the SFU to encode a frame; it only forwards encoded frames."""


@dataclass
class PassThroughStats:
    """Process-wide counters of the media path, plain integers read at scrape time
    (:mod:`sfu.metrics`): frames received as encoded packets, RTP packets and payload bytes sent
    to subscribers, keyframe requests sent upstream, consumer skips and refused encode calls."""

    frames_received: int = 0
    packets_forwarded: int = 0
    bytes_forwarded: int = 0
    keyframe_requests: int = 0
    consumer_skips: int = 0
    encode_refusals: int = 0
    #: Video consumers moved to each layer by their subscriber's link (:mod:`sfu.congestion`).
    layer_changes: Counter[str] = field(default_factory=Counter)


STATS = PassThroughStats()
_installed = False


def is_keyframe(mime_type: str, data: bytes) -> bool:
    """Whether an encoded frame starts a decodable picture.

    VP8: bit 0 of the frame tag is 0 on a key frame (RFC 6386 section 9.1). H.264 (Annex B): an
    IDR slice (NAL type 5) or a sequence parameter set (7) is present (ITU-T H.264 table 7-1).
    Audio frames are all independent.
    """
    if mime_type == "video/vp8":
        return bool(data) and data[0] & 0x01 == 0
    if mime_type == "video/h264":
        return any(nal_type in (5, 7) for nal_type in _h264_nal_types(data))
    return True


def _h264_nal_types(data: bytes) -> list[int]:
    types = []
    i = data.find(b"\x00\x00\x01")
    while i != -1 and i + 3 < len(data):
        types.append(data[i + 3] & 0x1F)
        i = data.find(b"\x00\x00\x01", i + 3)
    return types


#: Put before a VP8 frame's first bytes by :func:`_vp8_depayload`, then its temporal layer: the
#: TID of the frame's RTP payload descriptor (RFC 7741 section 4.2), which aiortc's depayloader
#: drops, carried through aiortc's jitter buffer to :class:`PassThroughDecoder`.
_TID_MARK = b"\xa5\x5a"
#: The mark's layer byte for a frame whose descriptor has no TID (the publisher sends no
#: temporal layers).
_NO_TID = 0xFF


#: The mark's layer byte: the TID in the low bits, and this bit for Y (layer sync).
_SYNC_BIT = 0x80


@dataclass(frozen=True, slots=True)
class TemporalLayer:
    """A VP8 frame's temporal layer, from its RTP payload descriptor (RFC 7741 section 4.2).

    Attributes:
        tid: the temporal layer, 0 the base.
        sync: the Y bit: the frame depends on the base layer only, so a subscriber that was sent
            none of the frames of its layer decodes it (and its layer from it on).
    """

    tid: int
    sync: bool


def temporal_layer(packet: Any) -> TemporalLayer | None:
    """The temporal layer :class:`PassThroughDecoder` put on a packet (None: the publisher sends
    no layers, or it is not VP8)."""
    layer = getattr(packet, "opaque", None)
    return layer if isinstance(layer, TemporalLayer) else None


def _vp8_depayload(payload: bytes) -> bytes:
    """aiortc's VP8 depayloading, keeping the TID and Y bit of a frame's first packet (S=1,
    PID=0) in front of its data (:data:`_TID_MARK`)."""
    descriptor, data = VpxPayloadDescriptor.parse(payload)
    if descriptor.partition_start and descriptor.partition_id == 0:
        if descriptor.tid is None:
            layer = _NO_TID
        else:
            tid, sync = descriptor.tid
            layer = tid | (_SYNC_BIT if sync else 0)
        return _TID_MARK + bytes((layer,)) + data
    return data


class PassThroughDecoder(Decoder):
    """A "decoder" that returns each encoded frame as one ``av.Packet``; a VP8 frame's
    :class:`TemporalLayer` is its ``opaque`` (None: the publisher sends no layers)."""

    def __init__(self, codec: RTCRtpCodecParameters) -> None:
        self.mime_type = codec.mimeType.lower()
        self.time_base = Fraction(1, codec.clockRate)

    def decode(self, encoded_frame: JitterFrame) -> list[Any]:
        data = encoded_frame.data
        layer = None
        if data[:2] == _TID_MARK and self.mime_type == "video/vp8":
            if data[2] != _NO_TID:
                layer = TemporalLayer(data[2] & ~_SYNC_BIT, bool(data[2] & _SYNC_BIT))
            data = data[3:]
        packet = av.Packet(data)
        packet.opaque = layer
        packet.pts = encoded_frame.timestamp
        packet.time_base = self.time_base
        packet.is_keyframe = is_keyframe(self.mime_type, data)
        STATS.frames_received += 1
        return [packet]


class PackOnlyEncoder:
    """Wraps aiortc's encoder for a codec: ``pack`` (packetize an encoded frame) only."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def pack(self, packet: Any) -> tuple[list[bytes], int]:
        result: tuple[list[bytes], int] = self._inner.pack(packet)
        payloads = result[0]
        STATS.packets_forwarded += len(payloads)
        STATS.bytes_forwarded += sum(map(len, payloads))
        return result

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        STATS.encode_refusals += 1
        raise EncodingRefused("the SFU forwards encoded frames; it never encodes")


def install() -> None:
    """Install the pass-through hooks in this process (idempotent).

    Raises:
        RuntimeError: this aiortc does not have the names the hooks replace (a version other than
            the pinned one).
    """
    global _installed
    if _installed:
        return
    for module, name in (
        (aiortc.rtcrtpreceiver, "get_decoder"),
        (aiortc.rtcrtpreceiver, "depayload"),
        (aiortc.rtcrtpsender, "get_encoder"),
    ):
        if not callable(getattr(module, name, None)):
            raise RuntimeError(f"aiortc {aiortc.__version__}: {module.__name__}.{name} is gone")
    real_get_encoder = aiortc.rtcrtpsender.get_encoder
    real_depayload = aiortc.rtcrtpreceiver.depayload

    def depayload(codec: RTCRtpCodecParameters, payload: bytes) -> bytes:
        if codec.name == "VP8":
            return _vp8_depayload(payload)
        return real_depayload(codec, payload)

    def get_decoder(codec: RTCRtpCodecParameters) -> Decoder:
        return PassThroughDecoder(codec)

    def get_encoder(codec: RTCRtpCodecParameters) -> Any:
        if codec.mimeType.lower() == "audio/red":
            primary = red.primary_payload_type(codec)
            opus = RTCRtpCodecParameters("audio/opus", 48000, 2, primary)
            return PackOnlyEncoder(red.RedPacker(real_get_encoder(opus), primary))
        return PackOnlyEncoder(real_get_encoder(codec))

    # Negotiate only what is forwarded: an offer with nothing else gets a clear refusal.
    for kind, codecs in aiortc.codecs.CODECS.items():
        kept = [c for c in codecs if c.mimeType.lower() in FORWARDED_MIME_TYPES]
        kept_types = {c.payloadType for c in kept}
        rtx = [
            c
            for c in codecs
            if c.mimeType.lower() == f"{kind}/rtx" and c.parameters.get("apt") in kept_types
        ]
        codecs[:] = [c for c in codecs if c in kept or c in rtx]
    aiortc.rtcrtpreceiver.get_decoder = get_decoder  # type: ignore[assignment]
    aiortc.rtcrtpreceiver.depayload = depayload
    aiortc.rtcrtpsender.get_encoder = get_encoder
    _installed = True
    log.info("sfu: encoded pass-through installed (aiortc %s)", aiortc.__version__)


def installed() -> bool:
    """Whether :func:`install` ran in this process."""
    return _installed
