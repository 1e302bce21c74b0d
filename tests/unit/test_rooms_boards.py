"""Whiteboard moderation in the room log: lock, clear and snapshot requests."""

import pytest

from rooms import (
    Audience,
    BadField,
    BoardClear,
    BoardClearedEvent,
    BoardLock,
    BoardLockedEvent,
    BoardSnapshot,
    BoardSnapshotSavedEvent,
    audience_of,
    is_board_name,
    room_view,
)
from tests.unit.test_rooms_fold import STUDENT, TEACHER, classroom


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
