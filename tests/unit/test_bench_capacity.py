"""The capacity ladder's pure parts (bench/capacity.py): a step's verdict from locust's summary,
the largest step held, the CPU over the hold, the ramp, the command line."""

from __future__ import annotations

from typing import Any

from bench import capacity


def summary(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "fanout_ms": {"count": 1000, "p50": 8.0, "p95": 14.7, "p99": 18.9, "p100": 21.1},
        "ack_p99_ms": 15.0,
        "joins": 200,
        "join_failures": 0,
        "delivery": {"lines": 17, "delivered": 1000, "expected": 1000, "ratio": 1.0},
    }
    return {**base, **overrides}


def test_a_step_within_every_target_holds() -> None:
    assert capacity.misses(summary(), 200) == []


def test_each_missed_target_is_named() -> None:
    fanout = {"count": 5, "p50": 900.0, "p95": 1500.1, "p99": 2000.0, "p100": 2100.0}
    missed = capacity.misses(
        summary(fanout_ms=fanout, ack_p99_ms=1200.0, join_failures=3, joins=197), 200
    )
    assert [m.split()[0] for m in missed] == ["fan-out", "ack", "3", "197"]
    assert missed[3] == "197 of 200 joined"


def test_targets_are_inclusive_like_the_slo_gate() -> None:
    fanout = {"count": 5, "p50": 1.0, "p95": 1500.0, "p99": 1500.0, "p100": 1500.0}
    assert capacity.misses(summary(fanout_ms=fanout, ack_p99_ms=1000.0), 200) == []


def test_no_summary_or_no_sample_is_a_miss() -> None:
    assert capacity.misses(None, 10) == ["no summary"]
    empty = {"count": 0, "p50": None, "p95": None, "p99": None, "p100": None}
    missed = capacity.misses(summary(fanout_ms=empty, ack_p99_ms=None), 200)
    assert len(missed) == 2 and missed[0].startswith("fan-out p95 None")


def test_the_largest_held_step_stops_at_the_first_miss() -> None:
    steps = [
        {"users": 500, "held": True},
        {"users": 1000, "held": True},
        {"users": 1500, "held": False},
        {"users": 2000, "held": True},  # after a miss (--keep-going): not counted
    ]
    assert capacity.largest_held(steps) == 1000
    assert capacity.largest_held([{"users": 500, "held": False}]) is None
    assert capacity.largest_held([]) is None


def test_hold_window_cpu_takes_the_samples_nearest_the_window() -> None:
    samples = [
        (0.0, {"node1": 0.0, "locust1": 1.0}),
        (1.0, {"node1": 0.2, "locust1": 2.0}),
        (2.0, {"node1": 0.7, "locust1": 2.9, "locust2": 0.5}),
        (3.0, {"node1": 1.2, "locust1": 3.8, "locust2": 1.4}),
    ]
    used, window = capacity.hold_window_cpu(samples, 0.9, 3.2)
    assert window == 2.0
    assert used["node1"] == 1.0
    assert round(used["locust1"], 6) == 1.8
    assert used["locust2"] == 1.4  # started inside the window: counted from 0
    assert capacity.hold_window_cpu(samples[:1], 0.0, 1.0) == ({}, 0.0)


def test_share_and_ramp() -> None:
    assert capacity.share(15.0, 30.0) == 0.5
    assert capacity.share(1.0, 0.0) == 0.0
    assert capacity.ramp_seconds(3000, 100) == 30.0
    assert capacity.ramp_seconds(10, 0) == 0.0


def test_quick_is_one_small_step() -> None:
    args = capacity.parse_args(["--quick"])
    assert (args.users, args.hold_s) == ([100], 8.0)
    args = capacity.parse_args(["--users", "500,1_000", "--sides", "cluster"])
    assert (args.users, args.sides) == ([500, 1000], ["cluster"])


def test_a_row_shows_generator_and_server_cpu_and_the_verdict() -> None:
    step = {
        "users": 200,
        "summary": summary(),
        "receipts_per_s": 180.4,
        "frames_sent_per_s": 400.0,
        "hold_share": {"locust11": 0.95, "locust12": 0.4, "node1": 0.5, "node2": 0.45},
        "held": True,
        "harness_bound": True,
    }
    row = capacity.step_row(step)
    assert len(row) == len(capacity.HEADERS)
    assert row[10] == "95% + 40%" and row[11] == "50% + 45%"
    assert row[12] == "-" and row[-2] == "n/a" and row[-1] == "held (harness-bound)"


def test_a_process_gone_before_the_windows_end_keeps_its_last_value() -> None:
    samples = [
        (0.0, {"node1": 0.0, "locust2": 1.0}),
        (1.0, {"node1": 0.5, "locust2": 1.9}),
        (2.0, {"node1": 1.0}),  # the locust worker exited
    ]
    used, window = capacity.hold_window_cpu(samples, 0.0, 2.0)
    assert window == 2.0 and {k: round(v, 6) for k, v in used.items()} == {
        "node1": 1.0,
        "locust2": 0.9,
    }


def test_the_report_of_an_interrupted_ladder() -> None:
    ladder = {"side": "embedded", "label": "embedded", "processes": 1, "steps": []}
    ladder["load_before"] = [0.1, 0.2, 0.3]
    text = capacity.report([ladder])
    assert "largest lecture held: none users" in text and "n/a after" in text
