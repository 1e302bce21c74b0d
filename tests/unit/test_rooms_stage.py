"""The stage: staff put the video grid or the whiteboard on every page's stage, for the room
(docs/protocol.md, "The stage")."""

import pytest

from rooms import (
    STAGE_VIEWS,
    BadField,
    BreakoutMove,
    BreakoutOpen,
    NotAllowed,
    StageChangedEvent,
    StageSet,
    room_view,
)
from tests.unit.test_rooms_fold import ASSISTANT, STUDENT, TEACHER, classroom


def test_the_whiteboard_is_on_the_stage_until_staff_choose() -> None:
    room = classroom()
    assert room.state.stage == "board"
    assert room_view(room.state, STUDENT)["stage"] == "board"
    assert STAGE_VIEWS == ("video", "board")


def test_staff_put_the_video_on_the_stage_and_the_whiteboard_back() -> None:
    room = classroom()
    assert room.do(ASSISTANT, StageSet("video")) == [StageChangedEvent("video", "a1")]
    assert room.state.stage == "video"
    assert room.do(TEACHER, StageSet("board")) == [StageChangedEvent("board", "t1")]
    assert room.state.stage == "board"


def test_choosing_what_is_on_the_stage_already_changes_nothing() -> None:
    room = classroom()
    assert room.do(TEACHER, StageSet("board")) == []
    room.do(TEACHER, StageSet("video"))
    assert room.do(ASSISTANT, StageSet("video")) == []


def test_a_student_may_not_choose_the_stage() -> None:
    room = classroom()
    with pytest.raises(NotAllowed):
        room.do(STUDENT, StageSet("video"))
    assert room.state.stage == "board"


@pytest.mark.parametrize("view", ["", "Board", "screen", "whiteboard"])
def test_a_view_that_is_not_video_or_board_is_a_bad_field(view: str) -> None:
    room = classroom()
    with pytest.raises(BadField) as refused:
        room.do(TEACHER, StageSet(view))
    assert refused.value.field == "view"


def test_every_viewer_sees_the_stage_in_the_room_view_breakout_rooms_included() -> None:
    room = classroom()
    room.do(TEACHER, BreakoutOpen(("red", "blue")))
    room.do(TEACHER, BreakoutMove("s1", "red"))
    room.do(TEACHER, StageSet("video"))
    for viewer in (TEACHER, ASSISTANT, STUDENT):
        assert room_view(room.state, viewer)["stage"] == "video"
