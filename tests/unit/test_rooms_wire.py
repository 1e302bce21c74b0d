"""Roles, participants, error codes, and the wire shapes of commands and events."""

import dataclasses
import typing
from pathlib import Path

import pytest

import rooms
from rooms import (
    COMMANDS,
    ERROR_CODES,
    EVENTS,
    BadField,
    BoardClearedEvent,
    BoardLockedEvent,
    BoardSnapshotSavedEvent,
    BreakoutAssignedEvent,
    BreakoutBoardsSharedEvent,
    BreakoutClosedEvent,
    BreakoutExpire,
    BreakoutHelpAskedEvent,
    BreakoutHelpClearedEvent,
    BreakoutMovedEvent,
    BreakoutOpenedEvent,
    BreakoutTimerSetEvent,
    ChatMessageEvent,
    ChatMutedEvent,
    ChatSend,
    Command,
    Event,
    HandCalledEvent,
    HandLoweredEvent,
    HandRaisedEvent,
    HandsClearedEvent,
    InviteRevokedEvent,
    Leave,
    MalformedEvent,
    MediaModeChangedEvent,
    MediaMutedEvent,
    MediaPermittedEvent,
    MediaSpotlightedEvent,
    NotAllowed,
    Participant,
    ParticipantAdmittedEvent,
    ParticipantDeniedEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    ParticipantRemovedEvent,
    ParticipantWaitingEvent,
    ParticipantWaitingLeftEvent,
    PollAnsweredEvent,
    PollClosedEvent,
    PollOpenedEvent,
    QuestionAnsweredEvent,
    QuestionAskedEvent,
    QuestionDismissedEvent,
    QuestionPinnedEvent,
    QuestionUnvotedEvent,
    QuestionUpvotedEvent,
    Role,
    RoomError,
    RoomLockedEvent,
    RoomNamedEvent,
    SessionEndedEvent,
    StageChangedEvent,
    UnknownEvent,
    WaitingRoomSetEvent,
    event_from_data,
    is_staff,
)

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

ONE_OF_EACH_EVENT: list[Event] = [
    ParticipantJoinedEvent("s1", "Sam", Role.STUDENT),
    ChatMessageEvent("s1", "Sam", Role.STUDENT, "hi", None),
    ChatMessageEvent("t1", "Tess", Role.TEACHER, "psst", "s1"),
    HandRaisedEvent("s1", "Sam"),
    HandLoweredEvent("s1", "t1"),
    HandCalledEvent("s1", "Sam", "t1"),
    HandsClearedEvent("t1"),
    QuestionAskedEvent(1, "s1", "Sam", "why?"),
    QuestionUpvotedEvent(1, "s2"),
    QuestionUnvotedEvent(1, "s2"),
    QuestionAnsweredEvent(1, "t1"),
    QuestionDismissedEvent(1, "a1"),
    QuestionPinnedEvent(1, True, "a1"),
    PollOpenedEvent(1, "pick", ("a", "b"), False, "t1"),
    PollAnsweredEvent(1, "s1", (0, 1)),
    PollClosedEvent(1, (1, 1), 1, "t1"),
    ChatMutedEvent(None, True, "t1"),
    ChatMutedEvent("s1", False, "a1"),
    ParticipantRemovedEvent("s2", "spam", "t1"),
    RoomLockedEvent(True, "t1"),
    RoomNamedEvent("Algebra 2", "t1"),
    WaitingRoomSetEvent(True, "t1"),
    ParticipantWaitingEvent("s9", "Neo"),
    ParticipantWaitingLeftEvent("s9"),
    ParticipantAdmittedEvent("s9", "Neo", "t1"),
    ParticipantDeniedEvent("s9", "t1"),
    InviteRevokedEvent("link-1", "t1"),
    ParticipantLeftEvent("s1"),
    BoardLockedEvent("main", True, "t1"),
    BoardClearedEvent("main", "t1"),
    BoardSnapshotSavedEvent("main", "t1"),
    MediaModeChangedEvent("lecture", "t1"),
    MediaMutedEvent(None, "camera", True, "t1"),
    MediaMutedEvent("s1", "microphone", False, "a1"),
    MediaPermittedEvent("s1", True, "a1"),
    MediaSpotlightedEvent("s1", "t1"),
    MediaSpotlightedEvent(None, "t1"),
    StageChangedEvent("board", "t1"),
    BreakoutOpenedEvent(("red", "blue"), "t1"),
    BreakoutOpenedEvent(
        ("Red team", "blue"), "t1", 2, ("br2-1", "br2-2"), {"s1": "blue"}, 600, 30, True, 5
    ),
    BreakoutAssignedEvent({"s1": "red", "s2": None}, "t1"),
    BreakoutMovedEvent("s1", "red", "a1"),
    BreakoutMovedEvent("s1", None, "a1"),
    BreakoutTimerSetEvent(300, "t1"),
    BreakoutTimerSetEvent(None, "a1"),
    BreakoutHelpAskedEvent("s1", "red"),
    BreakoutHelpClearedEvent("s1", "a1"),
    BreakoutBoardsSharedEvent(True, "t1"),
    BreakoutClosedEvent("t1"),
    BreakoutClosedEvent(None, 2, "timer"),
    SessionEndedEvent("done", "t1"),
]


