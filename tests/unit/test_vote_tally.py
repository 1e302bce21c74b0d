"""Vote tallies in large rooms (signaling/edge/tally.py): who is sent which vote, what a tally
holds, and that a student who applies its events and tallies in order ends with the room's
counts."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from rooms import (
    Audience,
    ChatMessageEvent,
    Event,
    Participant,
    Question,
    QuestionAskedEvent,
    QuestionDismissedEvent,
    QuestionUnvotedEvent,
    QuestionUpvotedEvent,
    Record,
    Role,
    RoomState,
    audience_of,
    evolve,
    new_room,
)
from signaling.edge.tally import (
    VoteTally,
    coalesced_audience,
    resume_audience,
    resume_tally,
    tally_for_place,
    tally_message,
)

TEACHER = Participant("t1", "Tess", Role.TEACHER)
ASSISTANT = Participant("a1", "Ari", Role.ASSISTANT)
STUDENTS = [Participant(f"s{i}", f"Student {i}", Role.STUDENT) for i in range(6)]
S0, S1 = STUDENTS[0], STUDENTS[1]


class Room:
    """A room's state and log, folded as the hub folds them."""

    def __init__(self, questions: int = 2) -> None:
        self.state: RoomState = new_room("r")
        self.log: list[Record] = []
        for q in range(1, questions + 1):
            self.append(QuestionAskedEvent(q, "t1", "Tess", f"question {q}"))

    def append(self, event: Event) -> Record:
        record = Record(self.state.last_id + 1, 1_000 + self.state.last_id, event)
        evolve(self.state, record)
        self.log.append(record)
        return record

    def votes(self) -> dict[int, int]:
        return {q: question.votes for q, question in self.state.questions.items()}


def upvote(q: int, who: Participant) -> QuestionUpvotedEvent:
    return QuestionUpvotedEvent(q, who.identity)


def unvote(q: int, who: Participant) -> QuestionUnvotedEvent:
    return QuestionUnvotedEvent(q, who.identity)


def routed(tally: VoteTally, event: Event, *, large: bool) -> Audience:
    return tally.route(event, audience_of(event), large=large)


# -- who is sent a vote ------------------------------------------------------------------------


def test_in_a_large_room_a_vote_goes_to_the_staff_and_the_voter_only() -> None:
    tally = VoteTally()
    audience = routed(tally, upvote(1, S0), large=True)
    assert audience.admits(S0) and audience.admits(TEACHER) and audience.admits(ASSISTANT)
    assert not audience.admits(S1)
    assert routed(tally, unvote(1, S0), large=True) == Audience.staff_and("s0")
    assert tally.pending


def test_in_a_small_room_votes_go_to_everyone_in_their_room_and_no_tally_is_due() -> None:
    tally = VoteTally()
    assert routed(tally, upvote(1, S0), large=False) == Audience.in_room(None)
    assert routed(tally, unvote(1, S0), large=False) == Audience.in_room(None)
    assert not tally.pending


@pytest.mark.parametrize(
    "event",
    [
        QuestionAskedEvent(1, "s0", "Student 0", "why?"),
        QuestionDismissedEvent(1, "t1"),
        ChatMessageEvent("s0", "Student 0", Role.STUDENT, "hi", None),
        ChatMessageEvent("t1", "Tess", Role.TEACHER, "psst", "s0"),
    ],
    ids=lambda e: e.type,
)
def test_other_events_keep_their_audience_in_a_large_room(event: Event) -> None:
    tally = VoteTally()
    assert routed(tally, event, large=True) == audience_of(event)
    assert coalesced_audience(event, audience_of(event)) == audience_of(event)
    assert not tally.pending


# -- what a tally holds ------------------------------------------------------------------------


def test_a_window_coalesces_every_vote_into_one_tally_of_the_changed_questions() -> None:
    room, tally = Room(questions=3), VoteTally()
    for student in STUDENTS:
        routed(tally, room.append(upvote(1, student)).event, large=True)
    routed(tally, room.append(upvote(3, S0)).event, large=True)
    routed(tally, room.append(unvote(3, S0)).event, large=True)
    message = tally.take(room.state)
    assert message == {
        "t": "tally",
        "through": room.state.last_id,
        "questions": [{"question_id": 1, "votes": 6}, {"question_id": 3, "votes": 0}],
    }
    assert not tally.pending
    assert tally.take(room.state) is None, "a window without votes sends nothing"


def test_the_next_window_holds_only_what_changed_since_the_last_tally() -> None:
    room, tally = Room(questions=2), VoteTally()
    routed(tally, room.append(upvote(1, S0)).event, large=True)
    first = tally.take(room.state)
    routed(tally, room.append(upvote(2, S1)).event, large=True)
    second = tally.take(room.state)
    assert first is not None and second is not None
    assert first["questions"] == [{"question_id": 1, "votes": 1}]
    assert second["questions"] == [{"question_id": 2, "votes": 1}]
    assert first["through"] < second["through"] == room.state.last_id


def test_a_dismissed_question_leaves_the_tally() -> None:
    room, tally = Room(questions=2), VoteTally()
    routed(tally, room.append(upvote(1, S0)).event, large=True)
    routed(tally, room.append(upvote(2, S0)).event, large=True)
    room.append(QuestionDismissedEvent(1, "t1"))
    message = tally.take(room.state)
    assert message is not None and message["questions"] == [{"question_id": 2, "votes": 1}]
    routed(tally, room.append(upvote(2, S1)).event, large=True)
    room.append(QuestionDismissedEvent(2, "t1"))
    assert tally.take(room.state) is None


