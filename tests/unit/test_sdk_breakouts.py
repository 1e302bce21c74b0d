"""The SDK's breakout rooms without a server: the fold of ``breakout.*`` events, the ``view``
frame replacing the session's snapshot, the place and the countdown on the server's clock."""

from __future__ import annotations

import time
from typing import Any

import pytest

from clients import ClassroomClient
from clients.breakouts import Breakouts, auto_assignment

T0 = 1_800_000_000_000  # an event's ts (epoch ms)


def opened(**data: Any) -> dict[str, Any]:
    return {
        "round": 2,
        "rooms": ["Red team", "Blue"],
        "boards": ["br2-1", "br2-2"],
        "members": {"alice": "Red team", "bob": "Blue"},
        "duration_s": 300,
        "warn_s": 30,
        "self_select": False,
        "cap": None,
        "by": "teach",
        **data,
    }


def test_an_old_servers_view_reads_with_defaults() -> None:
    b = Breakouts.from_view({"rooms": ["red"], "members": {"alice": "red"}})
    assert (b.round, b.rooms, b.members, b.ends_at, b.warn_s) == (
        0,
        ["red"],
        {"alice": "red"},
        None,
        60,
    )
    assert b.place_of("alice") == "red" and b.place_of("bob") is None
    assert Breakouts.from_view(None) == Breakouts()


def test_a_full_view_reads_every_field() -> None:
    b = Breakouts.from_view(
        {
            "round": 3,
            "rooms": ["a", "b"],
            "boards": ["br3-1", "br3-2"],
            "members": {"alice": "b"},
            "ends_at": T0,
            "warn_s": 0,
            "self_select": True,
            "cap": 4,
            "help": [{"identity": "alice", "room": "b"}],
            "gallery": [{"round": 2, "room": "x", "board": "br2-1"}],
            "gallery_shared": True,
        }
    )
    assert b.help == [("alice", "b")] and b.gallery == [(2, "x", "br2-1")]
    assert (b.ends_at, b.warn_s, b.self_select, b.cap, b.gallery_shared) == (T0, 0, True, 4, True)
    assert b.board_of("b") == "br3-2" and b.board_of(None) == "main" and b.board_of("zz") == "main"


def test_opening_sets_members_boards_and_the_timer_from_the_events_time() -> None:
    b = Breakouts()
    assert b.apply("breakout.opened", opened(), T0, me="alice", staff=False)
    assert b.round == 2 and b.open and b.place_of("alice") == "Red team"
    assert b.board_of("Red team") == "br2-1"
    assert b.ends_at == T0 + 300_000 and b.warn_s == 30
    assert b.remaining_ms(T0 + 1_000) == 299_000
    assert not b.warning(T0 + 269_999) and b.warning(T0 + 270_000)
    assert b.remaining_ms(T0 + 400_000) == 0
    untimed = Breakouts()
    untimed.apply("breakout.opened", opened(duration_s=None), T0, me="alice", staff=False)
    assert untimed.ends_at is None and untimed.remaining_ms(T0) is None


def test_moves_mass_moves_and_the_timer_change_the_fold() -> None:
    b = Breakouts()
    b.apply("breakout.opened", opened(), T0, me="alice", staff=True)
    b.apply(
        "breakout.help_asked", {"identity": "alice", "room": "Red team"}, T0, me="t", staff=True
    )
    b.apply("breakout.help_asked", {"identity": "bob", "room": "Blue"}, T0, me="t", staff=True)
    assert b.help == [("alice", "Red team"), ("bob", "Blue")]
    b.apply(
        "breakout.moved", {"identity": "alice", "room": "Blue", "by": "t"}, T0, me="t", staff=True
    )
    assert b.place_of("alice") == "Blue" and b.help == [("bob", "Blue")]  # a move clears it
    b.apply(
        "breakout.assigned",
        {"members": {"alice": None, "carol": "Red team"}, "by": "t"},
        T0,
        me="t",
        staff=True,
    )
    assert b.members == {"bob": "Blue", "carol": "Red team"}
    b.apply("breakout.timer_set", {"remaining_s": 60, "by": "t"}, T0 + 5_000, me="t", staff=True)
    assert b.ends_at == T0 + 65_000
    b.apply("breakout.timer_set", {"remaining_s": None, "by": "t"}, T0, me="t", staff=True)
    assert b.ends_at is None
    b.apply("breakout.help_cleared", {"identity": "bob", "by": "t"}, T0, me="t", staff=True)
    assert b.help == []
    b.apply("participant.removed", {"identity": "carol", "by": "t"}, T0, me="t", staff=True)
    assert b.members == {"bob": "Blue"}
    assert not b.apply("chat.message", {"text": "hi"}, T0, me="t", staff=True)


def test_a_student_sees_only_its_own_help_request() -> None:
    b = Breakouts()
    b.apply("breakout.opened", opened(), T0, me="alice", staff=False)
    b.apply("breakout.help_asked", {"identity": "bob", "room": "Blue"}, T0, me="alice", staff=False)
    b.apply(
        "breakout.help_asked",
        {"identity": "alice", "room": "Red team"},
        T0,
        me="alice",
        staff=False,
    )
    b.apply(
        "breakout.help_asked",
        {"identity": "alice", "room": "Red team"},
        T0,
        me="alice",
        staff=False,
    )
    assert b.help == [("alice", "Red team")]


