"""The SFU's resend limit (sfu.nack): what NACKs may have resent, pure."""

from __future__ import annotations

from sfu.nack import DEFAULT_RTT_S, FORGET_S, MAX_RESENDS, MAX_TRACKED, ResendLimiter


def test_a_named_packet_is_resent_once_per_round_trip_and_a_few_times_in_all() -> None:
    limiter = ResendLimiter()
    assert limiter.allow([10, 11, 12], now=0.0, rtt_s=0.3) == [10, 11, 12]
    # Named again before the round trip is over: the resend cannot have been lost yet.
    assert limiter.allow([10, 11, 12, 13], now=0.2, rtt_s=0.3) == [13]
    assert limiter.allow([10, 11, 12, 13], now=0.31, rtt_s=0.3) == [10, 11, 12]
    assert limiter.allow([10], now=0.62, rtt_s=0.3) == [10]
    # The third resend was the last.
    assert MAX_RESENDS == 3
    assert limiter.allow([10], now=0.93, rtt_s=0.3) == []
    assert limiter.allow([10], now=1.5, rtt_s=0.3) == []


def test_one_nack_naming_a_packet_many_times_resends_it_once() -> None:
    assert ResendLimiter().allow([5, 5, 5, 6, 5], now=0.0) == [5, 6]


def test_without_a_round_trip_the_gap_is_the_default_and_never_under_ten_ms() -> None:
    limiter = ResendLimiter()
    assert limiter.allow([1], now=0.0) == [1]
    assert limiter.allow([1], now=DEFAULT_RTT_S - 0.01) == []
    assert limiter.allow([1], now=DEFAULT_RTT_S) == [1]
    loopback = ResendLimiter()
    assert loopback.allow([1], now=0.0, rtt_s=0.0001) == [1]
    assert loopback.allow([1], now=0.005, rtt_s=0.0001) == []
    assert loopback.allow([1], now=0.011, rtt_s=0.0001) == [1]


def test_a_number_forgotten_after_a_while_may_name_a_new_packet() -> None:
    limiter = ResendLimiter()
    for step in range(MAX_RESENDS):
        assert limiter.allow([7], now=step * 0.2) == [7]
    assert limiter.allow([7], now=0.5) == []
    last = (MAX_RESENDS - 1) * 0.2
    assert limiter.allow([7], now=last + FORGET_S + 0.01) == [7]


def test_sequence_numbers_are_16_bits() -> None:
    limiter = ResendLimiter()
    assert limiter.allow([65_536 + 3], now=0.0) == [3]
    assert limiter.allow([3], now=0.01) == []


def test_only_packets_the_sender_kept_are_resent_or_remembered() -> None:
    limiter = ResendLimiter()
    kept = set(range(100, 228))  # aiortc keeps the last 128 packets
    assert limiter.allow(range(90, 110), now=0.0, kept=kept.__contains__) == list(range(100, 110))
    for now in (0.2, 0.4):
        assert limiter.allow(range(100, 110), now, kept=kept.__contains__) == list(range(100, 110))
    # A flood of made-up numbers is not resent and does not push the spent ones out of memory
    # (forgotten, they would go out again).
    made_up = range(228, 65_536 + 100)  # to 99, past the wrap
    for start in range(0, len(made_up), 1_000):
        named = made_up[start : start + 1_000]
        assert limiter.allow(named, now=0.5, kept=kept.__contains__) == []
    assert len(limiter._resent) == 10
    assert limiter.allow(range(100, 110), now=0.7, kept=kept.__contains__) == []


def test_memory_stays_bounded_whatever_is_named() -> None:
    limiter = ResendLimiter()
    for start in range(0, 65_536, 512):
        limiter.allow(range(start, start + 512), now=start / 65_536)
    assert len(limiter._resent) == MAX_TRACKED
