"""The media scenario's pure parts: which bots a process runs, where they gather ICE candidates,
what the run's summary makes of their reports, the first-frame target of the gate, and the
bots' test pattern."""

from __future__ import annotations

import asyncio

from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder, vp8_depayload
from aiortc.jitterbuffer import JitterFrame

from loadtest import slo
from loadtest.media import MediaResults, ice_addresses
from loadtest.media_bot import PatternVideoTrack
from loadtest.media_swarm import bot_specs


def test_every_room_gets_its_subscribers_then_its_publishers() -> None:
    specs = bot_specs(["a", "b"], 2, 3)
    assert [(s.room, s.role) for s in specs[:5]] == [("a", "subscriber")] * 3 + [
        ("a", "publisher")
    ] * 2
    assert len(specs) == 10 and len({s.identity for s in specs}) == 10


def test_bots_gather_ice_on_loopback_for_a_loopback_server() -> None:
    assert ice_addresses("", "ws://127.0.0.1:8080/ws") == "127.0.0.1"
    assert ice_addresses("", "ws://localhost:8080/ws") == "127.0.0.1"
    assert ice_addresses("", "wss://class.example/ws") == ""
    assert ice_addresses("10.0.0.5", "ws://127.0.0.1:8080/ws") == "10.0.0.5"


def _subscriber(frames: list[int], missing: int = 0) -> dict[str, object]:
    tracks = [
        {"kind": "video", "frames": n, "fps": 15.0 if n else 0.0, "first_frame_ms": 100.0 + i}
        for i, n in enumerate(frames)
    ]
    for t in tracks:
        if not t["frames"]:
            t["first_frame_ms"] = None
    return {"tracks": tracks, "missing": missing, "bytes_received": 10, "decode_errors": 0}


def test_the_summary_counts_a_video_track_without_frames_as_missing_from_the_first_frames() -> None:
    results = MediaResults(subscribers=[_subscriber([30, 30]), _subscriber([30, 0], missing=1)])
    summary = results.summary(2)
    assert summary["video_tracks_received"] == 3
    assert summary["video_tracks_missing"] == 1
    assert summary["first_frame_ms"]["p100"] == 101.0


def test_the_first_frame_target_fails_when_slower_or_when_a_subscriber_got_none() -> None:
    targets = slo.Targets(media_first_frame_ms=500)

    def verdict(first: float | None) -> bool:
        (v,) = slo.evaluate(targets, slo.Measured(None, None, 0, None, first))
        return v.ok

    assert verdict(120.0)
    assert not verdict(501.0)
    assert not verdict(None)


def test_the_pattern_track_makes_pictures_of_any_size_that_vp8_encodes_and_that_move() -> None:
    # libav pads each plane's rows to its line size (240 pixels wide: 128-byte chroma lines).
    for width, height in ((640, 480), (320, 240), (240, 180), (250, 190)):
        track = PatternVideoTrack(width, height, fps=1000.0)
        first, second = (asyncio.run(track.recv()) for _ in range(2))
        assert (first.width, first.height) == (width, height)
        luma = [bytes(f.planes[0]) for f in (first, second)]
        assert luma[0] != luma[1], "every frame differs"
        assert luma[0][:3] == bytes([0, 2, 4]) and luma[1][:3] == bytes([2, 4, 6])
        packets, _ = Vp8Encoder().encode(first)
        assert packets and sum(len(p) for p in packets) > 0
        [picture] = Vp8Decoder().decode(
            JitterFrame(data=b"".join(map(vp8_depayload, packets)), timestamp=0)
        )
        assert (picture.width, picture.height) == (width, height)
