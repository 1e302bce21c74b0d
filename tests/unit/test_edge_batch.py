"""signaling.edge.batch: a batch decides each command against the state the ones before it
leave, and never changes the room's state itself."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from rooms import (
    AlreadyVoted,
    ChatSend,
    Command,
    HandRaise,
    Participant,
    ParticipantJoinedEvent,
    PollAnswer,
    PollOpen,
    QuestionAsk,
    QuestionUpvote,
    QuestionUpvotedEvent,
    Record,
    Role,
    RoomError,
    copy_state,
    decide,
    evolve,
)
from rooms.snapshot import state_to_data
from signaling.edge.batch import (
    MAX_BATCH,
    Proposal,
    batch_size,
    conflict_backoff_s,
    plan_batch,
)
from tests.unit.test_rooms_fold import ACTORS, ALL_COMMANDS, OTHER, STUDENT, TEACHER, classroom

TS = 1_700_000_123_000


def test_each_command_sees_the_ones_before_it_in_the_batch() -> None:
    room = classroom()
    base_last_id = room.state.last_id
    plan = plan_batch(
        room.state,
        [
            Proposal(STUDENT, QuestionAsk("why?")),
            Proposal(OTHER, QuestionUpvote(1)),  # the question asked just before
            Proposal(OTHER, QuestionUpvote(1)),  # the same voter again: refused
            Proposal(TEACHER, QuestionUpvote(1)),
        ],
        TS,
    )
    assert plan.base_last_id == base_last_id
    assert [r.id for r in plan.records] == [base_last_id + 1, base_last_id + 2, base_last_id + 3]
    assert all(r.ts == TS for r in plan.records)
    assert isinstance(plan.outcomes[2].error, AlreadyVoted)
    assert plan.records_of(1)[0].event == QuestionUpvotedEvent(1, OTHER.identity)
    assert plan.records_of(2) == ()
    assert plan.records_of(3)[0].event == QuestionUpvotedEvent(1, TEACHER.identity)
    assert plan.state is not None
    assert plan.state.questions[1].voters == {OTHER.identity, TEACHER.identity}
    assert plan.state.last_id == base_last_id + 3


def test_a_plan_never_changes_the_rooms_state() -> None:
    room = classroom()
    room.do(TEACHER, PollOpen("which?", ("a", "b"), False))
    before = state_to_data(room.state)
    plan = plan_batch(
        room.state,
        [Proposal(STUDENT, PollAnswer(1, (0,))), Proposal(OTHER, PollAnswer(1, (1,)))],
        TS,
    )
    assert len(plan.records) == 2
    assert state_to_data(room.state) == before


def test_one_command_is_decided_against_the_state_without_a_copy() -> None:
    room = classroom()
    plan = plan_batch(room.state, [Proposal(STUDENT, ChatSend("hi", None))], TS)
    assert len(plan.records) == 1
    assert plan.state is None  # fold the record into the room's state once it commits


def test_errors_take_no_ids_and_a_batch_of_errors_appends_nothing() -> None:
    room = classroom()
    plan = plan_batch(
        room.state, [Proposal(STUDENT, QuestionUpvote(9)), Proposal(OTHER, QuestionUpvote(9))], TS
    )
    assert plan.records == ()
    assert all(o.error is not None and o.error.code == "no_such_question" for o in plan.outcomes)


def test_joins_batch_with_commands_and_join_once() -> None:
    room = classroom()
    newcomer = Participant("s9", "Nia", Role.STUDENT)
    plan = plan_batch(
        room.state,
        [Proposal(newcomer, None), Proposal(newcomer, None), Proposal(newcomer, HandRaise())],
        TS,
    )
    assert [type(r.event) for r in plan.records_of(0)] == [ParticipantJoinedEvent]
    assert plan.records_of(1) == ()  # the same identity again: nothing new
    assert plan.outcomes[2].error is None and len(plan.records_of(2)) == 1


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(ACTORS, ALL_COMMANDS), min_size=1, max_size=30))
def test_a_batch_decides_exactly_as_one_command_at_a_time(
    steps: list[tuple[Participant, Command]],
) -> None:
    room = classroom()
    room.do(STUDENT, QuestionAsk("why?"))
    room.do(TEACHER, PollOpen("which?", ("a", "b", "c"), True))
    base = copy_state(room.state)
    plan = plan_batch(room.state, [Proposal(a, c) for a, c in steps], TS)
    # One at a time, as the hub did before batches.
    one_by_one = copy_state(base)
    next_id = base.last_id + 1
    for index, (actor, command) in enumerate(steps):
        outcome = plan.outcomes[index]
        try:
            events = decide(one_by_one, actor, command)
        except RoomError as exc:
            assert outcome.error is not None and outcome.error.code == exc.code
            continue
        assert outcome.error is None
        assert [r.event for r in plan.records_of(index)] == events
        for event in events:
            evolve(one_by_one, Record(next_id, TS, event))
            next_id += 1
    folded = copy_state(base)
    for record in plan.records:
        evolve(folded, record)
    assert folded == one_by_one
    if plan.state is not None:
        assert plan.state == one_by_one
    assert state_to_data(room.state) == state_to_data(base)


def test_batch_boundaries() -> None:
    assert batch_size(1) == 1
    assert batch_size(MAX_BATCH - 1) == MAX_BATCH - 1
    assert batch_size(MAX_BATCH * 3) == MAX_BATCH
    assert batch_size(10, limit=4) == 4


def test_conflicts_retry_at_once_then_back_off_with_bounded_jitter() -> None:
    rng = random.Random(7)
    assert conflict_backoff_s(1, rng) == 0.0
    assert conflict_backoff_s(2, rng) == 0.0
    waits = [conflict_backoff_s(n, rng) for n in range(3, 40)]
    assert all(0.0 <= w <= 0.064 for w in waits)
    assert max(waits) > 0.0
    assert max(conflict_backoff_s(3, rng) for _ in range(200)) <= 0.002
