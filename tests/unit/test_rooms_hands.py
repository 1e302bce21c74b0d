"""Raised hands: raise, lower, call next, lower all, leave."""

import pytest

from rooms import (
    HandCalledEvent,
    HandCallNext,
    HandLower,
    HandLowerAll,
    HandLoweredEvent,
    HandRaise,
    HandRaisedEvent,
    HandsClearedEvent,
    Leave,
    NoRaisedHands,
    NotAllowed,
    Participant,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    ParticipantRemove,
    Role,
)
from tests.unit.test_rooms_fold import ASSISTANT, OTHER, STUDENT, TEACHER, classroom


def test_student_raises_a_hand_and_joins_the_queue_in_order() -> None:
    room = classroom()
    assert room.do(OTHER, HandRaise()) == [HandRaisedEvent("s2", "Sue")]
    assert room.do(STUDENT, HandRaise()) == [HandRaisedEvent("s1", "Sam")]
    assert room.state.hands == ["s2", "s1"]


def test_raising_a_hand_that_is_up_changes_nothing() -> None:
    room = classroom()
    room.do(STUDENT, HandRaise())
    assert room.do(STUDENT, HandRaise()) == []
    assert room.state.hands == ["s1"]


@pytest.mark.parametrize("staff", [TEACHER, ASSISTANT])
def test_staff_cannot_raise_a_hand(staff: Participant) -> None:
    room = classroom()
    with pytest.raises(NotAllowed):
        room.do(staff, HandRaise())


@pytest.mark.parametrize("identity", [None, "s1"])
def test_student_lowers_their_own_hand(identity: str | None) -> None:
    room = classroom()
    room.do(STUDENT, HandRaise())
    assert room.do(STUDENT, HandLower(identity)) == [HandLoweredEvent("s1", "s1")]
    assert room.state.hands == []


def test_student_cannot_lower_another_students_hand() -> None:
    room = classroom()
    room.do(OTHER, HandRaise())
    with pytest.raises(NotAllowed) as refused:
        room.do(STUDENT, HandLower("s2"))
    assert refused.value.field == "identity"


def test_staff_lower_anyones_hand() -> None:
    room = classroom()
    room.do(STUDENT, HandRaise())
    room.do(OTHER, HandRaise())
    assert room.do(ASSISTANT, HandLower("s2")) == [HandLoweredEvent("s2", "a1")]
    assert room.state.hands == ["s1"]


def test_lowering_a_hand_that_is_not_up_changes_nothing() -> None:
    room = classroom()
    assert room.do(STUDENT, HandLower()) == []
    assert room.do(TEACHER, HandLower("s2")) == []
    assert room.do(TEACHER, HandLower()) == []


def test_call_next_calls_the_first_raised_hand_and_lowers_it() -> None:
    room = classroom()
    room.do(OTHER, HandRaise())
    room.do(STUDENT, HandRaise())
    assert room.do(TEACHER, HandCallNext()) == [HandCalledEvent("s2", "Sue", "t1")]
    assert room.state.hands == ["s1"]
    assert room.do(ASSISTANT, HandCallNext()) == [HandCalledEvent("s1", "Sam", "a1")]
    assert room.state.hands == []


def test_call_next_with_no_raised_hands_is_refused() -> None:
    room = classroom()
    with pytest.raises(NoRaisedHands):
        room.do(TEACHER, HandCallNext())


def test_lower_all_clears_the_queue() -> None:
    room = classroom()
    room.do(STUDENT, HandRaise())
    room.do(OTHER, HandRaise())
    assert room.do(ASSISTANT, HandLowerAll()) == [HandsClearedEvent("a1")]
    assert room.state.hands == []


def test_lower_all_with_no_hands_changes_nothing() -> None:
    room = classroom()
    assert room.do(TEACHER, HandLowerAll()) == []


def test_leaving_lowers_a_raised_hand() -> None:
    room = classroom()
    room.do(STUDENT, HandRaise())
    assert room.do(STUDENT, Leave()) == [HandLoweredEvent("s1", "s1"), ParticipantLeftEvent("s1")]
    assert room.state.hands == []


def test_leaving_is_recorded_once_and_coming_back_is_a_join_again() -> None:
    room = classroom()
    assert room.do(STUDENT, Leave()) == [ParticipantLeftEvent("s1")]
    assert room.do(TEACHER, Leave()) == [ParticipantLeftEvent("t1")]
    assert room.do(STUDENT, Leave()) == [], "left already"
    assert room.join(STUDENT) == [ParticipantJoinedEvent("s1", "Sam", Role.STUDENT)]
    assert room.join(STUDENT) == []


def test_a_removed_students_hand_goes_down() -> None:
    room = classroom()
    room.do(STUDENT, HandRaise())
    room.do(OTHER, HandRaise())
    room.do(TEACHER, ParticipantRemove("s1"))
    assert room.state.hands == ["s2"]


def test_a_student_who_comes_back_as_staff_loses_their_hand() -> None:
    room = classroom()
    room.do(STUDENT, HandRaise())
    room.join(Participant("s1", "Sam", Role.ASSISTANT))
    assert room.state.hands == []
