"""Room snapshots: a state stored as data and read back folds on exactly like the full log."""

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms import (
    BoardClear,
    BoardLock,
    BoardSnapshot,
    BreakoutMove,
    BreakoutOpen,
    ChatSend,
    Command,
    MediaMode,
    MediaMute,
    MediaPermit,
    MediaSpotlight,
    Participant,
    PollAnswer,
    PollOpen,
    QuestionAsk,
    QuestionUpvote,
    RoomError,
    SessionEnd,
    StageSet,
    admit,
    evolve,
    new_room,
)
from rooms.snapshot import SNAPSHOT_VERSION, SnapshotError, state_from_data, state_to_data
from tests.unit.test_rooms_fold import (
    ACTORS,
    ALL_COMMANDS,
    BREAKOUT_SESSIONS,
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
    st.one_of(
        st.lists(st.tuples(ACTORS, st.one_of(ALL_COMMANDS, BOARD_COMMANDS)), max_size=60),
        BREAKOUT_SESSIONS,
    ),
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


def test_media_rules_and_breakout_rooms_survive_a_snapshot() -> None:
    room = classroom()
    room.do(TEACHER, MediaMode("lecture"))
    room.do(TEACHER, MediaMute("camera", True, "s1"))
    room.do(TEACHER, MediaMute("screen", True))
    room.do(TEACHER, MediaPermit("s2", True))
    room.do(TEACHER, MediaSpotlight("s2"))
    room.do(TEACHER, BreakoutOpen(("red", "blue")))
    room.do(TEACHER, BreakoutMove("s1", "blue"))
    restored = state_from_data(through_msgpack(state_to_data(room.state)))
    assert restored == room.state
    assert restored.breakouts == ("red", "blue") and restored.breakout_of == {"s1": "blue"}
    assert restored.media_muted == {("s1", "camera")}


VERSION_3_KEYS = (
    "breakout_round",
    "breakout_boards",
    "breakout_ends_at",
    "breakout_warn_s",
    "breakout_self_select",
    "breakout_cap",
    "breakout_help",
    "breakout_chat",
    "breakout_archive",
    "gallery",
    "gallery_shared",
)

VERSION_5_KEYS = ("stage",)

VERSION_2_KEYS = (
    "media_mode",
    "media_muted",
    "media_muted_all",
    "media_permitted",
    "spotlight",
    "breakouts",
    "breakout_of",
)


def test_a_version_1_snapshot_is_read_as_a_room_without_media_rules_or_breakouts() -> None:
    room = classroom()
    room.do(STUDENT, ChatSend("hi"))
    room.do(TEACHER, PollOpen("pick", ("a", "b"), False))
    version_1 = {k: v for k, v in state_to_data(room.state).items() if k not in VERSION_2_KEYS}
    version_1["v"] = 1
    version_1 = {k: v for k, v in version_1.items() if k not in VERSION_3_KEYS + VERSION_5_KEYS}
    restored = state_from_data(through_msgpack(version_1))
    assert restored == room.state
    assert SNAPSHOT_VERSION == 5


def test_a_version_3_snapshot_is_read_as_a_room_without_a_class_name() -> None:
    room = classroom()
    room.append(admit(room.state, TEACHER, "Algebra 2"))
    assert room.state.class_name == "Algebra 2"
    data = state_to_data(room.state)
    assert state_from_data(through_msgpack(data)).class_name == "Algebra 2"
    del data["class_name"]
    data["v"] = 3
    assert state_from_data(through_msgpack(data)).class_name is None


def test_a_version_2_snapshot_with_open_rooms_reads_their_boards_as_named_after_them() -> None:
    room = classroom()
    room.do(TEACHER, BreakoutOpen(("red", "blue")))
    room.do(TEACHER, BreakoutMove("s1", "blue"))
    version_2 = {k: v for k, v in state_to_data(room.state).items() if k not in VERSION_3_KEYS}
    version_2["v"] = 2
    version_2 = {k: v for k, v in version_2.items() if k not in VERSION_5_KEYS}
    restored = state_from_data(through_msgpack(version_2))
    assert restored.breakouts == ("red", "blue") and restored.breakout_of == {"s1": "blue"}
    assert restored.breakout_boards == ("red", "blue")
    assert set(restored.breakout_chat) == {"red", "blue"}


def test_the_stage_survives_a_snapshot() -> None:
    room = classroom()
    room.do(TEACHER, StageSet("video"))
    restored = state_from_data(through_msgpack(state_to_data(room.state)))
    assert restored == room.state
    assert restored.stage == "video"


def test_a_version_4_snapshot_is_read_with_the_whiteboard_on_the_stage() -> None:
    room = classroom()
    room.do(TEACHER, MediaSpotlight("s2"))
    version_4 = {k: v for k, v in state_to_data(room.state).items() if k not in VERSION_5_KEYS}
    version_4["v"] = 4
    restored = state_from_data(through_msgpack(version_4))
    assert restored == room.state
    assert restored.stage == "board"
    assert SNAPSHOT_VERSION == 5


@pytest.mark.parametrize("key", (*VERSION_2_KEYS, *VERSION_3_KEYS, "class_name", *VERSION_5_KEYS))
def test_a_snapshot_without_a_key_of_its_version_is_damaged(key: str) -> None:
    data = state_to_data(classroom().state)
    del data[key]
    with pytest.raises(SnapshotError):
        state_from_data(data)


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
        lambda d: d.update(media_muted=[["s1"]]),
        lambda d: d.update(breakout_of=["s1", "red"]),
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
