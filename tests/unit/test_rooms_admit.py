"""Joining: admit() lets participants in, records first joins, and refuses per lock/end/removal."""

import pytest

from rooms import (
    Participant,
    ParticipantJoinedEvent,
    ParticipantRemove,
    ParticipantRemoved,
    Role,
    RoomLock,
    RoomLocked,
    RoomNamedEvent,
    SessionEnd,
    SessionEnded,
    admit,
    room_view,
)
from tests.unit.test_rooms_fold import ASSISTANT, STUDENT, TEACHER, Classroom, classroom

NEWCOMER = Participant("s9", "Neo", Role.STUDENT)


def test_first_join_records_the_participant() -> None:
    room = Classroom()
    assert room.join(STUDENT) == [ParticipantJoinedEvent("s1", "Sam", Role.STUDENT)]
    assert room.state.participants["s1"] == Participant("s1", "Sam", Role.STUDENT)


def test_joining_again_unchanged_gives_no_event() -> None:
    room = classroom()
    assert room.join(STUDENT) == []
    assert room.join(Participant("s1", "Sam", Role.STUDENT, can_publish=False)) == []


def test_joining_again_with_a_new_name_or_role_records_it() -> None:
    room = classroom()
    assert room.join(Participant("s1", "Samuel", Role.STUDENT)) == [
        ParticipantJoinedEvent("s1", "Samuel", Role.STUDENT)
    ]
    assert room.join(Participant("s1", "Samuel", Role.ASSISTANT)) == [
        ParticipantJoinedEvent("s1", "Samuel", Role.ASSISTANT)
    ]
    assert room.state.participants["s1"].role is Role.ASSISTANT


def test_locked_room_refuses_a_student_who_never_joined() -> None:
    room = classroom()
    room.do(TEACHER, RoomLock(True))
    with pytest.raises(RoomLocked):
        admit(room.state, NEWCOMER)


def test_locked_room_lets_a_returning_student_back_in() -> None:
    room = classroom()
    room.do(TEACHER, RoomLock(True))
    assert admit(room.state, STUDENT) == []


@pytest.mark.parametrize("role", [Role.TEACHER, Role.ASSISTANT])
def test_staff_may_always_join_a_locked_room(role: Role) -> None:
    room = classroom()
    room.do(TEACHER, RoomLock(True))
    assert admit(room.state, Participant("x9", "Xena", role)) == [
        ParticipantJoinedEvent("x9", "Xena", role)
    ]


def test_unlocked_room_admits_newcomers_again() -> None:
    room = classroom()
    room.do(TEACHER, RoomLock(True))
    room.do(ASSISTANT, RoomLock(False))
    assert len(admit(room.state, NEWCOMER)) == 1


def test_removed_participant_cannot_rejoin() -> None:
    room = classroom()
    room.do(TEACHER, ParticipantRemove("s1", "spam"))
    with pytest.raises(ParticipantRemoved):
        admit(room.state, STUDENT)


def test_ended_session_refuses_every_join() -> None:
    room = classroom()
    room.do(TEACHER, SessionEnd("bye"))
    for participant in (TEACHER, STUDENT, NEWCOMER):
        with pytest.raises(SessionEnded):
            admit(room.state, participant)


def test_admit_does_not_change_state() -> None:
    room = classroom()
    before = room.replay()
    admit(room.state, NEWCOMER)
    assert room.state == before


def test_a_teacher_whose_token_names_the_class_names_the_room_once() -> None:
    room = Classroom()
    events = admit(room.state, TEACHER, "Algebra 2")
    assert events[-1] == RoomNamedEvent("Algebra 2", TEACHER.identity)
    room.append(events)
    assert room.state.class_name == "Algebra 2"
    assert room_view(room.state, STUDENT)["class_name"] == "Algebra 2"
    # Recorded once: a later token's name (the same teacher's or another's) changes nothing.
    assert admit(room.state, TEACHER, "Geometry") == []
    assert admit(room.state, ASSISTANT, "Geometry") == [
        ParticipantJoinedEvent(ASSISTANT.identity, ASSISTANT.name, ASSISTANT.role)
    ]


def test_a_students_token_never_names_the_room() -> None:
    room = Classroom()
    assert admit(room.state, STUDENT, "Hacked") == [
        ParticipantJoinedEvent("s1", "Sam", Role.STUDENT)
    ]
    assert room_view(room.state, STUDENT)["class_name"] is None
