"""The pass-through receive side keeps a VP8 frame's temporal layer (sfu/passthrough.py)."""

from __future__ import annotations

from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from sfu.passthrough import PassThroughDecoder, TemporalLayer, _vp8_depayload, temporal_layer

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
#: A VP8 interframe's first bytes (frame tag bit 0 = 1) and a keyframe's (bit 0 = 0).
INTER, KEY = b"\x31\x02\x00" + b"\x11" * 20, b"\x30\x02\x00\x9d\x01\x2a" + b"\x22" * 20


def payload(data: bytes, *, start: bool = True, tid: int | None = None, sync: bool = True) -> bytes:
    """One RTP payload: RFC 7741's descriptor (with a TID and Y bit when ``tid`` is given), then
    ``data``."""
    descriptor = VpxPayloadDescriptor(
        partition_start=int(start),
        partition_id=0,
        picture_id=17,
        tl0picidx=3 if tid is not None else None,
        tid=(tid, int(sync)) if tid is not None else None,
    )
    return bytes(descriptor) + data


def frame(*payloads: bytes) -> JitterFrame:
    """What aiortc's jitter buffer hands the decoder: the depayloaded packets joined."""
    return JitterFrame(data=b"".join(_vp8_depayload(p) for p in payloads), timestamp=9000)


def test_a_frames_temporal_layer_reaches_the_forwarded_packet() -> None:
    decoder = PassThroughDecoder(VP8)
    [packet] = decoder.decode(frame(payload(INTER[:10], tid=2), payload(INTER[10:], start=False)))
    assert temporal_layer(packet) == TemporalLayer(2, sync=True)
    assert bytes(packet) == INTER  # the mark is gone: the bitstream is forwarded as it came
    assert not packet.is_keyframe


def test_a_frame_without_the_layer_sync_bit() -> None:
    # Libwebrtc's L1T3 sets Y on every other TL1 and TL2 frame (measured from Chromium 156):
    # TL0, TL2 Y, TL1 Y, TL2, TL0, TL2, TL1, TL2.
    decoder = PassThroughDecoder(VP8)
    [packet] = decoder.decode(frame(payload(INTER, tid=2, sync=False)))
    assert temporal_layer(packet) == TemporalLayer(2, sync=False)
    [packet] = decoder.decode(frame(payload(INTER, tid=3, sync=True)))
    assert temporal_layer(packet) == TemporalLayer(3, sync=True)


def test_a_keyframe_of_the_base_layer() -> None:
    [packet] = PassThroughDecoder(VP8).decode(frame(payload(KEY, tid=0)))
    assert temporal_layer(packet) == TemporalLayer(0, sync=True)
    assert packet.is_keyframe
    assert bytes(packet) == KEY


def test_a_publisher_without_temporal_layers_gives_no_layer() -> None:
    [packet] = PassThroughDecoder(VP8).decode(frame(payload(KEY)))
    assert temporal_layer(packet) is None
    assert packet.is_keyframe
    assert bytes(packet) == KEY


def test_the_senders_private_names_the_round_trip_reads_exist_in_the_pinned_aiortc() -> None:
    # sfu.transport reads the last sender report's LSR and send time from each sender to
    # measure round trips (sfu.congestion); another aiortc version must fail here, not silently
    # measure none.
    from aiortc import RTCRtpSender

    names = RTCRtpSender.__init__.__code__.co_names
    assert {"_RTCRtpSender__lsr", "_RTCRtpSender__lsr_time", "_ssrc"} <= set(names)
