"""The per-subscriber layer decisions (sfu/congestion.py): pure, on a made-up clock."""

from __future__ import annotations

from sfu.congestion import (
    MAX_STREAMS,
    ConsumerDemand,
    GovernorSettings,
    LinkGovernor,
    VideoLayer,
)

S = GovernorSettings()
ALL, BASE, PAUSED = VideoLayer.ALL, VideoLayer.BASE, VideoLayer.PAUSED


def camera(key: str = "cam", *, priority: int = 0, layered: bool = False) -> ConsumerDemand:
    return ConsumerDemand(key, priority=priority, layered=layered, full_bps=800_000)


def estimated(
    governor: LinkGovernor, now: float, bps: float, consumers: list[ConsumerDemand]
) -> dict[str, VideoLayer]:
    """REMBs of ``bps`` over the 2 s before ``now`` (a trend, not a dip), then the plan."""
    changes: dict[str, VideoLayer] = {}
    for at in (now - 2.0, now - 1.0, now):
        governor.report(at, estimate_bps=bps)
        changes.update(governor.plan(at, consumers))
    return changes


def test_nothing_changes_before_the_receiver_reports() -> None:
    governor = LinkGovernor()
    assert governor.plan(0.0, [camera()]) == {}


def test_an_estimate_near_what_is_sent_is_a_healthy_link() -> None:
    # A receive-side estimate follows the incoming rate: 0.85 x 800 kbit/s is no congestion.
    governor = LinkGovernor()
    assert estimated(governor, 1.0, 0.85 * 800_000, [camera()]) == {}
    assert estimated(governor, 2.0, 2_000_000, [camera()]) == {}


def test_one_low_estimate_is_not_a_trend() -> None:
    governor = LinkGovernor()
    video = camera()
    for at, bps in [(1.0, 300_000), (2.0, 300_000), (2.5, 900_000), (3.0, 300_000), (4.0, 300_000)]:
        governor.report(at, estimate_bps=bps)
        assert governor.plan(at, [video]) == {}
    governor.report(3.0, estimate_bps=300_000)  # 2 s and 3 estimates below: a trend
    assert governor.plan(5.0, [video]) == {"cam": PAUSED}


def test_an_unlayered_video_pauses_when_the_estimate_falls() -> None:
    governor = LinkGovernor()
    video = camera()
    # 400 kbit/s x 0.85 leaves 340 for a video of 800.
    assert estimated(governor, 1.0, 400_000, [video]) == {"cam": PAUSED}
    assert video.layer is PAUSED


def test_a_layered_video_steps_to_its_base_layer_first_and_pauses_only_if_that_does_not_fit() -> (
    None
):
    governor = LinkGovernor()
    video = camera(layered=True)
    # 500 kbit/s leaves 425: the base layer (360) fits.
    assert estimated(governor, 1.0, 500_000, [video]) == {"cam": BASE}
    # Sending 360 kbit/s now; 200 kbit/s leaves 170: the base does not fit.
    assert estimated(governor, 4.0, 200_000, [video]) == {"cam": PAUSED}


def test_the_lowest_priority_steps_down_first_and_the_spotlight_is_kept() -> None:
    governor = LinkGovernor()
    spotlight = camera("spot", priority=10)
    grid = [camera(f"grid{i}") for i in range(3)]
    # 1.2 Mbit/s leaves 1,020 kbit/s: one camera fits.
    changes = estimated(governor, 1.0, 1_200_000, [*grid, spotlight])
    assert changes == {"grid0": PAUSED, "grid1": PAUSED, "grid2": PAUSED}
    assert spotlight.layer is ALL


def test_loss_alone_means_congestion_after_two_reports() -> None:
    governor = LinkGovernor()
    video = camera()
    governor.report(1.0, fraction_lost=0.2)
    assert governor.plan(1.0, [video]) == {}  # one lossy report is not a trend
    governor.report(2.0, fraction_lost=0.2)
    assert governor.plan(2.0, [video]) == {"cam": PAUSED}


def test_each_stream_is_judged_on_its_own_reports() -> None:
    # The receiver reports its audio and its video in turn: the video's losses are two in a row
    # for the video, though never two in a row of all reports.
    governor = LinkGovernor()
    video = camera()
    for at, stream, lost in ((1.0, 1, 0.0), (1.5, 2, 0.4), (2.0, 1, 0.0)):
        governor.report(at, fraction_lost=lost, stream=stream)
        assert governor.plan(at, [video]) == {}
    governor.report(2.5, fraction_lost=0.5, stream=2)
    assert governor.plan(2.5, [video]) == {"cam": PAUSED}


