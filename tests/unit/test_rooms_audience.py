"""Who receives each event (docs/protocol.md, "who receives the event")."""

import pytest

from rooms import (
    Audience,
    BreakoutAssignedEvent,
    BreakoutClosedEvent,
    BreakoutHelpAskedEvent,
    BreakoutMovedEvent,
    BreakoutOpenedEvent,
    ChatMessageEvent,
    Event,
    Participant,
    ParticipantAdmittedEvent,
    ParticipantDeniedEvent,
    ParticipantJoinedEvent,
    ParticipantWaitingEvent,
    ParticipantWaitingLeftEvent,
    PollAnsweredEvent,
    Role,
    audience_of,
    room_changes,
)
from tests.unit.test_rooms_fold import ASSISTANT, OTHER, STUDENT, TEACHER
from tests.unit.test_rooms_wire import ONE_OF_EACH_EVENT

PRIVATE = {
    "participant.joined",
    "poll.answered",
    "board.snapshot_saved",
    "breakout.help_asked",
    "breakout.help_cleared",
    "participant.waiting",
    "participant.waiting_left",
    "participant.admitted",
    "participant.denied",
    "invite.revoked",
    "participant.left",
}
SCOPED = {
    "chat.message",
    "question.asked",
    "question.upvoted",
    "question.unvoted",
    "question.answered",
    "question.dismissed",
    "question.pinned",
    "hand.raised",
    "hand.lowered",
    "hand.called",
}


def test_all_admits_everyone() -> None:
    assert all(Audience.ALL.admits(p) for p in (TEACHER, ASSISTANT, STUDENT))


def test_staff_admits_only_the_staff() -> None:
    assert Audience.STAFF.admits(TEACHER) and Audience.STAFF.admits(ASSISTANT)
    assert not Audience.STAFF.admits(STUDENT)


def test_staff_and_admits_the_staff_and_that_identity() -> None:
    audience = Audience.staff_and("s1")
    assert audience == Audience("staff_and", "s1")
    assert audience.admits(TEACHER) and audience.admits(ASSISTANT) and audience.admits(STUDENT)
    assert not audience.admits(OTHER)


def test_participant_joined_goes_to_the_staff() -> None:
    assert audience_of(ParticipantJoinedEvent("s1", "Sam", Role.STUDENT)) == Audience.STAFF


def test_main_room_chat_goes_to_the_staff_and_the_main_room_only() -> None:
    audience = audience_of(ChatMessageEvent("s1", "Sam", Role.STUDENT, "hi", None))
    assert audience == Audience.in_room(None)
    assert audience.admits(STUDENT) and audience.admits(TEACHER, place="red")
    assert not audience.admits(OTHER, place="red")


def test_breakout_chat_goes_to_the_staff_and_that_breakout_only() -> None:
    audience = audience_of(ChatMessageEvent("s1", "Sam", Role.STUDENT, "hi", None, room="red"))
    assert audience.admits(STUDENT, place="red") and audience.admits(ASSISTANT)
    assert not audience.admits(OTHER, place="blue")
    assert not audience.admits(OTHER)


def test_a_broadcast_goes_to_everyone_wherever_they_are() -> None:
    event = ChatMessageEvent("t1", "Tess", Role.TEACHER, "2 minutes", None, broadcast=True)
    assert audience_of(event) == Audience.ALL


@pytest.mark.parametrize(
    "event",
    [e for e in ONE_OF_EACH_EVENT if e.type in SCOPED and getattr(e, "thread", None) is None],
    ids=lambda e: e.type,
)
def test_questions_and_hands_go_to_the_staff_and_their_room(event: Event) -> None:
    audience = audience_of(event)
    assert audience.kind == "room"
    room = event.room
    assert audience.admits(STUDENT, place=room) and audience.admits(TEACHER, place="elsewhere")
    assert not audience.admits(STUDENT, place="elsewhere")


def test_help_requests_go_to_the_staff_and_their_student() -> None:
    audience = audience_of(BreakoutHelpAskedEvent("s1", "red"))
    assert audience == Audience.staff_and("s1")
    assert not audience.admits(OTHER, place="red")


@pytest.mark.parametrize("sender", [STUDENT, TEACHER])
def test_private_chat_goes_to_the_staff_and_the_threads_student(sender: Participant) -> None:
    event = ChatMessageEvent(sender.identity, sender.name, sender.role, "psst", "s1")
    audience = audience_of(event)
    assert audience == Audience.staff_and("s1")
    assert audience.admits(STUDENT) and audience.admits(ASSISTANT)
    assert not audience.admits(OTHER)


@pytest.mark.parametrize(
    "event",
    [
        ParticipantWaitingEvent("s9", "Neo"),
        ParticipantWaitingLeftEvent("s9"),
        ParticipantDeniedEvent("s9", "t1"),
    ],
    ids=lambda e: e.type,
)
def test_the_waiting_room_queue_goes_to_the_staff_only(event: Event) -> None:
    assert audience_of(event) == Audience.STAFF


def test_an_admission_goes_to_the_staff_and_the_student_admitted() -> None:
    assert audience_of(ParticipantAdmittedEvent("s9", "Neo", "t1")) == Audience.staff_and("s9")


def test_poll_answer_goes_to_the_staff_and_the_student_who_answered() -> None:
    audience = audience_of(PollAnsweredEvent(1, "s2", (0,)))
    assert audience == Audience.staff_and("s2")
    assert audience.admits(OTHER) and audience.admits(TEACHER)
    assert not audience.admits(STUDENT)


@pytest.mark.parametrize(
    "event",
    [e for e in ONE_OF_EACH_EVENT if e.type not in PRIVATE | SCOPED],
    ids=lambda e: e.type,
)
def test_every_other_event_goes_to_everyone(event: Event) -> None:
    assert audience_of(event) == Audience.ALL


def test_room_changes_names_whose_place_an_event_changes() -> None:
    assert room_changes(BreakoutMovedEvent("s1", "red", "t1")) == {"s1"}
    assert room_changes(BreakoutAssignedEvent({"s1": "red", "s2": None}, "t1")) == {"s1", "s2"}
    assert room_changes(BreakoutOpenedEvent(("red",), "t1")) is None
    assert room_changes(BreakoutClosedEvent("t1", 1)) is None
    assert room_changes(ChatMessageEvent("s1", "Sam", Role.STUDENT, "hi", None)) == frozenset()
