"""The load test's own measures (loadtest/measures.py), its SLO gate (loadtest/slo.py) and the
resume checks of its protocol client (loadtest/wire.py), without a server."""

from __future__ import annotations

from typing import Any

from loadtest import slo
from loadtest.board import BoardClient, converged
from loadtest.measures import DeliveryLedger, Histogram
from loadtest.wire import Client, source_address


def test_histogram_keeps_microseconds_below_a_millisecond() -> None:
    h = Histogram()
    for ms in (0.123, 0.124, 0.125, 0.126, 2.3456):
        h.add(ms)
    assert h.percentile(0.5) == 0.125
    assert h.percentile(0.8) == 0.126
    assert h.percentile(1.0) == 2.35  # three significant digits above 1 ms
    assert Histogram().percentile(0.95) is None


def test_histograms_merge_across_workers() -> None:
    a, b = Histogram(), Histogram()
    for _ in range(90):
        a.add(0.5)
    for _ in range(10):
        b.add(40.0)
    merged = Histogram.merge([a.snapshot(), b.snapshot()])
    assert merged.total == 100
    assert merged.percentile(0.9) == 0.5
    assert merged.percentile(0.95) == 40.0


def test_delivery_expects_a_line_of_every_receiver_whose_window_covers_it() -> None:
    teacher, students = DeliveryLedger(), DeliveryLedger()
    for i in (5, 8, 12):
        teacher.line_sent("r", i)
    # s1 saw the log from 0 through 12; s2 joined at 6 (welcome.last_id) and saw through 12;
    # s3 left after 8, and missed line 8.
    students.window("s1#1", "r", 0, 12)
    students.window("s2#1", "r", 6, 12)
    students.window("s3#1", "r", 0, 8)
    for i in (5, 8, 12, 8, 12, 5):  # s1, s2, s3
        students.line_received("r", i)
    delivery = DeliveryLedger.merge([teacher.snapshot(), students.snapshot()])
    assert delivery.lines == {("r", 5): (2, 2), ("r", 8): (2, 3), ("r", 12): (2, 2)}
    assert delivery.ratio == 6 / 7
    assert delivery.incomplete() == [("r", 8, 2, 3)]


def test_delivery_ignores_lines_whose_ack_never_came_and_empty_runs() -> None:
    ledger = DeliveryLedger()
    ledger.window("s#1", "r", 0, 3)
    ledger.line_received("r", 3)  # the teacher stopped before its ack: not counted
    assert DeliveryLedger.merge([ledger.snapshot()]).ratio is None


def test_slo_gate_fails_a_missed_target_and_an_empty_measure() -> None:
    targets = slo.Targets(fanout_p95_ms=0.001, ack_p99_ms=1000, join_failures=0, delivery_ratio=1)
    verdicts = slo.evaluate(targets, slo.Measured(0.4, 12.0, 0, 1.0))
    assert [(v.name, v.ok) for v in verdicts] == [
        ("fan-out p95", False),
        ("ack p99", True),
        ("join failures", True),
        ("delivery ratio", True),
    ]
    assert "FAIL" in verdicts[0].line() and "0.400 ms" in verdicts[0].line()
    empty = slo.evaluate(slo.Targets(ack_p99_ms=1000), slo.Measured(None, None, 0, None))
    assert [v.ok for v in empty] == [False]
    assert slo.evaluate(slo.Targets(), slo.Measured(None, None, 3, None)) == []


def _client() -> tuple[Client, list[tuple[str, str, Any]]]:
    fired: list[tuple[str, str, Any]] = []
    client = Client(
        "ws://127.0.0.1:1/ws",
        "token",
        "r",
        fire=lambda kind, name, ms, size, exc: fired.append((kind, name, exc)),
    )
    client.last_id = client.last_event_id = 7
    return client, fired


def _event(i: int) -> dict[str, Any]:
    return {"t": "event", "id": i, "ts": 0, "type": "chat.message", "data": {}}


def test_a_resume_that_replays_every_missed_event_passes() -> None:
    client, fired = _client()
    client._dispatch({"t": "resumed", "last_id": 10, "missed": 2}, 0)
    client._dispatch(_event(8), 0)
    client._dispatch(_event(10), 0)
    client._dispatch(_event(11), 0)
    assert [(k, n, e) for k, n, e in fired] == [("resume", "replay", None)]
    assert client.wait_replay(0.1)


def test_a_resume_that_misses_an_event_fails() -> None:
    client, fired = _client()
    client._dispatch({"t": "resumed", "last_id": 10, "missed": 3}, 0)
    client._dispatch(_event(8), 0)
    client._dispatch(_event(10), 0)
    client._dispatch(_event(11), 0)  # a newer event before the third missed one
    assert [(k, n) for k, n, _ in fired] == [("resume", "replay")]
    assert fired[0][2] is not None and "past resumed.last_id" in str(fired[0][2])
    assert not client.wait_replay(0.1)


def test_a_resume_that_never_finishes_fails_at_the_timeout() -> None:
    client, fired = _client()
    client._dispatch({"t": "resumed", "last_id": 10, "missed": 2}, 0)
    client._dispatch(_event(9), 0)
    assert not client.wait_replay(0.05)
    assert "1 of 2 missed events" in str(fired[-1][2])


def test_a_repeated_event_fails() -> None:
    client, fired = _client()
    client._dispatch({"t": "resumed", "last_id": 9, "missed": 2}, 0)
    client._dispatch(_event(8), 0)
    client._dispatch(_event(8), 0)
    client._dispatch(_event(9), 0)
    failures = [(k, n) for k, n, e in fired if e is not None]
    assert failures == [("event", "order"), ("resume", "replay")]
    assert not client.wait_replay(0.1)


def test_each_user_binds_its_own_loopback_source_address() -> None:
    assert source_address("", 5) is None
    assert source_address("loopback", 0) == "127.1.1.1"
    assert source_address("loopback", 254) == "127.1.2.1"
    assert len({source_address("loopback", n) for n in range(70_000)}) == 70_000
    assert source_address("10.0.0.1, 10.0.0.2", 3) == "10.0.0.2"


def test_boards_that_differ_have_not_converged() -> None:
    def board(identity: str) -> BoardClient:
        client = BoardClient("ws://127.0.0.1:1", "t", "r", "main", identity, lambda *a: None)
        client.last_message = 0.0
        return client

    a, b = board("a"), board("b")
    a.records.append({"key": "a-1", "val": {"type": "stroke"}})
    assert converged([a, b], quiet_s=0, timeout_s=0)[0] is False
    b.doc.apply_update(a.doc.get_update())
    assert converged([a, b], quiet_s=0, timeout_s=0) == (True, "2 boards of 1 records")


def test_a_welcome_starts_a_window_before_the_events_after_it() -> None:
    client, _ = _client()
    client._dispatch({"t": "welcome", "last_id": 40}, 0)
    assert client.window_start == 40
    client._dispatch(_event(41), 0)
    assert (client.window_start, client.last_event_id) == (40, 41)


def test_a_teacher_lectures_a_room_with_students_whatever_worker_it_is_on() -> None:
    from loadtest.placement import teacher_room

    assert [teacher_room(0, w, 2, 1) for w in (0, 1)] == [0, 0]  # one room, 2 workers
    assert [teacher_room(k, w, 2, 4) for k in (0, 1) for w in (0, 1)] == [0, 1, 2, 3]
    assert teacher_room(0, 0, 1, 0) == 0