def test_closing_empties_the_rooms_and_fills_the_gallery_for_staff_only_until_shared() -> None:
    staff, student = Breakouts(), Breakouts()
    for b, is_staff in ((staff, True), (student, False)):
        b.apply("breakout.opened", opened(), T0, me="alice", staff=is_staff)
        b.apply(
            "breakout.closed",
            {"round": 2, "by": None, "reason": "timer"},
            T0,
            me="alice",
            staff=is_staff,
        )
        assert (b.rooms, b.members, b.ends_at, b.help, b.open) == ([], {}, None, [], False)
        assert b.place_of("alice") is None
    assert staff.gallery == [(2, "Red team", "br2-1"), (2, "Blue", "br2-2")]
    assert student.gallery == []
    student.apply(
        "breakout.boards_shared", {"shared": True, "by": "t"}, T0, me="alice", staff=False
    )
    assert student.gallery == staff.gallery and student.gallery_shared
    student.apply(
        "breakout.boards_shared", {"shared": False, "by": "t"}, T0, me="alice", staff=False
    )
    assert student.gallery == []
    # the next opening takes the share back
    staff.apply("breakout.boards_shared", {"shared": True, "by": "t"}, T0, me="t", staff=True)
    staff.apply("breakout.opened", opened(round=3), T0, me="t", staff=True)
    assert not staff.gallery_shared and staff.gallery == [
        (2, "Red team", "br2-1"),
        (2, "Blue", "br2-2"),
    ]


def test_auto_assignment_shape() -> None:
    assert auto_assignment() == {"apart": [], "together": []}
    assert auto_assignment([("a", "b")], [("c", "d", "e")]) == {
        "apart": [["a", "b"]],
        "together": [["c", "d", "e"]],
    }


def room_view(
    members: dict[str, str], questions: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "room_id": "class",
        "questions": questions or [],
        "breakouts": {
            "round": 1,
            "rooms": ["red", "blue"],
            "boards": ["br1-1", "br1-2"],
            "members": members,
        },
    }


def welcome(room: dict[str, Any], last_id: int, server_time_ms: float) -> dict[str, Any]:
    return {
        "t": "welcome",
        "you": {"identity": "alice", "role": "student"},
        "room": room,
        "last_id": last_id,
        "roster": [],
        "online": 1,
        "resumed": False,
        "server_time_ms": server_time_ms,
        "heartbeat_ms": 20_000,
        "ice_servers": [],
    }


async def test_a_view_frame_replaces_the_snapshot_and_moves_last_id() -> None:
    c = ClassroomClient("ws://127.0.0.1:1/ws", "token", "class")
    seen: list[dict[str, Any]] = []
    c.view_listeners.append(seen.append)
    await c._dispatch(welcome(room_view({}), 10, time.time() * 1000))
    s = c.session
    assert s.place is None and s.last_id == 10 and s.views == 0
    await c._dispatch({"t": "event", "id": 11, "ts": T0, "type": "chat.message", "data": {}})
    question = {"question_id": 4, "votes": 2, "voted": True}
    frame = {"t": "view", "last_id": 14, "room": room_view({"alice": "red"}, [question])}
    await c._dispatch(frame)
    assert s.place == "red" and s.last_id == 14 and s.views == 1 and seen == [frame]
    assert s.room["questions"] == [question] and s.votes == {4: 2} and s.voted == {4}
    assert s.breakouts.board_of(s.place) == "br1-1"
    # events keep moving the place between views
    await c._dispatch(
        {
            "t": "event",
            "id": 15,
            "ts": T0,
            "type": "breakout.moved",
            "data": {"identity": "alice", "room": "blue", "by": "t"},
        }
    )
    assert s.place == "blue" and s.last_id == 15


@pytest.mark.parametrize("skew_ms", [-90_000.0, 0.0, 120_000.0])
async def test_the_countdown_runs_on_the_servers_clock(skew_ms: float) -> None:
    c = ClassroomClient("ws://127.0.0.1:1/ws", "token", "class")
    server_now = time.time() * 1000 + skew_ms
    room = room_view({"alice": "red"})
    room["breakouts"]["ends_at"] = int(server_now + 90_000)
    await c._dispatch(welcome(room, 3, server_now))
    assert abs(c.session.server_offset_ms - skew_ms) < 1_000
    remaining = c.breakout_remaining_ms()
    assert remaining is not None and 89_000 < remaining <= 90_000


def test_a_student_shown_the_main_room_after_the_close_still_gets_the_gallery_when_shared() -> None:
    b = Breakouts()
    b.apply("breakout.opened", opened(), T0, me="alice", staff=False)
    b.apply(
        "breakout.closed", {"round": 2, "by": "t", "reason": "staff"}, T0, me="alice", staff=False
    )
    # the view that follows the close shows a student no gallery until staff share it
    b = Breakouts.from_view({"round": 2, "rooms": [], "gallery": []}, before=b)
    assert b.gallery == [] and not b.open
    b.apply("breakout.boards_shared", {"shared": True, "by": "t"}, T0, me="alice", staff=False)
    assert b.gallery == [(2, "Red team", "br2-1"), (2, "Blue", "br2-2")]
