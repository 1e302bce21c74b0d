"""A student's whiteboard follows the room they are in, in real Chromium: moved into a breakout
room, the page opens that room's board (``br<round>-<i>``) and draws there; back in the main room
it shows ``main`` again (docs/whiteboard.md, docs/decisions/0008-board-scope.md)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.conftest import Tab
from tests.e2e.test_whiteboard_browser import (
    WAIT_MS,
    choose,
    drag,
    expect_board_live,
    expect_no_errors,
    expect_record_count,
    open_class,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def command(tab: Tab, type_: str, fields: str) -> None:
    tab.page.evaluate(f"() => window.liveclass.connection.request('{type_}', {fields})")


def on_board(tab: Tab, board: str) -> None:
    tab.page.wait_for_function(
        f"() => window.liveclass.whiteboard.board === '{board}'", timeout=WAIT_MS
    )
    expect_board_live(tab)


def test_a_students_board_follows_their_breakout_room(open_tab: Callable[..., Tab]) -> None:
    teacher, student = open_class(open_tab)
    command(teacher, "breakout.open", "{rooms: ['red']}")
    command(teacher, "breakout.move", "{identity: 's-ada', room: 'red'}")
    on_board(student, "br1-1")
    choose(student, "rect")
    drag(student, [(200, 200), (400, 350)])
    expect_record_count(student, 1)
    expect_record_count(teacher, 0)  # the teacher is on main

    command(teacher, "breakout.move", "{identity: 's-ada', room: null}")
    on_board(student, "main")
    expect_record_count(student, 0)
    command(teacher, "breakout.move", "{identity: 's-ada', room: 'red'}")
    on_board(student, "br1-1")
    expect_record_count(student, 1)  # her rectangle, from the server
    expect_no_errors(teacher, student)
