"""bench.audio_continuity: what counts as audio a student heard (no server, no benchmark run)."""

from __future__ import annotations

import pytest

from bench.audio_continuity import FRAME_TICKS, Arrival, continuity, opus_has_lbrr
from bench.sfu_clip import encode_voice_clip

T0 = 100.0
ORIGIN = 2**32 - 5 * FRAME_TICKS  # the timestamps wrap a few frames in


def stream(frames: int, transit_s: float = 0.15, lbrr: bool = False) -> list[Arrival]:
    """Frame k sent at T0 + 20 ms x k, arriving ``transit_s`` later."""
    return [
        Arrival((ORIGIN + k * FRAME_TICKS) % 2**32, T0 + 0.02 * k + transit_s, lbrr)
        for k in range(frames)
    ]


def test_every_frame_on_time_is_full_continuity_across_a_timestamp_wrap() -> None:
    result = continuity(stream(500), T0 + 1, T0 + 9, 0.1)
    assert result.expected == 400  # 8 s of 20 ms frames
    assert result.share == 1.0
    assert result.late == result.missing == 0


def test_lost_and_late_frames_are_not_heard_and_fec_needs_the_next_packet_with_lbrr() -> None:
    arrivals = stream(500, lbrr=True)
    del arrivals[100]  # lost: the next packet's LBRR can rebuild it
    del arrivals[199:201]  # frames 200 and 201 lost: 200's copy was in 201, gone too
    late = arrivals[300 - 3]  # frame 300 (after three deletions) arrives 150 ms late
    arrivals[297] = Arrival(late.timestamp, late.arrival_s + 0.15, True)
    result = continuity(arrivals, T0 + 1, T0 + 9, 0.1)
    assert (result.missing, result.late) == (3, 1)
    assert result.on_time == result.expected - 4
    assert result.fec_recoverable == 3  # 100, 201 (from 202) and 300 (from 301)


def test_the_allowance_decides_late() -> None:
    arrivals = stream(100)
    slow = arrivals[50]
    arrivals[50] = Arrival(slow.timestamp, slow.arrival_s + 0.08, False)
    assert continuity(arrivals, T0, T0 + 2.5, 0.05).late == 1
    assert continuity(arrivals, T0, T0 + 2.5, 0.1).late == 0


def test_nothing_received_is_nothing_expected_and_a_bad_window_is_refused() -> None:
    assert continuity([], T0, T0 + 1, 0.1).share == 0.0
    with pytest.raises(ValueError):
        continuity(stream(10), T0 + 1, T0, 0.1)


def test_lbrr_is_read_from_opus_packets_only_when_the_encoder_adds_it() -> None:
    with_fec = encode_voice_clip(32_000, fec_loss_pct=10, loop=40).frames
    without = encode_voice_clip(32_000, fec_loss_pct=0, loop=40).frames
    assert sum(map(opus_has_lbrr, with_fec)) > len(with_fec) / 4
    assert not any(map(opus_has_lbrr, without))
    assert not opus_has_lbrr(b"\xf8")  # CELT-only, or too short: never
