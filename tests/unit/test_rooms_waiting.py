"""The waiting room's rules: who waits, admitting, turning away, leaving, and its bound."""

import pytest

from rooms import (
    JoinDenied,
    MustWait,
    NoSuchParticipant,
    NotAllowed,
    Participant,
    ParticipantAdmittedEvent,
    ParticipantDeniedEvent,
    ParticipantJoinedEvent,
    ParticipantWaitingEvent,
    ParticipantWaitingLeftEvent,
    Role,
    RoomLock,
    RoomLocked,
    WaitingAdmit,
    WaitingDeny,
    WaitingKnock,
    WaitingLeave,
    WaitingRoom,
    WaitingRoomSetEvent,
    admit,
    room_view,
)
from rooms.bounds import WAITING_MAX
from rooms.snapshot import state_from_data, state_to_data
from tests.unit.test_rooms_fold import ASSISTANT, STUDENT, TEACHER, Classroom, classroom

NEO = Participant("s9", "Neo", Role.STUDENT)
MAY = Participant("s8", "May", Role.STUDENT)


def waiting_room() -> Classroom:
    room = classroom()
    assert room.do(TEACHER, WaitingRoom(True)) == [WaitingRoomSetEvent(True, "t1")]
    return room


def knock(room: Classroom, who: Participant) -> None:
    with pytest.raises(MustWait):
        admit(room.state, who)
    room.do(who, WaitingKnock())


def test_a_new_student_waits_while_staff_and_returning_students_enter() -> None:
    room = waiting_room()
    with pytest.raises(MustWait) as refused:
        admit(room.state, NEO)
    assert isinstance(refused.value, RoomLocked), "where nobody can wait, it is room_locked"
    assert admit(room.state, STUDENT) == []
    assert admit(room.state, Participant("t2", "Tom", Role.ASSISTANT))[0].type == (
        "participant.joined"
    )


def test_knocking_enters_the_queue_once_and_staff_see_it() -> None:
    room = waiting_room()
    assert room.do(NEO, WaitingKnock()) == [ParticipantWaitingEvent("s9", "Neo")]
    assert room.do(NEO, WaitingKnock()) == [], "a second tab waits in the same place"
    room.do(MAY, WaitingKnock())
    assert room_view(room.state, TEACHER)["waiting"] == [
        {"identity": "s9", "name": "Neo"},
        {"identity": "s8", "name": "May"},
    ]
    assert room_view(room.state, STUDENT)["waiting"] == [], "students do not see the queue"
    assert room_view(room.state, STUDENT)["waiting_room"] is True


def test_an_admitted_student_enters_even_a_locked_room_and_comes_back_freely() -> None:
    room = waiting_room()
    knock(room, NEO)
    room.do(TEACHER, RoomLock(True))
    assert room.do(ASSISTANT, WaitingAdmit("s9")) == [ParticipantAdmittedEvent("s9", "Neo", "a1")]
    assert room.state.waiting == {}
    assert admit(room.state, NEO) == [], "admitted: a participant, nothing more to record"
    assert room.do(TEACHER, WaitingAdmit("s9")) == [], "admitted already"


def test_admit_everyone_admits_the_queue_in_order() -> None:
    room = waiting_room()
    knock(room, NEO)
    knock(room, MAY)
    events = room.do(TEACHER, WaitingAdmit(None))
    assert [e.identity for e in events if isinstance(e, ParticipantAdmittedEvent)] == ["s9", "s8"]
    assert room.do(TEACHER, WaitingAdmit(None)) == []


def test_a_denied_student_is_refused_for_the_rest_of_the_session() -> None:
    room = waiting_room()
    knock(room, NEO)
    assert room.do(TEACHER, WaitingDeny("s9")) == [ParticipantDeniedEvent("s9", "t1")]
    with pytest.raises(JoinDenied):
        admit(room.state, NEO)
    with pytest.raises(JoinDenied):
        room.do(NEO, WaitingKnock())
    room.do(TEACHER, WaitingRoom(False))
    with pytest.raises(JoinDenied):
        admit(room.state, NEO)
    assert state_from_data(state_to_data(room.state)) == room.state


def test_only_staff_run_the_waiting_room_and_only_for_who_waits() -> None:
    room = waiting_room()
    knock(room, NEO)
    for command in (WaitingRoom(False), WaitingAdmit("s9"), WaitingDeny("s9")):
        with pytest.raises(NotAllowed):
            room.do(STUDENT, command)
    with pytest.raises(NoSuchParticipant):
        room.do(TEACHER, WaitingAdmit("nobody"))
    with pytest.raises(NoSuchParticipant):
        room.do(TEACHER, WaitingDeny("nobody"))


def test_leaving_the_queue_and_turning_the_waiting_room_off() -> None:
    room = waiting_room()
    knock(room, NEO)
    assert room.do(NEO, WaitingLeave()) == [ParticipantWaitingLeftEvent("s9")]
    assert room.do(NEO, WaitingLeave()) == []
    knock(room, NEO)
    room.do(TEACHER, WaitingRoom(False))
    assert room.do(NEO, WaitingKnock()) == [], "nothing to wait for"
    assert admit(room.state, NEO) == [ParticipantJoinedEvent("s9", "Neo", Role.STUDENT)]
    room.append(admit(room.state, NEO))
    assert room.state.waiting == {}, "entering takes them out of the queue"


def test_the_waiting_room_is_bounded() -> None:
    room = waiting_room()
    for i in range(WAITING_MAX):
        room.do(Participant(f"w{i}", f"W{i}", Role.STUDENT), WaitingKnock())
    with pytest.raises(RoomLocked, match="full"):
        room.do(NEO, WaitingKnock())
    room.do(TEACHER, WaitingAdmit("w0"))
    assert room.do(NEO, WaitingKnock()) == [ParticipantWaitingEvent("s9", "Neo")]
