"""Whiteboard moderation in the room log: lock, clear and snapshot requests."""

import pytest

from rooms import (
    Audience,
    BadField,
    BoardAccess,
    BoardClear,
    BoardClearedEvent,
    BoardLock,
    BoardLockedEvent,
    BoardSnapshot,
    BoardSnapshotSavedEvent,
    BreakoutClose,
    BreakoutMove,
    BreakoutOpen,
    BreakoutShareBoards,
    audience_of,
    board_access,
    is_board_name,
    is_room_board,
    room_view,
    write_refusal,
)
from rooms.boards import REFUSED_CLOSED, REFUSED_LOCKED, REFUSED_NOT_YOUR_ROOM
from tests.unit.test_rooms_fold import ASSISTANT, STUDENT, TEACHER, classroom


@pytest.mark.parametrize("name", ["main", "breakout-1", "B_2", "a" * 64])
def test_board_names_that_are_accepted(name: str) -> None:
    assert is_board_name(name)


@pytest.mark.parametrize("name", ["", "a" * 65, "main/x", "tab\t", "é", "a b", "../x"])
def test_board_names_that_are_refused(name: str) -> None:
    assert not is_board_name(name)
    with pytest.raises(BadField) as caught:
        classroom().do(TEACHER, BoardLock(name, True))
    assert caught.value.field == "board"


def test_lock_and_unlock_fold_into_locked_boards_and_the_view() -> None:
    room = classroom()
    assert room.do(TEACHER, BoardLock("main", True)) == [BoardLockedEvent("main", True, "t1")]
    room.do(TEACHER, BoardLock("b1", True))
    assert room.state.locked_boards == {"main", "b1"}
    assert room_view(room.state, STUDENT)["locked_boards"] == ["b1", "main"]
    room.do(TEACHER, BoardLock("main", False))
    assert room.state.locked_boards == {"b1"}


def test_locking_a_locked_board_changes_nothing() -> None:
    room = classroom()
    room.do(TEACHER, BoardLock("main", True))
    assert room.do(TEACHER, BoardLock("main", True)) == []
    assert classroom().do(TEACHER, BoardLock("main", False)) == []


def test_clear_and_snapshot_remember_the_newest_request_id_per_board() -> None:
    room = classroom()
    room.do(TEACHER, BoardClear("main"))
    first = room.log[-1].id
    room.do(TEACHER, BoardSnapshot("main"))
    room.do(TEACHER, BoardClear("main"))
    assert room.state.board_cleared == {"main": room.log[-1].id}
    assert room.state.board_cleared["main"] > first
    assert room.state.board_snapshots == {"main": room.log[-2].id}


def test_snapshots_are_announced_to_staff_and_the_rest_to_everyone() -> None:
    assert audience_of(BoardSnapshotSavedEvent("main", "t1")) == Audience.STAFF
    assert audience_of(BoardClearedEvent("main", "t1")) == Audience.ALL
    assert audience_of(BoardLockedEvent("main", True, "t1")) == Audience.ALL


def test_students_write_the_board_of_the_room_they_are_in_and_read_main() -> None:
    room = classroom(TEACHER, STUDENT)
    state = room.state
    assert board_access(state, STUDENT, "main") is BoardAccess.WRITE
    assert board_access(state, STUDENT, "br1-1") is BoardAccess.NONE
    assert board_access(state, STUDENT, "anything") is BoardAccess.NONE
    room.do(TEACHER, BreakoutOpen(("Red team", "blue")))
    room.do(TEACHER, BreakoutMove(STUDENT.identity, "Red team"))
    assert board_access(state, STUDENT, "br1-1") is BoardAccess.WRITE
    assert board_access(state, STUDENT, "main") is BoardAccess.READ
    assert board_access(state, STUDENT, "br1-2") is BoardAccess.NONE
    assert write_refusal(state, STUDENT, "main") == REFUSED_NOT_YOUR_ROOM
    assert write_refusal(state, STUDENT, "br1-1") is None
    room.do(TEACHER, BoardLock("br1-1", True))
    assert write_refusal(state, STUDENT, "br1-1") == REFUSED_LOCKED
    room.do(TEACHER, BreakoutClose())
    assert board_access(state, STUDENT, "br1-1") is BoardAccess.NONE
    assert board_access(state, STUDENT, "main") is BoardAccess.WRITE


def test_staff_write_every_board_and_only_main_and_breakouts_are_room_boards() -> None:
    room = classroom(TEACHER, ASSISTANT)
    room.do(TEACHER, BoardLock("main", True))
    for board in ("main", "notes", "br1-1"):
        assert board_access(room.state, ASSISTANT, board) is BoardAccess.WRITE
        assert write_refusal(room.state, ASSISTANT, board) is None
    assert is_room_board(room.state, "main") and not is_room_board(room.state, "br1-1")
    room.do(TEACHER, BreakoutOpen(("red",)))
    assert is_room_board(room.state, "br1-1") and not is_room_board(room.state, "notes")
    assert not is_room_board(room.state, "red")


def test_the_last_rounds_boards_are_a_read_only_gallery_students_see_when_shared() -> None:
    room = classroom(TEACHER, ASSISTANT, STUDENT)
    room.do(TEACHER, BreakoutOpen(("red", "blue")))
    room.do(TEACHER, BreakoutMove(STUDENT.identity, "red"))
    room.do(TEACHER, BreakoutClose())
    state = room.state
    assert state.gallery == ((1, "red", "br1-1"), (1, "blue", "br1-2"))
    assert is_room_board(state, "br1-1") and is_room_board(state, "br1-2")
    assert board_access(state, ASSISTANT, "br1-1") is BoardAccess.READ
    assert write_refusal(state, ASSISTANT, "br1-1") == REFUSED_CLOSED
    assert board_access(state, STUDENT, "br1-1") is BoardAccess.NONE
    assert room_view(state, STUDENT)["breakouts"]["gallery"] == []
    room.do(TEACHER, BreakoutShareBoards(True))
    assert board_access(state, STUDENT, "br1-2") is BoardAccess.READ
    assert write_refusal(state, STUDENT, "br1-1") == REFUSED_CLOSED
    assert room_view(state, STUDENT)["breakouts"]["gallery"] == [
        {"round": 1, "room": "red", "board": "br1-1"},
        {"round": 1, "room": "blue", "board": "br1-2"},
    ]
    # The next round has new boards; the gallery keeps the last closed round's until it closes.
    room.do(TEACHER, BreakoutOpen(("green",)))
    assert not state.gallery_shared and state.breakout_boards == ("br2-1",)
    assert board_access(state, STUDENT, "br1-1") is BoardAccess.NONE
    room.do(TEACHER, BreakoutClose())
    assert state.gallery == ((2, "green", "br2-1"),)
    assert not is_room_board(state, "br1-1")