def test_the_same_report_twice_counts_once() -> None:
    governor = LinkGovernor()
    video = camera()
    for at in (1.0, 1.2):  # one interval, reported twice (the same highest sequence number)
        governor.report(at, fraction_lost=0.6, stream=7, highest_sequence=1000)
        assert governor.plan(at, [video]) == {}
    governor.report(2.0, fraction_lost=0.6, stream=7, highest_sequence=1050)
    assert governor.plan(2.0, [video]) == {"cam": PAUSED}


def test_a_paused_streams_old_loss_does_not_hold_back_the_probe() -> None:
    # Paused on loss: its receiver then reports no new packets for it, or stops reporting it.
    for last_report in ("repeated", "none"):
        governor = LinkGovernor()
        video = camera()
        video.full_bps = 300_000  # within reach of the estimate while paused
        governor.report(0.5, fraction_lost=0.6, stream=7, highest_sequence=100)
        governor.report(1.0, fraction_lost=0.6, stream=7, highest_sequence=150)
        assert governor.plan(1.0, [video]) == {"cam": PAUSED}
        if last_report == "repeated":
            governor.report(2.0, fraction_lost=0.0, stream=7, highest_sequence=150)
        governor.report(S.probe_s + 1, estimate_bps=90_000, fraction_lost=0.0, stream=8)
        assert governor.plan(S.probe_s + 1, [video]) == {"cam": ALL}, last_report


def test_reports_about_made_up_streams_keep_a_bounded_history() -> None:
    governor = LinkGovernor()
    for ssrc in range(10_000):
        governor.report(0.0, fraction_lost=0.0, stream=ssrc)
    assert len(governor.losses) == MAX_STREAMS
    assert 9_999 in governor.losses and 0 not in governor.losses


def test_a_queue_standing_at_the_bottleneck_steps_the_video_down() -> None:
    # A full buffer loses little and its receiver's estimate stops falling, but the round trip
    # shows it: 0.3 s at first, then 0.94 s for over a second.
    governor = LinkGovernor()
    video = camera(layered=True)
    governor.report(0.0, rtt_s=0.30)
    governor.report(1.0, rtt_s=0.94)
    assert governor.plan(1.0, [video]) == {}  # one round trip is not a trend
    governor.report(1.5, rtt_s=0.35)  # nor two that are not in a row
    governor.report(2.0, rtt_s=0.90)
    assert governor.plan(2.0, [video]) == {}
    governor.report(3.0, rtt_s=0.92)
    assert governor.plan(3.0, [video]) == {"cam": BASE}
    # The buffer drains from the step on: the next round trips are judged afresh.
    governor.report(3.5, rtt_s=0.80)
    assert governor.plan(3.5, [video]) == {}
    governor.report(4.0, rtt_s=0.32)
    assert governor.min_rtt_s == 0.30 and not governor.queued


def test_a_step_up_that_builds_a_queue_is_undone() -> None:
    governor = LinkGovernor()
    video = camera()
    governor.report(0.0, rtt_s=0.3)
    assert estimated(governor, 0.0, 200_000, [video]) == {"cam": PAUSED}
    governor.report(S.step_up_dwell_s, estimate_bps=2_000_000, rtt_s=0.31)
    assert governor.plan(S.step_up_dwell_s, [video]) == {"cam": ALL}
    governor.report(S.step_up_dwell_s + 1.0, rtt_s=0.6)  # the buffer fills
    assert governor.plan(S.step_up_dwell_s + 1.0, [video]) == {"cam": PAUSED}
    assert governor.backoff_s == 2 * S.probe_s


def test_a_step_down_is_judged_on_the_reports_after_it() -> None:
    # Lossy reports of the link at all layers step a layered video to its base; the next plan,
    # before any report of the base layer, does not pause it on the same reports.
    governor = LinkGovernor()
    video = camera(layered=True)
    governor.report(1.0, fraction_lost=0.2)
    governor.report(2.0, fraction_lost=0.2)
    assert governor.plan(2.0, [video]) == {"cam": BASE}
    assert governor.plan(2.5, [video]) == {}
    # Loss after the step down is the base layer's own: two lossy reports pause it.
    for at in (3.0, 4.0):
        governor.report(at, fraction_lost=0.2)
    assert governor.plan(4.0, [video]) == {"cam": PAUSED}