def test_teacher_and_assistant_are_staff_and_students_are_not() -> None:
    assert is_staff(Role.TEACHER) and is_staff(Role.ASSISTANT)
    assert not is_staff(Role.STUDENT)
    assert Participant("a", "A", Role.ASSISTANT).is_staff
    assert not Participant("s", "S", Role.STUDENT).is_staff


def test_participant_to_wire_is_the_protocol_participant_map() -> None:
    wire = Participant("s1", "Sam", Role.STUDENT, can_publish=False).to_wire()
    assert wire == {
        "identity": "s1",
        "name": "Sam",
        "role": "student",
        "can_publish": False,
        "can_subscribe": True,
    }
    assert type(wire["role"]) is str


def test_every_error_class_has_a_distinct_code_documented_in_the_protocol() -> None:
    classes = [c for c in vars(rooms).values() if isinstance(c, type) and issubclass(c, RoomError)]
    # MustWait is a RoomLocked where someone cannot wait (a whiteboard): it shares its code.
    codes = [c.code for c in classes if c not in (RoomError, rooms.MustWait)]
    assert len(codes) == len(set(codes)) == 21
    assert set(codes) == ERROR_CODES
    documented = PROTOCOL.read_text()
    for code in ERROR_CODES:
        assert f"| `{code}` |" in documented


def test_room_error_carries_message_and_field() -> None:
    error = BadField("text is empty", "text")
    assert (error.code, error.message, error.field, str(error)) == (
        "bad_field",
        "text is empty",
        "text",
        "text is empty",
    )
    assert NotAllowed("no").field is None


def test_command_registry_holds_every_command_class_by_wire_type() -> None:
    classes = {c for c in vars(rooms).values() if isinstance(c, type) and issubclass(c, Command)}
    classes.discard(Command)
    classes.discard(BreakoutExpire)  # internal: signaling proposes it, no client sends it
    classes -= {rooms.WaitingKnock, rooms.WaitingLeave}  # internal, as BreakoutExpire
    assert set(COMMANDS.values()) == classes
    assert all(COMMANDS[cls.type] is cls for cls in classes)
    assert len(COMMANDS) == 41
    assert BreakoutExpire.type not in COMMANDS


def test_every_documented_client_command_has_a_class() -> None:
    documented = PROTOCOL.read_text()
    for wire_type in COMMANDS:
        assert f"| `{wire_type}` |" in documented
    assert COMMANDS["leave"] is Leave


def test_command_fields_use_only_codec_types() -> None:
    allowed = {
        str,
        int,
        bool,
        str | None,
        int | None,
        bool | None,
        tuple[str, ...],
        tuple[int, ...],
        dict[str, str] | None,
        dict[str, str | None] | None,
        dict[str, tuple[tuple[str, ...], ...]] | None,
    }
    for cls in COMMANDS.values():
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            assert hints[field.name] in allowed, (cls.type, field.name)
            if type(None) in typing.get_args(hints[field.name]):
                assert field.default is None, (cls.type, field.name)


