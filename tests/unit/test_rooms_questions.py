"""Q&A: ask, upvote, unvote, answer, dismiss, pin."""

import pytest

from rooms import (
    AlreadyVoted,
    BadField,
    NoSuchQuestion,
    NotVoted,
    QuestionAnswer,
    QuestionAnsweredEvent,
    QuestionAsk,
    QuestionAskedEvent,
    QuestionClosed,
    QuestionDismiss,
    QuestionDismissedEvent,
    QuestionPin,
    QuestionPinnedEvent,
    QuestionUnvote,
    QuestionUnvotedEvent,
    QuestionUpvote,
    QuestionUpvotedEvent,
    decide,
)
from tests.unit.test_rooms_fold import ASSISTANT, OTHER, START_MS, STUDENT, TEACHER, classroom


def test_anyone_asks_a_question() -> None:
    room = classroom()
    assert room.do(STUDENT, QuestionAsk("why?")) == [QuestionAskedEvent(1, "s1", "Sam", "why?")]
    assert room.do(TEACHER, QuestionAsk("any more?")) == [
        QuestionAskedEvent(2, "t1", "Tess", "any more?")
    ]


def test_asked_question_takes_its_time_from_the_record() -> None:
    room = classroom()
    [record] = room.append(decide(room.state, STUDENT, QuestionAsk("why?")))
    assert record.ts > START_MS
    assert room.state.questions[1].ts == record.ts


@pytest.mark.parametrize("text", ["", " \n", "q" * 501])
def test_question_text_out_of_range_is_bad_field(text: str) -> None:
    room = classroom()
    with pytest.raises(BadField) as refused:
        room.do(STUDENT, QuestionAsk(text))
    assert refused.value.field == "text"


def test_question_of_500_characters_is_accepted() -> None:
    room = classroom()
    assert len(room.do(STUDENT, QuestionAsk("q" * 500))) == 1


def test_anyone_upvotes_a_question_once() -> None:
    room = classroom()
    room.do(STUDENT, QuestionAsk("why?"))
    assert room.do(OTHER, QuestionUpvote(1)) == [QuestionUpvotedEvent(1, "s2")]
    assert room.do(STUDENT, QuestionUpvote(1)) == [QuestionUpvotedEvent(1, "s1")]
    assert room.do(TEACHER, QuestionUpvote(1)) == [QuestionUpvotedEvent(1, "t1")]
    assert room.state.questions[1].votes == 3
    with pytest.raises(AlreadyVoted):
        room.do(OTHER, QuestionUpvote(1))


def test_unvote_takes_back_an_upvote() -> None:
    room = classroom()
    room.do(STUDENT, QuestionAsk("why?"))
    room.do(OTHER, QuestionUpvote(1))
    assert room.do(OTHER, QuestionUnvote(1)) == [QuestionUnvotedEvent(1, "s2")]
    assert room.state.questions[1].votes == 0
    assert len(room.do(OTHER, QuestionUpvote(1))) == 1


def test_unvote_without_an_upvote_is_not_voted() -> None:
    room = classroom()
    room.do(STUDENT, QuestionAsk("why?"))
    with pytest.raises(NotVoted):
        room.do(OTHER, QuestionUnvote(1))


@pytest.mark.parametrize("command", [QuestionUpvote(1), QuestionUnvote(1)])
def test_votes_on_an_answered_question_are_refused(
    command: QuestionUpvote | QuestionUnvote,
) -> None:
    room = classroom()
    room.do(STUDENT, QuestionAsk("why?"))
    room.do(OTHER, QuestionUpvote(1))
    room.do(TEACHER, QuestionAnswer(1))
    with pytest.raises(QuestionClosed):
        room.do(OTHER, command)


@pytest.mark.parametrize(
    "command",
    [
        QuestionUpvote(9),
        QuestionUnvote(9),
        QuestionAnswer(9),
        QuestionDismiss(9),
        QuestionPin(9, True),
    ],
)
def test_unknown_question_is_no_such_question(
    command: QuestionUpvote | QuestionUnvote | QuestionAnswer | QuestionDismiss | QuestionPin,
) -> None:
    room = classroom()
    room.do(STUDENT, QuestionAsk("why?"))
    actor = STUDENT if isinstance(command, QuestionUpvote | QuestionUnvote) else TEACHER
    with pytest.raises(NoSuchQuestion) as refused:
        room.do(actor, command)
    assert refused.value.field == "question_id"


@pytest.mark.parametrize(
    "command",
    [QuestionUpvote(1), QuestionUnvote(1), QuestionAnswer(1), QuestionDismiss(1)],
)
def test_dismissed_question_is_no_such_question(
    command: QuestionUpvote | QuestionUnvote | QuestionAnswer | QuestionDismiss,
) -> None:
    room = classroom()
    room.do(STUDENT, QuestionAsk("why?"))
    room.do(OTHER, QuestionUpvote(1))
    room.do(ASSISTANT, QuestionDismiss(1))
    actor = OTHER if isinstance(command, QuestionUpvote | QuestionUnvote) else TEACHER
    with pytest.raises(NoSuchQuestion):
        room.do(actor, command)


def test_staff_answer_a_question_once() -> None:
    room = classroom()
    room.do(STUDENT, QuestionAsk("why?"))
    assert room.do(ASSISTANT, QuestionAnswer(1)) == [QuestionAnsweredEvent(1, "a1")]
    assert room.state.questions[1].answered
    assert room.do(TEACHER, QuestionAnswer(1)) == []


def test_staff_dismiss_a_question() -> None:
    room = classroom()
    room.do(STUDENT, QuestionAsk("why?"))
    assert room.do(TEACHER, QuestionDismiss(1)) == [QuestionDismissedEvent(1, "t1")]
    assert 1 not in room.state.questions  # a dismissed question leaves the state


def test_staff_pin_and_unpin_a_question() -> None:
    room = classroom()
    room.do(STUDENT, QuestionAsk("why?"))
    assert room.do(TEACHER, QuestionPin(1, True)) == [QuestionPinnedEvent(1, True, "t1")]
    assert room.state.questions[1].pinned
    assert room.do(ASSISTANT, QuestionPin(1, True)) == []
    assert room.do(ASSISTANT, QuestionPin(1, False)) == [QuestionPinnedEvent(1, False, "a1")]
    assert not room.state.questions[1].pinned


def test_an_answered_question_can_still_be_pinned() -> None:
    room = classroom()
    room.do(STUDENT, QuestionAsk("why?"))
    room.do(TEACHER, QuestionAnswer(1))
    assert len(room.do(TEACHER, QuestionPin(1, True))) == 1