def test_a_low_estimate_before_a_step_down_does_not_count_after_it() -> None:
    governor = LinkGovernor()
    video = camera(layered=True)
    low = 0.5 * video.bps(BASE, S)  # too low even for the base layer
    governor.report(1.0, estimate_bps=low, fraction_lost=0.2)
    governor.report(1.5, estimate_bps=low)
    assert governor.plan(1.5, [video]) == {}  # 1 s low: no trend yet; one lossy report
    governor.report(2.0, fraction_lost=0.2)
    assert governor.plan(2.0, [video]) == {"cam": BASE}  # the loss
    # The base layer gets its own 2 s and 3 estimates below it before it pauses.
    for at in (2.5, 3.0, 3.5, 4.0):
        governor.report(at, estimate_bps=low)
        assert governor.plan(at, [video]) == {}
    governor.report(4.5, estimate_bps=low)
    assert governor.plan(4.5, [video]) == {"cam": PAUSED}


def test_stepping_up_waits_for_the_dwell_and_goes_one_step_at_a_time() -> None:
    governor = LinkGovernor()
    a, b = camera("a", layered=True, priority=2), camera("b", layered=True, priority=1)
    estimated(governor, 0.0, 300_000, [a, b])
    assert (a.layer, b.layer) == (PAUSED, PAUSED)
    governor.report(1.0, estimate_bps=5_000_000)
    assert governor.plan(1.0, [a, b]) == {}  # within the dwell
    assert governor.plan(S.step_up_dwell_s, [a, b]) == {"a": BASE}  # highest priority first
    assert governor.plan(S.step_up_dwell_s + 1, [a, b]) == {}
    assert governor.plan(2 * S.step_up_dwell_s, [a, b]) == {"a": ALL}
    assert governor.plan(3 * S.step_up_dwell_s, [a, b]) == {"b": BASE}
    assert governor.plan(4 * S.step_up_dwell_s, [a, b]) == {"b": ALL}
    assert governor.plan(5 * S.step_up_dwell_s, [a, b]) == {}


def test_without_room_in_the_estimate_a_probe_steps_up_and_a_lossy_probe_backs_off() -> None:
    governor = LinkGovernor()
    video = camera()
    video.full_bps = 300_000  # within reach of the estimate while paused
    governor.report(0.0, fraction_lost=0.0)
    assert estimated(governor, 0.0, 200_000, [video]) == {"cam": PAUSED}
    # Audio only: the receiver's estimate stays low; the probe waits probe_s of quiet.
    governor.report(5.0, estimate_bps=90_000, fraction_lost=0.0)
    assert governor.plan(5.0, [video]) == {}
    at = S.probe_s
    governor.report(at, estimate_bps=90_000, fraction_lost=0.0)
    assert governor.plan(at, [video]) == {"cam": ALL}  # the probe
    governor.report(at + 1, fraction_lost=0.3)  # it did not fit
    assert governor.plan(at + 1, [video]) == {"cam": PAUSED}
    assert governor.probe_wait_s == 2 * S.probe_s
    governor.report(at + 1 + S.probe_s, estimate_bps=90_000, fraction_lost=0.0)
    assert governor.plan(at + 1 + S.probe_s, [video]) == {}  # the wait doubled
    later = at + 1 + 2 * S.probe_s
    governor.report(later, estimate_bps=90_000, fraction_lost=0.0)
    assert governor.plan(later, [video]) == {"cam": ALL}


def test_a_step_up_the_estimate_allowed_is_undone_on_loss_and_the_next_waits_longer() -> None:
    # The receiver's estimate reads above what the link takes (it follows what arrives): each
    # step up it allows overfills the link. Undone, and waited out longer each time.
    governor = LinkGovernor()
    video = camera()
    assert estimated(governor, 0.0, 200_000, [video]) == {"cam": PAUSED}
    governor.report(S.step_up_dwell_s, estimate_bps=2_000_000, fraction_lost=0.0)
    assert governor.plan(S.step_up_dwell_s, [video]) == {"cam": ALL}  # room, says the estimate
    at = S.step_up_dwell_s + 1
    governor.report(at, fraction_lost=0.4)  # but the link's buffer overflows
    assert governor.plan(at, [video]) == {"cam": PAUSED}
    assert governor.backoff_s == 2 * S.probe_s
    governor.report(at + S.step_up_dwell_s, estimate_bps=2_000_000, fraction_lost=0.0)
    assert governor.plan(at + S.step_up_dwell_s, [video]) == {}  # room again, still waiting
    again = at + 2 * S.probe_s
    assert governor.plan(again, [video]) == {"cam": ALL}
    governor.report(again + 1, fraction_lost=0.4)
    assert governor.plan(again + 1, [video]) == {"cam": PAUSED}
    assert governor.backoff_s == 4 * S.probe_s
    # A step that holds ends the back-off.
    third = again + 1 + 4 * S.probe_s
    governor.report(third, estimate_bps=2_000_000, fraction_lost=0.0)
    assert governor.plan(third, [video]) == {"cam": ALL}
    governor.report(third + 1, estimate_bps=2_100_000, fraction_lost=0.0)
    assert governor.plan(third + S.probe_check_s + 0.1, [video]) == {}
    assert (video.layer, governor.backoff_s, governor.probe_wait_s) == (ALL, 0.0, S.probe_s)


