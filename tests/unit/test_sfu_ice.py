"""The SFU's ICE agent is never given a client's candidates (sfu.ice.without_candidates): pure SDP
rewriting, no socket. Whatever address a candidate names (link-local, multicast, unspecified,
broadcast, private, an mDNS name, loopback), it is gone before aiortc and aioice see the SDP."""

from __future__ import annotations

from aiortc.sdp import SessionDescription

from sfu.ice import without_candidates

ADDRESSES = [
    "169.254.169.254",  # link-local (a cloud's metadata service)
    "224.0.0.251",  # multicast
    "0.0.0.0",  # unspecified
    "255.255.255.255",  # broadcast
    "10.1.2.3",  # private
    "fe80::1",  # IPv6 link-local
    "ff02::1",  # IPv6 multicast
    "3f1c2a8e-0f4b-4c1e-9d1a-6f2a5b7c9e01.local",  # mDNS (aioice would resolve it on the LAN)
    "127.0.0.1",
]

OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=sendonly",
        "a=rtpmap:96 VP8/90000",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        "a=setup:actpass",
        *(
            f"a=candidate:{i} 1 udp {2130706431 - i} {address} {50000 + i} typ host"
            for i, address in enumerate(ADDRESSES)
        ),
        "a=candidate:99 1 udp 1694498815 203.0.113.7 61000 typ srflx raddr 0.0.0.0 rport 0",
        "a=end-of-candidates",
        "",
    ]
)


def test_every_candidate_and_the_end_of_candidates_are_removed() -> None:
    stripped = without_candidates(OFFER)
    assert "candidate" not in stripped
    parsed = SessionDescription.parse(stripped)
    assert parsed.media[0].ice_candidates == []
    assert not parsed.media[0].ice_candidates_complete
    assert SessionDescription.parse(OFFER).media[0].ice_candidates  # they were there


def test_every_other_line_is_kept_as_it_was() -> None:
    kept = [line for line in OFFER.split("\r\n") if "candidate" not in line]
    assert without_candidates(OFFER).split("\r\n") == kept


def test_line_endings_and_a_last_line_without_one() -> None:
    assert without_candidates("v=0\na=candidate:1 1 udp 1 10.0.0.1 9 typ host\na=mid:0\n") == (
        "v=0\na=mid:0\n"
    )
    assert without_candidates("v=0\r\na=end-of-candidates") == "v=0\r\n"
    # An attribute that only starts like one is kept.
    assert without_candidates("a=candidates-are-fine\r\n") == "a=candidates-are-fine\r\n"
