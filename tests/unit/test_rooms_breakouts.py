"""Breakout rooms: opening, moving participants between rooms, closing."""

import pytest

from rooms import (
    BadField,
    BreakoutClose,
    BreakoutClosedEvent,
    BreakoutMove,
    BreakoutMovedEvent,
    BreakoutOpen,
    BreakoutOpenedEvent,
    BreakoutsOpen,
    Command,
    NoSuchBreakout,
    NoSuchParticipant,
    NotAllowed,
    Participant,
    ParticipantRemove,
    ParticipantRemoved,
    SessionEnd,
    SessionEnded,
    room_view,
)
from tests.unit.test_rooms_fold import ASSISTANT, STUDENT, TEACHER, Classroom, classroom


def in_breakouts(*rooms: str) -> Classroom:
    room = classroom()
    room.do(TEACHER, BreakoutOpen(rooms or ("red", "blue")))
    return room


def test_opening_breakout_rooms_keeps_everyone_in_the_main_room() -> None:
    room = classroom()
    assert room.do(ASSISTANT, BreakoutOpen(("red", "blue", "green"))) == [
        BreakoutOpenedEvent(("red", "blue", "green"), "a1", 1, ("br1-1", "br1-2", "br1-3"))
    ]
    assert room.state.breakouts == ("red", "blue", "green")
    assert room.state.breakout_of == {}


@pytest.mark.parametrize(
    "rooms",
    [
        (),
        tuple(f"r{n}" for n in range(51)),
        ("red", "red"),
        ("red", ""),
        ("a" * 65,),
        ("   ",),
        ("red\x00",),
        ("red\nblue",),
        ("red\u202e",),
    ],
    ids=["none", "51", "twice", "empty", "65-chars", "blank", "nul", "newline", "bidi-control"],
)
def test_bad_breakout_room_lists_are_bad_field(rooms: tuple[str, ...]) -> None:
    with pytest.raises(BadField) as refused:
        classroom().do(TEACHER, BreakoutOpen(rooms))
    assert refused.value.field == "rooms"


def test_fifty_rooms_of_64_characters_may_open() -> None:
    rooms = tuple(f"{n:02d}".ljust(64, "x") for n in range(50))
    (opened,) = classroom().do(TEACHER, BreakoutOpen(rooms))
    assert isinstance(opened, BreakoutOpenedEvent) and opened.rooms == rooms
    assert opened.boards == tuple(f"br1-{n}" for n in range(1, 51))
    assert len(classroom().do(TEACHER, BreakoutOpen(("A-z_9",)))) == 1


def test_display_names_are_room_names() -> None:
    rooms = ("Red team", "équipe bleue", "a/b", "🙂")
    (opened,) = classroom().do(TEACHER, BreakoutOpen(rooms))
    assert isinstance(opened, BreakoutOpenedEvent) and opened.rooms == rooms


def test_opening_while_rooms_are_open_is_breakouts_open() -> None:
    room = in_breakouts()
    with pytest.raises(BreakoutsOpen) as refused:
        room.do(ASSISTANT, BreakoutOpen(("green",)))
    assert refused.value.code == "breakouts_open"
    assert refused.value.message == "close the breakout rooms first"
    with pytest.raises(BreakoutsOpen):
        room.do(ASSISTANT, BreakoutOpen(()))


@pytest.mark.parametrize("staff", [TEACHER, ASSISTANT])
def test_staff_move_anyone_into_a_room_and_back(staff: Participant) -> None:
    room = in_breakouts()
    assert room.do(staff, BreakoutMove("s1", "red")) == [
        BreakoutMovedEvent("s1", "red", staff.identity)
    ]
    assert room.do(staff, BreakoutMove(staff.identity, "red")) == [
        BreakoutMovedEvent(staff.identity, "red", staff.identity)
    ]
    assert room.state.breakout_of["s1"] == "red"
    assert room.do(staff, BreakoutMove("s1", "blue")) == [
        BreakoutMovedEvent("s1", "blue", staff.identity)
    ]
    assert room.state.breakout_of["s1"] == "blue"
    assert room.do(staff, BreakoutMove("s1")) == [BreakoutMovedEvent("s1", None, staff.identity)]
    assert "s1" not in room.state.breakout_of


def test_the_teacher_moves_an_assistant() -> None:
    room = in_breakouts()
    assert room.do(TEACHER, BreakoutMove("a1", "blue")) == [BreakoutMovedEvent("a1", "blue", "t1")]