def test_commands_are_immutable() -> None:
    command = ChatSend("hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(command, "text", "bye")  # noqa: B010


def test_event_registry_holds_every_documented_event_type() -> None:
    documented = PROTOCOL.read_text()
    assert {type(e) for e in ONE_OF_EACH_EVENT} == set(EVENTS.values())
    assert len(EVENTS) == 43
    for wire_type in EVENTS:
        assert f"`{wire_type}`" in documented


@pytest.mark.parametrize("event", ONE_OF_EACH_EVENT, ids=lambda e: e.type)
def test_every_event_round_trips_through_its_data(event: Event) -> None:
    assert event_from_data(event.type, event.to_data()) == event


@pytest.mark.parametrize("event", ONE_OF_EACH_EVENT, ids=lambda e: e.type)
def test_event_data_is_msgpack_ready(event: Event) -> None:
    def plain(value: object) -> bool:
        if isinstance(value, list):
            return all(plain(v) for v in value)
        if isinstance(value, dict):
            return all(type(k) is str and plain(v) for k, v in value.items())
        return value is None or type(value) in (str, int, bool)

    data = event.to_data()
    assert all(type(k) is str for k in data)
    assert all(plain(v) for v in data.values())


def test_event_data_keys_are_the_protocol_fields() -> None:
    expected = {
        "participant.joined": ["identity", "name", "role"],
        "chat.message": ["from", "name", "role", "text", "thread", "room", "broadcast"],
        "hand.raised": ["identity", "name", "room"],
        "hand.lowered": ["identity", "by", "room"],
        "hand.called": ["identity", "name", "by", "room"],
        "hands.cleared": ["by"],
        "question.asked": ["question_id", "author", "name", "text", "room"],
        "question.upvoted": ["question_id", "identity", "room"],
        "question.unvoted": ["question_id", "identity", "room"],
        "question.answered": ["question_id", "by", "room"],
        "question.dismissed": ["question_id", "by", "room"],
        "question.pinned": ["question_id", "pinned", "by", "room"],
        "poll.opened": ["poll_id", "question", "options", "multiple", "by"],
        "poll.answered": ["poll_id", "identity", "choices"],
        "poll.closed": ["poll_id", "tally", "voters", "by"],
        "chat.muted": ["identity", "muted", "by"],
        "participant.removed": ["identity", "reason", "by"],
        "room.locked": ["locked", "by"],
        "room.named": ["class_name", "by"],
        "room.waiting_room_set": ["enabled", "by"],
        "participant.waiting": ["identity", "name"],
        "participant.waiting_left": ["identity"],
        "participant.admitted": ["identity", "name", "by"],
        "participant.denied": ["identity", "by"],
        "invite.revoked": ["invite_id", "by"],
        "participant.left": ["identity"],
        "board.locked": ["board", "locked", "by"],
        "board.cleared": ["board", "by"],
        "board.snapshot_saved": ["board", "by"],
        "media.mode_changed": ["mode", "by"],
        "media.muted": ["identity", "source", "muted", "by"],
        "media.permitted": ["identity", "allowed", "by"],
        "media.spotlighted": ["identity", "by"],
        "stage.changed": ["view", "by"],
        "breakout.opened": [
            *("rooms", "by", "round", "boards", "members"),
            *("duration_s", "warn_s", "self_select", "cap"),
        ],
        "breakout.assigned": ["members", "by"],
        "breakout.moved": ["identity", "room", "by"],
        "breakout.timer_set": ["remaining_s", "by"],
        "breakout.help_asked": ["identity", "room"],
        "breakout.help_cleared": ["identity", "by"],
        "breakout.boards_shared": ["shared", "by"],
        "breakout.closed": ["by", "round", "reason"],
        "session.ended": ["reason", "by"],
    }
    for event in ONE_OF_EACH_EVENT:
        assert list(event.to_data()) == expected[event.type]


def test_chat_message_sender_is_from_on_the_wire() -> None:
    data = ChatMessageEvent("s1", "Sam", Role.STUDENT, "hi", None).to_data()
    assert data["from"] == "s1" and "sender" not in data


def test_unknown_event_type_is_refused() -> None:
    with pytest.raises(UnknownEvent):
        event_from_data("hand.waved", {})
    assert issubclass(UnknownEvent, ValueError)


def test_event_from_data_ignores_unknown_keys() -> None:
    data = {"identity": "s1", "name": "Sam", "extra": 1}
    assert event_from_data("hand.raised", data) == HandRaisedEvent("s1", "Sam")


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("hand.raised", {"identity": "s1"}),
        ("hand.raised", {"identity": 1, "name": "Sam"}),
        ("question.upvoted", {"question_id": True, "identity": "s1"}),
        ("participant.joined", {"identity": "s1", "name": "Sam", "role": "janitor"}),
        ("poll.answered", {"poll_id": 1, "identity": "s1", "choices": "01"}),
        ("poll.answered", {"poll_id": 1, "identity": "s1", "choices": ["0"]}),
        ("chat.muted", {"identity": 5, "muted": True, "by": "t1"}),
        ("media.muted", {"source": "camera", "muted": True, "by": "t1"}),
        ("breakout.opened", {"rooms": "red", "by": "t1"}),
        ("breakout.moved", {"identity": "s1", "room": 3, "by": "t1"}),
    ],
)
def test_malformed_event_data_is_refused(type_: str, data: dict[str, object]) -> None:
    with pytest.raises(MalformedEvent):
        event_from_data(type_, data)


def test_old_log_entries_without_room_read_as_the_main_room() -> None:
    """Entries written before breakout rooms were rooms carry no ``room``/``round`` fields."""
    chat = event_from_data(
        "chat.message", {"from": "s1", "name": "S", "role": "student", "text": "hi", "thread": None}
    )
    assert isinstance(chat, ChatMessageEvent) and chat.room is None and not chat.broadcast
    opened = event_from_data("breakout.opened", {"rooms": ["red"], "by": "t1"})
    assert isinstance(opened, BreakoutOpenedEvent) and opened.round == 0 and opened.members == {}


def test_a_map_field_of_the_wrong_shape_is_malformed() -> None:
    with pytest.raises(MalformedEvent):
        event_from_data("breakout.assigned", {"members": ["s1"], "by": "t1"})
    with pytest.raises(MalformedEvent):
        event_from_data("breakout.assigned", {"members": {"s1": 3}, "by": "t1"})
