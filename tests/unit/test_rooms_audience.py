"""Who receives each event (docs/protocol.md, "who receives the event")."""

import pytest

from rooms import (
    Audience,
    ChatMessageEvent,
    Event,
    Participant,
    ParticipantJoinedEvent,
    PollAnsweredEvent,
    Role,
    audience_of,
)
from tests.unit.test_rooms_fold import ASSISTANT, OTHER, STUDENT, TEACHER
from tests.unit.test_rooms_wire import ONE_OF_EACH_EVENT

PRIVATE = {"participant.joined", "poll.answered", "board.snapshot_saved"}


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


def test_room_chat_goes_to_everyone() -> None:
    assert audience_of(ChatMessageEvent("s1", "Sam", Role.STUDENT, "hi", None)) == Audience.ALL


@pytest.mark.parametrize("sender", [STUDENT, TEACHER])
def test_private_chat_goes_to_the_staff_and_the_threads_student(sender: Participant) -> None:
    event = ChatMessageEvent(sender.identity, sender.name, sender.role, "psst", "s1")
    audience = audience_of(event)
    assert audience == Audience.staff_and("s1")
    assert audience.admits(STUDENT) and audience.admits(ASSISTANT)
    assert not audience.admits(OTHER)


def test_poll_answer_goes_to_the_staff_and_the_student_who_answered() -> None:
    audience = audience_of(PollAnsweredEvent(1, "s2", (0,)))
    assert audience == Audience.staff_and("s2")
    assert audience.admits(OTHER) and audience.admits(TEACHER)
    assert not audience.admits(STUDENT)


@pytest.mark.parametrize(
    "event",
    [e for e in ONE_OF_EACH_EVENT if e.type not in PRIVATE and e.type != "chat.message"],
    ids=lambda e: e.type,
)
def test_every_other_event_goes_to_everyone(event: Event) -> None:
    assert audience_of(event) == Audience.ALL
