"""Remote cursors on the whiteboard, in real Chromium against a real ``liveclass serve``.

A cursor that moves is seen with its name; one that stands still fades to a faint dot without its
name, so it covers no drawing; near the board's right or bottom edge the name goes to the other
side of the dot, so the edge never cuts it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, expect

from tests.e2e.conftest import Tab
from tests.e2e.test_whiteboard_browser import WAIT_MS, open_class, to_page

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

#: clients/web/views/whiteboard.js CURSOR_IDLE_MS, plus the fade and the idle check's period.
FADED_MS = 3000 + 600 + 500 + 1000


def inside(inner: Locator, outer: Locator) -> bool:
    a, b = inner.bounding_box(), outer.bounding_box()
    assert a is not None and b is not None
    return (
        a["x"] >= b["x"] - 0.5
        and a["y"] >= b["y"] - 0.5
        and a["x"] + a["width"] <= b["x"] + b["width"] + 0.5
        and a["y"] + a["height"] <= b["y"] + b["height"] + 0.5
    )


def test_an_idle_cursor_fades_and_a_name_at_the_edge_is_never_cut(
    open_tab: Callable[..., Tab],
) -> None:
    teacher, student = open_class(open_tab)
    student.page.mouse.move(*to_page(student, 400, 300), steps=3)
    cursor = teacher.page.locator('[data-testid=wb-cursor][data-identity="s-ada"]')
    name = cursor.get_by_test_id("wb-cursor-name")
    expect(cursor).to_have_count(1, timeout=WAIT_MS)
    expect(cursor).to_have_attribute("data-idle", "false")
    expect(name).to_be_visible()
    expect(cursor).to_have_css("opacity", "1")

    # Standing still: faint, and its name no longer covers the board.
    expect(cursor).to_have_attribute("data-idle", "true", timeout=FADED_MS)
    expect(name).to_be_hidden()
    expect(cursor).to_have_css("opacity", "0.35", timeout=WAIT_MS)

    # Moving again: seen again.
    student.page.mouse.move(*to_page(student, 500, 350), steps=3)
    expect(cursor).to_have_attribute("data-idle", "false", timeout=WAIT_MS)
    expect(name).to_be_visible()

    # At the right edge, and in the bottom-right corner, the whole name stays on the board.
    stage = teacher.by("wb-stage")
    for x, y in ((1590, 400), (1590, 890)):
        student.page.mouse.move(*to_page(student, x, y), steps=3)
        expect(cursor).to_have_attribute("data-flip-x", "true", timeout=WAIT_MS)
        expect(cursor).to_have_attribute("data-idle", "false")
        expect(name).to_be_visible()
        assert inside(name, stage), (name.bounding_box(), stage.bounding_box())
    assert teacher.errors == [] and student.errors == []
