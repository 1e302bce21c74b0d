"""Breakout rooms in the load test without a server: each receiver's place and the isolation check
(loadtest/breakouts.py), the delivery ledger counting expected lines by place
(loadtest/measures.py), and the teacher's round plan."""

from __future__ import annotations

import random
from typing import Any

from loadtest.board import BoardClient, converged
from loadtest.breakouts import Place, Round, scope_of
from loadtest.measures import DeliveryLedger
from loadtest.wire import Client


def ev(event_id: int, kind: str, **data: Any) -> dict[str, Any]:
    return {"t": "event", "id": event_id, "ts": 1_000 * event_id, "type": kind, "data": data}


def line(event_id: int, room: str | None, **extra: Any) -> dict[str, Any]:
    return ev(event_id, "chat.message", text="x", thread=None, room=room, **extra)


def view(members: dict[str, str], rooms: tuple[str, ...] = ("red", "blue")) -> dict[str, Any]:
    return {"breakouts": {"round": 1, "rooms": list(rooms), "members": members}}


def test_which_events_are_scoped_to_a_room() -> None:
    assert scope_of("chat.message", {"thread": None, "room": "red"}) == (True, "red")
    assert scope_of("chat.message", {"thread": None}) == (True, None)  # an old server's line
    assert scope_of("chat.message", {"thread": "alice", "room": None}) == (False, None)
    assert scope_of("chat.message", {"thread": None, "room": None, "broadcast": True}) == (
        False,
        None,
    )
    assert scope_of("question.upvoted", {"room": "blue"}) == (True, "blue")
    assert scope_of("hand.raised", {"room": None}) == (True, None)
    assert scope_of("poll.opened", {}) == (False, None)  # polls are class-wide


def test_a_student_follows_its_place_and_flags_another_rooms_line() -> None:
    p = Place("alice")
    p.start({"breakouts": {}}, 10)
    assert p.room is None and p.event(line(11, None)) is None
    opened = ev(
        12, "breakout.opened", round=1, rooms=["red", "blue"], members={"alice": "red"}, by="t"
    )
    assert p.event(opened) is None and p.room == "red"
    assert p.event(line(13, "red")) is None
    wrong = p.event(line(14, None))  # a main-room line in a breakout room
    assert wrong is not None and "the main room" in wrong and "'red'" in wrong
    assert p.event(line(15, "blue")) is not None
    assert p.event(ev(16, "question.asked", room="blue", question_id=1)) is not None
    assert p.event(line(17, None, broadcast=True)) is None  # a broadcast reaches everyone
    p.view(view({"alice": "blue"}), 18)  # moved by staff: the view says where
    assert p.room == "blue" and p.event(line(19, "blue")) is None
    assert p.event(ev(20, "breakout.closed", round=1, by="t", reason="staff")) is None
    assert p.room is None and p.event(line(21, None)) is None
    assert p.spans() == [(12, 20)]
    assert p.changes == 3


def test_staff_see_every_room() -> None:
    p = Place("teach", staff=True)
    p.start(view({"alice": "red"}), 5)
    assert p.event(line(6, "red")) is None and p.event(line(7, "blue")) is None


def test_a_window_that_starts_in_a_breakout_room_is_away_from_its_start() -> None:
    p = Place("alice")
    p.start(view({"alice": "red"}), 30)
    p.seen(35)
    assert p.spans() == [(30, 35)]
    p.view(view({}), 36)
    p.seen(40)
    assert p.spans() == [(30, 36)]


def test_a_lecture_line_is_not_expected_of_a_student_away_in_a_breakout_room() -> None:
    teacher, students = DeliveryLedger(), DeliveryLedger()
    for i in (5, 12, 20):
        teacher.line_sent("r", i)  # lecture lines: the main room's
    teacher.line_sent("r", 15, everywhere=True)  # a broadcast
    students.window("s1@0", "r", 0, 25)  # in the main room throughout
    students.window("s2@0", "r", 0, 25, [(10, 18)])  # in a breakout room for ids 11-18
    for i in (5, 12, 15, 20, 5, 15, 20):
        students.line_received("r", i)
    delivery = DeliveryLedger.merge([teacher.snapshot(), students.snapshot()])
    assert delivery.lines == {
        ("r", 5): (2, 2),
        ("r", 12): (1, 1),  # s2 was away
        ("r", 15): (2, 2),  # the broadcast reached both
        ("r", 20): (2, 2),
    }
    assert delivery.ratio == 1.0


