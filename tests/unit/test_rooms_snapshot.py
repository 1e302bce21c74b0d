"""Room snapshots: a state stored as data and read back folds on exactly like the full log."""

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms import (
    BoardClear,
    BoardLock,
    BoardSnapshot,
    ChatSend,
    Command,
    Participant,
    PollAnswer,
    PollOpen,
    QuestionAsk,
    QuestionUpvote,
    RoomError,
    SessionEnd,
    evolve,
    new_room,
)
from rooms.snapshot import SNAPSHOT_VERSION, SnapshotError, state_from_data, state_to_data
from tests.unit.test_rooms_fold import (
    ACTORS,
    COMMANDS_STRATEGY,
    OTHER,
    STUDENT,
    TEACHER,
    classroom,
)

BOARD_COMMANDS: st.SearchStrategy[Command] = st.one_of(
    st.builds(BoardLock, st.sampled_from(["main", "b2"]), st.booleans()),
    st.builds(BoardClear, st.sampled_from(["main", "b2"])),
    st.builds(BoardSnapshot, st.sampled_from(["main", "b2"])),
    st.builds(SessionEnd, st.just("done")),
)


def through_msgpack(data: object) -> object:
    """What a store hands back: the data packed and unpacked as the hub does."""
    return msgpack.unpackb(msgpack.packb(data))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(ACTORS, st.one_of(COMMANDS_STRATEGY, BOARD_COMMANDS)), max_size=60),
    st.integers(min_value=0, max_value=10_000),
)
def test_a_snapshot_then_the_rest_of_the_log_folds_to_the_full_state(
    steps: list[tuple[Participant, Command]], cut_seed: int
) -> None:
    room = classroom()
    for actor, command in steps:
        try:
            room.do(actor, command)
        except RoomError:
            pass
    cut = cut_seed % (len(room.log) + 1)
    head = new_room(room.state.room_id)
    for record in room.log[:cut]:
        evolve(head, record)
    restored = state_from_data(through_msgpack(state_to_data(head)))
    assert restored == head
    for record in room.log[cut:]:
        evolve(restored, record)
    assert restored == room.state


def test_chat_history_and_private_threads_survive_a_snapshot() -> None:
    room = classroom()
    for n in range(230):
        room.do(STUDENT, ChatSend(f"m{n}"))
    room.do(STUDENT, ChatSend("psst", to="staff"))
    room.do(TEACHER, QuestionAsk("why?"))
    room.do(OTHER, QuestionUpvote(1))
    room.do(TEACHER, PollOpen("pick", ("a", "b"), True))
    room.do(STUDENT, PollAnswer(1, (0, 1)))
    restored = state_from_data(through_msgpack(state_to_data(room.state)))
    assert restored == room.state
    assert len(restored.chat) == 200 and restored.chat.maxlen == 200
    room.do(STUDENT, ChatSend("one more"))
    evolve(restored, room.log[-1])
    assert restored.chat == room.state.chat


def test_a_snapshot_of_another_version_is_refused() -> None:
    data = state_to_data(classroom().state)
    data["v"] = SNAPSHOT_VERSION + 1
    with pytest.raises(SnapshotError, match="version"):
        state_from_data(data)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("participants"),
        lambda d: d.update(participants=[["s1", "Sam", "janitor"]]),
        lambda d: d.update(chat=[[1, 2, "no.such.event", {}]]),
        lambda d: d.update(questions=[[1, "s1"]]),
        lambda d: d.update(last_id="many"),
    ],
)
def test_a_damaged_snapshot_raises_a_snapshot_error(damage) -> None:  # type: ignore[no-untyped-def]
    data = state_to_data(classroom().state)
    damage(data)
    with pytest.raises(SnapshotError):
        state_from_data(data)


def test_not_a_map_is_refused() -> None:
    with pytest.raises(SnapshotError):
        state_from_data([1, 2, 3])