def test_tally_message_sorts_by_question_id() -> None:
    assert tally_message(9, [(3, 1), (1, 4)]) == {
        "t": "tally",
        "through": 9,
        "questions": [{"question_id": 1, "votes": 4}, {"question_id": 3, "votes": 1}],
    }


# -- resume --------------------------------------------------------------------------------------


def test_a_resume_in_a_large_room_leaves_out_others_votes_and_ends_with_every_count() -> None:
    room = Room(questions=2)
    since = room.state.last_id
    room.append(upvote(1, S0))
    room.append(upvote(1, S1))
    room.append(ChatMessageEvent("t1", "Tess", Role.TEACHER, "hello", None))
    room.append(unvote(1, S1))
    missed = [
        r.id
        for r in room.log
        if r.id > since and resume_audience(r.event, audience_of(r.event), large=True).admits(S1)
    ]
    assert [room.log[i - 1].event.type for i in missed] == [
        "question.upvoted",
        "chat.message",
        "question.unvoted",
    ], "s1 gets its own votes and the chat, not s0's vote"
    staff = [
        r.id
        for r in room.log
        if r.id > since
        and resume_audience(r.event, audience_of(r.event), large=True).admits(TEACHER)
    ]
    assert len(staff) == 4
    assert resume_tally(room.state) == {
        "t": "tally",
        "through": room.state.last_id,
        "questions": [{"question_id": 1, "votes": 1}, {"question_id": 2, "votes": 0}],
    }


def test_a_resume_in_a_small_room_replays_every_vote() -> None:
    event = upvote(1, S0)
    assert resume_audience(event, audience_of(event), large=False).admits(S1)


def test_a_room_without_questions_has_no_resume_tally() -> None:
    assert resume_tally(new_room("r")) is None


# -- a student's view ends right -----------------------------------------------------------------


@dataclass
class View:
    """What a client keeps (docs/protocol.md, "Vote tallies"): counts from the welcome, moved by
    the vote events it receives, set by each tally; ``last_id`` advanced to ``through``."""

    me: Participant
    votes: dict[int, int]
    voted: set[int] = field(default_factory=set)
    last_id: int = 0

    def event(self, record: Record) -> None:
        assert record.id > self.last_id, "events arrive in order, never at or below last_id"
        self.last_id = record.id
        event = record.event
        if isinstance(event, QuestionUpvotedEvent):
            self.votes[event.question_id] += 1
            if event.identity == self.me.identity:
                self.voted.add(event.question_id)
        elif isinstance(event, QuestionUnvotedEvent):
            self.votes[event.question_id] -= 1
            if event.identity == self.me.identity:
                self.voted.discard(event.question_id)

    def tally(self, message: dict[str, Any]) -> None:
        for entry in message["questions"]:
            self.votes[entry["question_id"]] = entry["votes"]
        self.last_id = max(self.last_id, message["through"])


@pytest.mark.parametrize("seed", range(20))
def test_students_applying_events_and_tallies_in_order_end_with_the_rooms_counts(
    seed: int,
) -> None:
    """Votes, un-votes and windows drawn at random, the room crossing --large-room and back: the
    staff's counts are always the room's, a student's lag only on questions with a tally pending,
    and once the last window is flushed every student's counts and own votes are the room's."""
    rng = random.Random(seed)
    room, tally = Room(questions=3), VoteTally()
    views = {
        p.identity: View(p, room.votes(), last_id=room.state.last_id) for p in [TEACHER, *STUDENTS]
    }
    large = True
    batch: list[tuple[Record, Audience]] = []

    def flush_batch() -> None:
        for record, audience in batch:
            for view in views.values():
                if audience.admits(view.me):
                    view.event(record)
        batch.clear()
        # Between tallies a student's count is behind only on questions with a tally pending;
        # the staff's are always the room's.
        counts = room.votes()
        for view in views.values():
            for q, votes in view.votes.items():
                if view.me.is_staff or q not in tally.pending_questions:
                    assert votes == counts[q], f"{view.me.identity}: question {q}"

    def flush_tally() -> None:
        flush_batch()  # the hub writes the events the tally covers first
        message = tally.take(room.state)
        if message is not None:
            for view in views.values():
                if not view.me.is_staff:  # the staff have every vote already
                    view.tally(message)

    for _ in range(200):
        roll = rng.random()
        if roll < 0.05:
            large = not large
        elif roll < 0.15:
            flush_batch()
        elif roll < 0.25:
            flush_tally()
        else:
            student = rng.choice(STUDENTS)
            q = rng.randint(1, 3)
            voted = student.identity in room.state.questions[q].voters
            record = room.append(unvote(q, student) if voted else upvote(q, student))
            batch.append((record, routed(tally, record.event, large=large)))
    flush_tally()
    for view in views.values():
        assert view.votes == room.votes(), f"seed {seed}: {view.me.identity}"
        mine = {
            q for q, question in room.state.questions.items() if view.me.identity in question.voters
        }
        assert view.voted == mine


def test_a_tally_for_a_place_holds_only_that_places_questions() -> None:
    state = new_room("r")
    state.questions[1] = Question(1, "s0", "S", "main?", 0)
    state.questions[2] = Question(2, "s1", "S", "red?", 0, room="Red")
    both = tally_message(9, [(1, 3), (2, 4)])
    assert tally_for_place(both, state, None) == tally_message(9, [(1, 3)])
    assert tally_for_place(both, state, "Red") == tally_message(9, [(2, 4)])
    assert tally_for_place(both, state, "Blue") is None