def test_an_assistant_may_not_move_the_teacher_or_another_assistant() -> None:
    other = Participant("a2", "Ada", ASSISTANT.role)
    room = classroom(TEACHER, ASSISTANT, other, STUDENT)
    room.do(TEACHER, BreakoutOpen(("red", "blue")))
    for target in ("t1", "a2"):
        with pytest.raises(NotAllowed) as refused:
            room.do(ASSISTANT, BreakoutMove(target, "blue"))
        assert refused.value.field == "identity"
    assert room.state.breakout_of == {}
    room.do(TEACHER, BreakoutMove("t1", "blue"))
    with pytest.raises(NotAllowed):
        room.do(ASSISTANT, BreakoutMove("t1", None))
    assert room.state.breakout_of == {"t1": "blue"}


def test_moving_where_one_already_is_changes_nothing() -> None:
    room = in_breakouts()
    assert room.do(TEACHER, BreakoutMove("s1", None)) == []
    room.do(TEACHER, BreakoutMove("s1", "red"))
    assert room.do(ASSISTANT, BreakoutMove("s1", "red")) == []
    assert classroom().do(TEACHER, BreakoutMove("s1")) == []


def test_a_student_may_not_move_even_themselves() -> None:
    room = in_breakouts()
    with pytest.raises(NotAllowed):
        room.do(STUDENT, BreakoutMove("s1", "red"))


@pytest.mark.parametrize("room_name", ["green", "", "RED"])
def test_moving_into_a_room_that_is_not_open_is_no_such_breakout(room_name: str) -> None:
    with pytest.raises(NoSuchBreakout) as refused:
        in_breakouts().do(TEACHER, BreakoutMove("s1", room_name))
    assert (refused.value.code, refused.value.field) == ("no_such_breakout", "room")
    with pytest.raises(NoSuchBreakout):
        classroom().do(TEACHER, BreakoutMove("s1", "red"))


def test_moving_an_unknown_or_removed_identity_is_no_such_participant() -> None:
    room = in_breakouts()
    with pytest.raises(NoSuchParticipant) as refused:
        room.do(TEACHER, BreakoutMove("ghost", "green"))
    assert refused.value.field == "identity"
    room.do(TEACHER, ParticipantRemove("s2"))
    with pytest.raises(NoSuchParticipant):
        room.do(TEACHER, BreakoutMove("s2", "red"))


def test_removing_a_participant_takes_them_out_of_their_breakout_room() -> None:
    room = in_breakouts()
    room.do(TEACHER, BreakoutMove("s1", "red"))
    room.do(TEACHER, BreakoutMove("s2", "red"))
    room.do(TEACHER, ParticipantRemove("s1"))
    assert room.state.breakout_of == {"s2": "red"}
    assert room.replay() == room.state


def test_closing_brings_everyone_back_to_the_main_room() -> None:
    room = in_breakouts()
    room.do(TEACHER, BreakoutMove("s1", "red"))
    room.do(TEACHER, BreakoutMove("a1", "blue"))
    assert room.do(ASSISTANT, BreakoutClose()) == [BreakoutClosedEvent("a1", 1, "staff")]
    assert room.state.breakouts == () and room.state.breakout_of == {}
    assert room.do(TEACHER, BreakoutClose()) == []
    assert classroom().do(TEACHER, BreakoutClose()) == []


def test_rooms_open_again_after_closing_with_everyone_in_the_main_room() -> None:
    room = in_breakouts()
    room.do(TEACHER, BreakoutMove("s1", "red"))
    room.do(TEACHER, BreakoutClose())
    assert room.do(TEACHER, BreakoutOpen(("red", "green"))) == [
        BreakoutOpenedEvent(("red", "green"), "t1", 2, ("br2-1", "br2-2"))
    ]
    assert room.state.breakout_of == {}
    with pytest.raises(NoSuchBreakout):
        room.do(TEACHER, BreakoutMove("s1", "blue"))


@pytest.mark.parametrize(
    "command", [BreakoutOpen(("green",)), BreakoutMove("s1", "red"), BreakoutClose()]
)
def test_a_removed_assistant_and_an_ended_session_refuse_breakout_commands(
    command: Command,
) -> None:
    room = in_breakouts()
    room.do(TEACHER, ParticipantRemove("a1"))
    with pytest.raises(ParticipantRemoved):
        room.do(ASSISTANT, command)
    room.do(TEACHER, SessionEnd())
    with pytest.raises(SessionEnded):
        room.do(TEACHER, command)


def test_the_view_lists_open_rooms_in_order_and_who_is_in_them() -> None:
    room = in_breakouts("red", "blue", "amber")
    room.do(TEACHER, BreakoutMove("s2", "amber"))
    room.do(TEACHER, BreakoutMove("s1", "red"))
    for viewer in (STUDENT, TEACHER):
        entry = room_view(room.state, viewer)["breakouts"]
        assert entry["rooms"] == ["red", "blue", "amber"]
        assert entry["boards"] == ["br1-1", "br1-2", "br1-3"]
        assert entry["members"] == {"s1": "red", "s2": "amber"}
