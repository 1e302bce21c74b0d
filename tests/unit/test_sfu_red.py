"""Redundant audio (sfu/red.py, RFC 2198): the payload format, the packer and the SDP rules."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest
from aiortc.codecs import get_encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from sfu import red

OPUS = RTCRtpCodecParameters("audio/opus", 48000, 2, 96)


def test_the_rfc_2198_layout_one_redundant_block_then_the_primary() -> None:
    payload = red.pack(b"PRIMARY", 96, [(960, b"OLD")])
    # F=1|PT, then 14 bits of offset and 10 of length; F=0|PT; the blocks, oldest first.
    assert payload[0] == 0x80 | 96
    assert int.from_bytes(payload[1:4], "big") == (960 << 10) | 3
    assert payload[4] == 96
    assert payload[5:] == b"OLDPRIMARY"
    assert red.unpack(payload) == [red.Block(96, 960, b"OLD"), red.Block(96, 0, b"PRIMARY")]


def test_a_payload_with_no_redundancy_is_one_byte_longer() -> None:
    assert red.pack(b"x" * 80, 96) == bytes([96]) + b"x" * 80
    assert red.unpack(bytes([96]) + b"abc") == [red.Block(96, 0, b"abc")]


@pytest.mark.parametrize(
    ("offset", "size"), [(red.MAX_OFFSET + 1, 10), (-1, 10), (960, red.MAX_BLOCK + 1)]
)
def test_a_block_that_does_not_fit_its_fields_is_refused(offset: int, size: int) -> None:
    with pytest.raises(ValueError):
        red.pack(b"p", 96, [(offset, b"r" * size)])


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        bytes([0x80 | 96, 0, 0]),  # a redundant block's header cut short
        bytes([0x80 | 96]) + ((960 << 10) | 50).to_bytes(3, "big") + bytes([96]) + b"short",
    ],
)
def test_a_truncated_payload_is_refused(payload: bytes) -> None:
    with pytest.raises(ValueError):
        red.unpack(payload)


def opus_frame(pts: int, data: bytes) -> av.Packet:
    packet = av.Packet(data)
    packet.pts = pts
    packet.time_base = Fraction(1, 48000)
    return packet


def test_the_packer_carries_each_frame_in_the_next_packet() -> None:
    packer = red.RedPacker(get_encoder(OPUS), 96)
    [first], t0 = packer.pack(opus_frame(0, b"one"))
    [second], t1 = packer.pack(opus_frame(960, b"two"))
    assert (t0, t1) == (0, 960)
    assert red.unpack(first) == [red.Block(96, 0, b"one")]
    assert red.unpack(second) == [red.Block(96, 960, b"one"), red.Block(96, 0, b"two")]
    # A lost second packet is rebuilt from the third: the receiver has every frame.
    [third], _ = packer.pack(opus_frame(1920, b"three"))
    blocks = red.unpack(third)
    assert [b.data for b in blocks] == [b"two", b"three"]
    assert blocks[0].offset == 960


def test_after_a_long_silence_or_a_large_frame_the_packet_carries_the_primary_alone() -> None:
    packer = red.RedPacker(get_encoder(OPUS), 96)
    packer.pack(opus_frame(0, b"before"))
    # DTX: the next frame comes 0.5 s later, past the 14-bit offset (341 ms at 48 kHz).
    [late], _ = packer.pack(opus_frame(24_000, b"after"))
    assert red.unpack(late) == [red.Block(96, 0, b"after")]
    packer.pack(opus_frame(24_960, b"x" * (red.MAX_BLOCK + 1)))
    [next_], _ = packer.pack(opus_frame(25_920, b"small"))
    assert red.unpack(next_) == [red.Block(96, 0, b"small")]


def test_the_primary_payload_type_comes_from_the_fmtp() -> None:
    assert red.primary_payload_type(red.RED_CODEC) == red.OPUS_PAYLOAD_TYPE
    codec = RTCRtpCodecParameters("audio/red", 48000, 2, 63, parameters={"111/111": None})
    assert red.primary_payload_type(codec) == 111
    mixed = RTCRtpCodecParameters("audio/red", 48000, 2, 63, parameters={"111/0": None})
    with pytest.raises(ValueError):
        red.primary_payload_type(mixed)


OFFER = "\r\n".join(
    [
        "v=0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0",
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:63 red/48000/2",
        "a=fmtp:63 111/111",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 63",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:63 H264/90000",
        "",
    ]
)


def test_a_publishers_offer_loses_red_and_nothing_else() -> None:
    out = red.without_red(OFFER)
    lines = out.split("\r\n")
    assert "m=audio 9 UDP/TLS/RTP/SAVPF 111 9 0" in lines
    assert not any(line.startswith(("a=rtpmap:63 red", "a=fmtp:63")) for line in lines)
    assert "a=fmtp:111 minptime=10;useinbandfec=1" in lines
    # Only the audio sections are read (a made-up video payload type of the same number stays).
    assert "m=video 9 UDP/TLS/RTP/SAVPF 96 63" in lines
    assert "a=rtpmap:63 H264/90000" in lines
    assert red.without_red("v=0\nm=audio 9 RTP/AVP 0\n") == "v=0\nm=audio 9 RTP/AVP 0\n"