def test_a_line_that_reached_a_student_in_a_breakout_room_shows_as_over_delivered() -> None:
    ledger = DeliveryLedger()
    ledger.line_sent("r", 12)
    ledger.window("s2@0", "r", 0, 25, [(10, 18)])
    ledger.line_received("r", 12)
    delivery = DeliveryLedger.merge([ledger.snapshot()])
    assert delivery.incomplete() == [("r", 12, 1, 0)]


def test_away_spans_count_only_inside_their_window_and_old_snapshots_still_merge() -> None:
    ledger = DeliveryLedger()
    ledger.line_sent("r", 3)
    ledger.line_sent("r", 8)
    ledger.window("s@2", "r", 2, 9, [(0, 5)])  # clipped to (2, 5]
    old = {"sent": {}, "received": [], "windows": [["o@0", "r", 0, 9]]}
    delivery = DeliveryLedger.merge([ledger.snapshot(), old])
    assert delivery.lines == {("r", 3): (0, 1), ("r", 8): (0, 2)}


def test_a_timed_round_opens_moves_broadcasts_and_keeps_its_end() -> None:
    r = Round(1, ["Room 1", "Room 2"], 9.0, sent_at=100.0)
    assert r.timed
    opening = r.open_command()
    assert opening["duration_s"] == 9 and opening["auto"] == {"apart": [], "together": []}
    assert r.due(100.0, random.Random(1)) == []  # not opened yet
    r.opened_at = 101.0
    r.members = {"a": "Room 1", "b": "Room 2", "c": "Room 1"}
    assert r.due(102.0, random.Random(1)) == []
    midway = r.due(104.5, random.Random(1))
    kinds = [c["t"] for c in midway]
    assert kinds == ["breakout.move", "breakout.assign", "breakout.broadcast", "breakout.timer"]
    move, assign = midway[0], midway[1]
    assert move["room"] != r.members[move["identity"]]
    ((who, room),) = assign["members"].items()
    assert room != r.members[who] and who != move["identity"]
    assert midway[3]["remaining_s"] == 6  # closes where it would have
    assert r.due(200.0, random.Random(1)) == []  # the timer closes it, not the teacher
    assert not r.overdue(115.0, 10.0) and r.overdue(120.5, 10.0)


def test_an_untimed_round_is_closed_by_the_teacher() -> None:
    r = Round(2, ["Room 1"], 6.0, sent_at=0.0)
    assert not r.timed and r.open_command()["duration_s"] is None
    r.opened_at = 0.0
    r.members = {"a": "Room 1"}
    assert [c["t"] for c in r.due(2.0, random.Random(1))] == ["breakout.broadcast"]  # one room
    assert r.due(5.9, random.Random(1)) == []
    assert r.due(6.0, random.Random(1)) == [{"t": "breakout.close"}]
    assert r.due(7.0, random.Random(1)) == []
    assert not r.overdue(100.0, 10.0)


def test_a_view_frame_moves_the_clients_resume_position() -> None:
    fired: list[tuple[str, str, BaseException | None]] = []
    client = Client(
        "ws://127.0.0.1:1/ws", "t", "r", fire=lambda k, n, ms, ln, e: fired.append((k, n, e))
    )
    client._dispatch({"t": "welcome", "last_id": 10, "room": {}}, 0)
    client._dispatch({"t": "view", "last_id": 14, "room": {}}, 0)
    assert (client.last_id, client.last_event_id, client.window_start) == (14, 10, 10)
    client._dispatch(ev(13, "chat.message"), 0)  # an event the view already held
    client._dispatch(ev(15, "chat.message"), 0)
    assert [(k, n) for k, n, e in fired if e is not None] == [("event", "order")]
    assert client.last_id == 15


def test_a_board_whose_write_was_refused_is_left_out_of_the_converge_check() -> None:
    def board(identity: str) -> BoardClient:
        client = BoardClient("ws://127.0.0.1:1", "t", "r", "main", identity, lambda *a: None)
        client.last_message = 0.0
        return client

    a, b, moved = board("a"), board("b"), board("moved")
    moved.records.append({"key": "moved-1", "val": {"type": "stroke"}})  # refused by the server
    assert converged([a, b, moved], quiet_s=0, timeout_s=0)[0] is False
    moved.denied = 1
    assert converged([a, b, moved], quiet_s=0, timeout_s=0) == (True, "2 boards of 0 records")
