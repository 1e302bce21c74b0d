"""The SFU's answers ask publishers for Opus in-band FEC and DTX (sfu/transport.py)."""

from __future__ import annotations

from sfu.transport import with_opus_resilience

SDP = "\r\n".join(
    [
        "v=0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 96 0",
        "a=rtpmap:96 opus/48000/2",
        "a=rtpmap:0 PCMU/8000",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=0",
        "m=video 9 UDP/TLS/RTP/SAVPF 97",
        "a=rtpmap:97 VP8/90000",
        "",
    ]
)


def test_the_sfus_answers_ask_publishers_for_opus_fec_and_dtx() -> None:
    lines = with_opus_resilience(SDP).split("\r\n")
    assert "a=fmtp:96 useinbandfec=1;usedtx=1" in lines
    assert (
        lines.index("a=fmtp:96 useinbandfec=1;usedtx=1")
        == lines.index("a=rtpmap:96 opus/48000/2") + 1
    )
    assert "a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1" in lines
    assert not any(line.startswith(("a=fmtp:0", "a=fmtp:97")) for line in lines)
    assert with_opus_resilience(with_opus_resilience(SDP)) == with_opus_resilience(SDP)
