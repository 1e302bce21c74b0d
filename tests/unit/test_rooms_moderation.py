"""Moderation: removing participants, locking the room, ending the session."""

import pytest

from rooms import (
    BadField,
    ChatSend,
    Command,
    HandRaise,
    Leave,
    NoSuchParticipant,
    NotAllowed,
    Participant,
    ParticipantRemove,
    ParticipantRemoved,
    ParticipantRemovedEvent,
    QuestionAsk,
    Role,
    RoomLock,
    RoomLockedEvent,
    SessionEnd,
    SessionEnded,
    SessionEndedEvent,
)
from tests.unit.test_rooms_fold import ASSISTANT, OTHER, STUDENT, TEACHER, classroom

SECOND_ASSISTANT = Participant("a2", "Ann", Role.ASSISTANT)


@pytest.mark.parametrize("staff", [TEACHER, ASSISTANT])
def test_staff_remove_a_student(staff: Participant) -> None:
    room = classroom()
    assert room.do(staff, ParticipantRemove("s2", "spam")) == [
        ParticipantRemovedEvent("s2", "spam", staff.identity)
    ]
    assert room.state.removed == {"s2"}


def test_teacher_removes_an_assistant() -> None:
    room = classroom()
    assert room.do(TEACHER, ParticipantRemove("a1")) == [ParticipantRemovedEvent("a1", "", "t1")]


def test_assistant_cannot_remove_an_assistant() -> None:
    room = classroom()
    room.join(SECOND_ASSISTANT)
    with pytest.raises(NotAllowed) as refused:
        room.do(ASSISTANT, ParticipantRemove("a2"))
    assert refused.value.field == "identity"
    with pytest.raises(NotAllowed):
        room.do(ASSISTANT, ParticipantRemove("a1"))


@pytest.mark.parametrize("staff", [TEACHER, ASSISTANT])
def test_nobody_removes_the_teacher(staff: Participant) -> None:
    room = classroom()
    with pytest.raises(NotAllowed):
        room.do(staff, ParticipantRemove("t1"))


def test_removing_an_unknown_identity_is_no_such_participant() -> None:
    room = classroom()
    with pytest.raises(NoSuchParticipant) as refused:
        room.do(TEACHER, ParticipantRemove("ghost"))
    assert refused.value.field == "identity"


def test_removing_a_removed_participant_changes_nothing() -> None:
    room = classroom()
    room.do(TEACHER, ParticipantRemove("s2"))
    assert room.do(ASSISTANT, ParticipantRemove("s2")) == []


def test_remove_reason_over_200_characters_is_bad_field() -> None:
    room = classroom()
    with pytest.raises(BadField) as refused:
        room.do(TEACHER, ParticipantRemove("s2", "r" * 201))
    assert refused.value.field == "reason"
    assert len(room.do(TEACHER, ParticipantRemove("s2", "r" * 200))) == 1


@pytest.mark.parametrize("command", [ChatSend("hi"), HandRaise(), QuestionAsk("q"), Leave()])
def test_a_removed_participant_is_refused_every_command(command: Command) -> None:
    room = classroom()
    room.do(TEACHER, ParticipantRemove("s1"))
    with pytest.raises(ParticipantRemoved):
        room.do(STUDENT, command)


def test_a_removed_assistant_loses_staff_powers() -> None:
    room = classroom()
    room.do(TEACHER, ParticipantRemove("a1"))
    with pytest.raises(ParticipantRemoved):
        room.do(ASSISTANT, RoomLock(True))


@pytest.mark.parametrize("staff", [TEACHER, ASSISTANT])
def test_staff_lock_and_unlock_the_room(staff: Participant) -> None:
    room = classroom()
    assert room.do(staff, RoomLock(True)) == [RoomLockedEvent(True, staff.identity)]
    assert room.state.locked
    assert room.do(staff, RoomLock(False)) == [RoomLockedEvent(False, staff.identity)]
    assert not room.state.locked


def test_locking_a_locked_room_changes_nothing() -> None:
    room = classroom()
    assert room.do(TEACHER, RoomLock(False)) == []
    room.do(TEACHER, RoomLock(True))
    assert room.do(ASSISTANT, RoomLock(True)) == []


def test_teacher_ends_the_session() -> None:
    room = classroom()
    assert room.do(TEACHER, SessionEnd("see you")) == [SessionEndedEvent("see you", "t1")]
    assert room.state.ended == ("see you", "t1")


@pytest.mark.parametrize("actor", [ASSISTANT, STUDENT])
def test_only_the_teacher_ends_the_session(actor: Participant) -> None:
    room = classroom()
    with pytest.raises(NotAllowed):
        room.do(actor, SessionEnd())


def test_end_reason_over_200_characters_is_bad_field() -> None:
    room = classroom()
    with pytest.raises(BadField):
        room.do(TEACHER, SessionEnd("r" * 201))


@pytest.mark.parametrize(
    ("actor", "command"),
    [
        (STUDENT, ChatSend("hi")),
        (OTHER, HandRaise()),
        (TEACHER, RoomLock(True)),
        (TEACHER, SessionEnd()),
        (ASSISTANT, QuestionAsk("q")),
        (STUDENT, Leave()),
    ],
)
def test_an_ended_session_refuses_every_command(actor: Participant, command: Command) -> None:
    room = classroom()
    room.do(TEACHER, SessionEnd())
    with pytest.raises(SessionEnded):
        room.do(actor, command)


def test_an_ended_session_outranks_removal() -> None:
    room = classroom()
    room.do(TEACHER, ParticipantRemove("s1"))
    room.do(TEACHER, SessionEnd())
    with pytest.raises(SessionEnded):
        room.do(STUDENT, ChatSend("hi"))
