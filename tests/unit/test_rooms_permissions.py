"""Who may do what: every role against every restricted command (docs/protocol.md "who")."""

import pytest

from rooms import (
    BoardClear,
    BoardLock,
    BoardSnapshot,
    BreakoutClose,
    BreakoutMove,
    BreakoutOpen,
    ChatMute,
    Command,
    HandCallNext,
    HandLower,
    HandLowerAll,
    HandRaise,
    MediaMode,
    MediaMute,
    MediaPermit,
    MediaSpotlight,
    NotAllowed,
    Participant,
    ParticipantRemove,
    PollAnswer,
    PollClose,
    PollOpen,
    QuestionAnswer,
    QuestionAsk,
    QuestionDismiss,
    QuestionPin,
    RoomLock,
    SessionEnd,
    StageSet,
)
from tests.unit.test_rooms_fold import ASSISTANT, OTHER, STUDENT, TEACHER, Classroom, classroom

STAFF_COMMANDS: list[Command] = [
    HandCallNext(),
    HandLowerAll(),
    HandLower("s2"),
    QuestionAnswer(1),
    QuestionDismiss(1),
    QuestionPin(1, True),
    PollOpen("q", ("a", "b"), False),
    PollClose(1),
    ChatMute(True, "s2"),
    ChatMute(True),
    ParticipantRemove("s2"),
    RoomLock(True),
    BoardLock("main", True),
    BoardClear("main"),
    BoardSnapshot("main"),
    MediaMode("lecture"),
    MediaMute("camera", True, "s2"),
    MediaMute("microphone", True),
    MediaPermit("s2", True),
    MediaSpotlight("s2"),
    StageSet("video"),
    BreakoutMove("s2", "red"),
    BreakoutClose(),
]
STUDENT_COMMANDS: list[Command] = [HandRaise(), PollAnswer(1, (0,))]
TEACHER_COMMANDS: list[Command] = [SessionEnd()]


def busy_room() -> Classroom:
    """A room where every restricted command has something to act on."""
    room = classroom()
    room.do(OTHER, HandRaise())
    room.do(OTHER, QuestionAsk("why?"))
    room.do(TEACHER, PollOpen("pick", ("a", "b"), False))
    room.do(TEACHER, BreakoutOpen(("red", "blue")))
    return room


def ids(command: Command) -> str:
    return command.type


@pytest.mark.parametrize("command", STAFF_COMMANDS, ids=ids)
def test_student_may_not_send_staff_commands(command: Command) -> None:
    with pytest.raises(NotAllowed):
        busy_room().do(STUDENT, command)


@pytest.mark.parametrize("command", STAFF_COMMANDS, ids=ids)
@pytest.mark.parametrize("staff", [TEACHER, ASSISTANT], ids=lambda p: p.role.value)
def test_staff_may_send_staff_commands(staff: Participant, command: Command) -> None:
    assert len(busy_room().do(staff, command)) == 1


@pytest.mark.parametrize("command", STUDENT_COMMANDS, ids=ids)
@pytest.mark.parametrize("staff", [TEACHER, ASSISTANT], ids=lambda p: p.role.value)
def test_staff_may_not_send_student_commands(staff: Participant, command: Command) -> None:
    with pytest.raises(NotAllowed):
        busy_room().do(staff, command)


@pytest.mark.parametrize("command", STUDENT_COMMANDS, ids=ids)
def test_student_may_send_student_commands(command: Command) -> None:
    assert len(busy_room().do(STUDENT, command)) == 1


@pytest.mark.parametrize("command", TEACHER_COMMANDS, ids=ids)
@pytest.mark.parametrize("actor", [ASSISTANT, STUDENT], ids=lambda p: p.role.value)
def test_only_the_teacher_may_send_teacher_commands(actor: Participant, command: Command) -> None:
    with pytest.raises(NotAllowed):
        busy_room().do(actor, command)
    assert len(busy_room().do(TEACHER, command)) == 1


@pytest.mark.parametrize("staff", [TEACHER, ASSISTANT], ids=lambda p: p.role.value)
def test_staff_open_breakout_rooms_and_students_may_not(staff: Participant) -> None:
    with pytest.raises(NotAllowed):
        classroom().do(STUDENT, BreakoutOpen(("red",)))
    assert len(classroom().do(staff, BreakoutOpen(("red",)))) == 1


def test_student_may_not_open_a_poll_even_when_it_is_malformed() -> None:
    with pytest.raises(NotAllowed):
        busy_room().do(STUDENT, PollOpen("", (), False))