def test_a_video_far_beyond_what_the_link_carried_is_tried_only_at_the_longest_wait() -> None:
    governor = LinkGovernor()
    camera_1m = ConsumerDemand("cam", full_bps=1_000_000)
    for at in (0.5, 1.0):  # 94 % of a 1 Mbit/s camera lost: the link carried about 60 kbit/s
        governor.report(at, fraction_lost=0.94)
    assert governor.plan(1.0, [camera_1m]) == {"cam": PAUSED}
    assert governor.capacity_bps is not None and governor.capacity_bps < 100_000
    # The receiver's estimate may read anything meanwhile (aiortc's rises with audio only).
    for at in (S.probe_s + 1, 2 * S.probe_s, S.probe_max_s):
        governor.report(at, estimate_bps=500_000, fraction_lost=0.0)
        assert governor.plan(at, [camera_1m]) == {}, at
    governor.report(S.probe_max_s + 1, estimate_bps=500_000, fraction_lost=0.0)
    assert governor.plan(S.probe_max_s + 1, [camera_1m]) == {"cam": ALL}
    # Within reach (4 x what the link carried), the usual wait.
    governor = LinkGovernor()
    camera_300k = ConsumerDemand("cam", full_bps=300_000)
    assert estimated(governor, 0.0, 100_000, [camera_300k]) == {"cam": PAUSED}
    governor.report(S.probe_s, estimate_bps=100_000, fraction_lost=0.0)
    assert governor.plan(S.probe_s, [camera_300k]) == {"cam": ALL}
    # A step up that holds forgets the old capacity.
    governor.report(S.probe_s + 1, estimate_bps=400_000, fraction_lost=0.0)
    assert governor.plan(S.probe_s + S.probe_check_s + 0.1, [camera_300k]) == {}
    assert governor.capacity_bps is None


def test_a_probe_that_holds_keeps_its_layer_and_resets_the_wait() -> None:
    governor = LinkGovernor(probe_wait_s=32.0, changed_at=0.0)
    video = camera()
    video.full_bps = 300_000  # within reach of the estimate while paused
    video.layer = PAUSED
    governor.report(0.0, estimate_bps=90_000, fraction_lost=0.0)
    assert governor.plan(31.0, [video]) == {}
    assert governor.plan(40.0, [video]) == {"cam": ALL}
    governor.report(41.0, estimate_bps=1_500_000, fraction_lost=0.01)
    assert governor.plan(41.0, [video]) == {}
    assert governor.plan(40.0 + S.probe_check_s + 0.1, [video]) == {}
    assert governor.probe_wait_s == S.probe_s
    assert video.layer is ALL


def test_a_probe_fails_when_the_estimate_falls_after_it() -> None:
    governor = LinkGovernor()
    video = camera()
    video.layer = PAUSED
    governor.report(0.0, estimate_bps=60_000, fraction_lost=0.0)
    assert governor.plan(S.probe_s, [video]) == {"cam": ALL}
    governor.report(S.probe_s + 0.5, estimate_bps=100_000)
    assert governor.plan(S.probe_s + 0.5, [video]) == {}
    governor.report(S.probe_s + 1, estimate_bps=80_000)  # over-use: the estimator backs off
    assert governor.plan(S.probe_s + 1, [video]) == {"cam": PAUSED}


def test_a_receiver_ramping_up_after_a_probe_is_not_congestion() -> None:
    # After a pause a receive-side estimate starts from what it last received and grows ~8 %/s:
    # far below the video for a while, but rising.
    governor = LinkGovernor()
    video = camera()
    video.layer = PAUSED
    governor.report(0.0, estimate_bps=60_000, fraction_lost=0.0)
    assert governor.plan(S.probe_s, [video]) == {"cam": ALL}
    at, bps = S.probe_s, 60_000.0
    for _ in range(20):
        at, bps = at + 0.5, bps * 1.04
        governor.report(at, estimate_bps=bps, fraction_lost=0.0)
        assert governor.plan(at, [video]) == {}, (at, bps)
    assert video.layer is ALL
