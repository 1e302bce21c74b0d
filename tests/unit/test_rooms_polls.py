"""Polls: open, answer (and re-answer), close with a tally."""

import pytest

from rooms import (
    BadField,
    InvalidChoice,
    NoSuchPoll,
    NotAllowed,
    Participant,
    PollAnswer,
    PollAnsweredEvent,
    PollClose,
    PollClosed,
    PollClosedEvent,
    PollOpen,
    PollOpenedEvent,
)
from tests.unit.test_rooms_fold import ASSISTANT, OTHER, STUDENT, TEACHER, Classroom, classroom


def poll_room(*, multiple: bool = False) -> Classroom:
    room = classroom()
    room.do(TEACHER, PollOpen("Best fruit?", ("apple", "pear", "fig"), multiple))
    return room


def test_staff_open_a_poll() -> None:
    room = classroom()
    assert room.do(ASSISTANT, PollOpen("Ready?", ("yes", "no"), False)) == [
        PollOpenedEvent(1, "Ready?", ("yes", "no"), False, "a1")
    ]
    poll = room.state.polls[1]
    assert poll.open and poll.options == ("yes", "no") and not poll.multiple


@pytest.mark.parametrize(
    ("question", "options", "field"),
    [
        ("", ("a", "b"), "question"),
        ("q" * 301, ("a", "b"), "question"),
        ("q", ("a",), "options"),
        ("q", (), "options"),
        ("q", tuple("abcdefghijk"), "options"),
        ("q", ("a", ""), "options"),
        ("q", ("a", " "), "options"),
        ("q", ("a", "b" * 101), "options"),
    ],
)
def test_poll_out_of_range_is_bad_field(
    question: str, options: tuple[str, ...], field: str
) -> None:
    room = classroom()
    with pytest.raises(BadField) as refused:
        room.do(TEACHER, PollOpen(question, options, False))
    assert refused.value.field == field


def test_poll_at_the_limits_is_accepted() -> None:
    room = classroom()
    assert len(room.do(TEACHER, PollOpen("q" * 300, tuple("abcdefghij"), True))) == 1
    assert len(room.do(TEACHER, PollOpen("q", ("o" * 100, "p"), False))) == 1


def test_student_answers_a_single_choice_poll() -> None:
    room = poll_room()
    assert room.do(STUDENT, PollAnswer(1, (2,))) == [PollAnsweredEvent(1, "s1", (2,))]
    assert room.state.polls[1].answers == {"s1": (2,)}


def test_a_new_answer_replaces_the_old() -> None:
    room = poll_room()
    room.do(STUDENT, PollAnswer(1, (2,)))
    assert room.do(STUDENT, PollAnswer(1, (0,))) == [PollAnsweredEvent(1, "s1", (0,))]
    assert room.state.polls[1].answers == {"s1": (0,)}
    assert room.state.polls[1].current_tally() == (1, 0, 0)


def test_the_same_answer_again_changes_nothing() -> None:
    room = poll_room(multiple=True)
    room.do(STUDENT, PollAnswer(1, (0, 2)))
    assert room.do(STUDENT, PollAnswer(1, (2, 0))) == []


def test_multiple_choice_answer_is_stored_in_option_order() -> None:
    room = poll_room(multiple=True)
    assert room.do(STUDENT, PollAnswer(1, (2, 0))) == [PollAnsweredEvent(1, "s1", (0, 2))]


@pytest.mark.parametrize("choices", [(), (0, 1), (3,), (-1,)])
def test_single_choice_poll_needs_exactly_one_valid_choice(choices: tuple[int, ...]) -> None:
    room = poll_room()
    with pytest.raises(InvalidChoice) as refused:
        room.do(STUDENT, PollAnswer(1, choices))
    assert refused.value.field == "choices"


@pytest.mark.parametrize("choices", [(), (1, 1), (0, 3), (-1, 0)])
def test_multiple_choice_poll_needs_distinct_valid_choices(choices: tuple[int, ...]) -> None:
    room = poll_room(multiple=True)
    with pytest.raises(InvalidChoice):
        room.do(STUDENT, PollAnswer(1, choices))


def test_multiple_choice_poll_takes_every_option() -> None:
    room = poll_room(multiple=True)
    assert len(room.do(STUDENT, PollAnswer(1, (0, 1, 2)))) == 1


@pytest.mark.parametrize("staff", [TEACHER, ASSISTANT])
def test_staff_cannot_answer_a_poll(staff: Participant) -> None:
    room = poll_room()
    with pytest.raises(NotAllowed):
        room.do(staff, PollAnswer(1, (0,)))


def test_unknown_poll_is_no_such_poll() -> None:
    room = poll_room()
    with pytest.raises(NoSuchPoll) as refused:
        room.do(STUDENT, PollAnswer(2, (0,)))
    assert refused.value.field == "poll_id"
    with pytest.raises(NoSuchPoll):
        room.do(TEACHER, PollClose(2))


def test_close_publishes_the_tally_and_voter_count() -> None:
    room = poll_room(multiple=True)
    room.do(STUDENT, PollAnswer(1, (0, 2)))
    room.do(OTHER, PollAnswer(1, (2,)))
    assert room.do(ASSISTANT, PollClose(1)) == [PollClosedEvent(1, (1, 0, 2), 2, "a1")]
    poll = room.state.polls[1]
    assert not poll.open and poll.tally == (1, 0, 2) and poll.voters == 2


def test_close_counts_only_the_latest_answers() -> None:
    room = poll_room()
    room.do(STUDENT, PollAnswer(1, (0,)))
    room.do(STUDENT, PollAnswer(1, (1,)))
    room.do(OTHER, PollAnswer(1, (1,)))
    assert room.do(TEACHER, PollClose(1)) == [PollClosedEvent(1, (0, 2, 0), 2, "t1")]


def test_closing_a_poll_nobody_answered_tallies_zeros() -> None:
    room = poll_room()
    assert room.do(TEACHER, PollClose(1)) == [PollClosedEvent(1, (0, 0, 0), 0, "t1")]


def test_a_poll_closes_once() -> None:
    room = poll_room()
    room.do(TEACHER, PollClose(1))
    with pytest.raises(PollClosed):
        room.do(ASSISTANT, PollClose(1))


def test_answering_a_closed_poll_is_refused() -> None:
    room = poll_room()
    room.do(TEACHER, PollClose(1))
    with pytest.raises(PollClosed):
        room.do(STUDENT, PollAnswer(1, (0,)))


def test_several_polls_run_side_by_side() -> None:
    room = poll_room()
    room.do(TEACHER, PollOpen("Second?", ("a", "b"), False))
    room.do(STUDENT, PollAnswer(2, (1,)))
    room.do(STUDENT, PollAnswer(1, (0,)))
    assert room.state.polls[1].answers == {"s1": (0,)}
    assert room.state.polls[2].answers == {"s1": (1,)}
