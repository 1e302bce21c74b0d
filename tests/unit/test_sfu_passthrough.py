"""The pass-through receive side keeps a VP8 frame's temporal layer (sfu/passthrough.py)."""

from __future__ import annotations

from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from sfu.passthrough import PassThroughDecoder, _vp8_depayload

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
#: A VP8 interframe's first bytes (frame tag bit 0 = 1) and a keyframe's (bit 0 = 0).
INTER, KEY = b"\x31\x02\x00" + b"\x11" * 20, b"\x30\x02\x00\x9d\x01\x2a" + b"\x22" * 20


def payload(data: bytes, *, start: bool = True, tid: int | None = None) -> bytes:
    """One RTP payload: RFC 7741's descriptor (with a TID when ``tid`` is given), then ``data``."""
    descriptor = VpxPayloadDescriptor(
        partition_start=int(start),
        partition_id=0,
        picture_id=17,
        tl0picidx=3 if tid is not None else None,
        tid=(tid, 1) if tid is not None else None,
    )
    return bytes(descriptor) + data


def frame(*payloads: bytes) -> JitterFrame:
    """What aiortc's jitter buffer hands the decoder: the depayloaded packets joined."""
    return JitterFrame(data=b"".join(_vp8_depayload(p) for p in payloads), timestamp=9000)


def test_a_frames_temporal_layer_reaches_the_forwarded_packet() -> None:
    decoder = PassThroughDecoder(VP8)
    [packet] = decoder.decode(frame(payload(INTER[:10], tid=2), payload(INTER[10:], start=False)))
    assert packet.opaque == 2
    assert bytes(packet) == INTER  # the mark is gone: the bitstream is forwarded as it came
    assert not packet.is_keyframe


def test_a_keyframe_of_the_base_layer() -> None:
    [packet] = PassThroughDecoder(VP8).decode(frame(payload(KEY, tid=0)))
    assert packet.opaque == 0
    assert packet.is_keyframe
    assert bytes(packet) == KEY


def test_a_publisher_without_temporal_layers_gives_no_layer() -> None:
    [packet] = PassThroughDecoder(VP8).decode(frame(payload(KEY)))
    assert packet.opaque is None
    assert packet.is_keyframe
    assert bytes(packet) == KEY


def test_the_senders_private_names_the_round_trip_reads_exist_in_the_pinned_aiortc() -> None:
    # sfu.transport reads the last sender report's LSR and send time from each sender to
    # measure round trips (sfu.congestion); another aiortc version must fail here, not silently
    # measure none.
    from aiortc import RTCRtpSender

    names = RTCRtpSender.__init__.__code__.co_names
    assert {"_RTCRtpSender__lsr", "_RTCRtpSender__lsr_time", "_ssrc"} <= set(names)
