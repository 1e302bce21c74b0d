"""The classroom page's layout: a stage beside side panels as tabs, on a laptop and on a phone.

At 1280x800 and at 390x844 the page itself never scrolls: People, Chat and Questions are each one
tab away and their controls are on screen, and so are the stage's controls and the board. On a
phone the stage is on top and the panels below. Screenshots of the teacher's and the student's
views at both sizes are kept in ``artifacts/e2e/``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Locator, expect

from tests.e2e.conftest import Tab, wait_live

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

WAIT_MS = 10_000
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# What each panel's tab must bring on screen: its heading region and the control used most.
PANELS = {"people": "roster-panel", "chat": "chat-input", "qa": "qa-input"}


def on_screen(tab: Tab, locator: Locator) -> None:
    """The element is drawn wholly inside the viewport, with the page not scrolled."""
    box = locator.bounding_box()
    size = tab.page.viewport_size
    assert box is not None and size is not None, f"{tab.label}: {locator} is not drawn"
    assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"] + 1, (
        tab.label,
        locator,
        box,
        size,
    )
    assert box["x"] >= 0 and box["x"] + box["width"] <= size["width"] + 1, (
        tab.label,
        locator,
        box,
        size,
    )


def page_does_not_scroll(tab: Tab) -> None:
    sizes = tab.page.evaluate(
        "({h: document.documentElement.scrollHeight, w: document.documentElement.scrollWidth,"
        " vh: innerHeight, vw: innerWidth})"
    )
    assert sizes["h"] <= sizes["vh"] and sizes["w"] <= sizes["vw"], (tab.label, sizes)


# Every control of the board's toolbar, brought into view the way a user would (the toolbar's own
# sideways scroll, if it has one), must then be drawn whole: inside the viewport and not cut by
# any box that clips it. Returns the ones that are not, with where they are.
UNREACHABLE_TOOLS = """() => {
  const bar = document.querySelector('.stage .wb-toolbar') || document.querySelector('.wb-toolbar');
  const out = [];
  for (const control of bar.querySelectorAll('button, select, input')) {
    if (control.getClientRects().length === 0) continue;  // hidden (e.g. staff-only)
    // Only the toolbar's own sideways scroll, and only if it is a scroller (scrollIntoView would
    // also move boxes that clip without a scrollbar, which a user cannot do).
    const scrolls = ['auto', 'scroll'].includes(getComputedStyle(bar).overflowX);
    if (scrolls) {
      const b = bar.getBoundingClientRect();
      const before = control.getBoundingClientRect();
      if (before.right > b.right) bar.scrollLeft += before.right - b.right;
      if (before.left < b.left) bar.scrollLeft -= b.left - before.left;
    }
    const r = control.getBoundingClientRect();
    let ok = r.left >= 0 && r.right <= innerWidth + 0.5
      && r.top >= 0 && r.bottom <= innerHeight + 0.5;
    for (let box = control.parentElement; ok && box; box = box.parentElement) {
      const style = getComputedStyle(box);
      if (style.overflowX === 'visible' && style.overflowY === 'visible') continue;
      const c = box.getBoundingClientRect();
      ok = r.left >= c.left - 0.5 && r.right <= c.right + 0.5 && r.top >= c.top - 0.5
        && r.bottom <= c.bottom + 0.5;
    }
    const name = control.textContent || control.title || control.ariaLabel;
    if (!ok) out.push(`${name} at ${r.left}..${r.right}`);
  }
  bar.scrollLeft = 0;
  return out;
}"""


def board_tools_reachable(tab: Tab) -> None:
    assert tab.page.evaluate("scrollX") == 0
    assert tab.page.evaluate(UNREACHABLE_TOOLS) == [], tab.label
    assert tab.page.evaluate("[scrollX, scrollY]") == [0, 0], "the page itself scrolled"


def check_panels_reachable(tab: Tab) -> None:
    page_does_not_scroll(tab)
    for key, testid in PANELS.items():
        on_screen(tab, tab.by(f"tab-{key}"))
        tab.show_panel(key)
        expect(tab.by(f"tab-{key}")).to_have_attribute("aria-selected", "true")
        expect(tab.by(testid)).to_be_visible()
        on_screen(tab, tab.by(testid))
        page_does_not_scroll(tab)


def test_people_chat_and_questions_reachable_without_scrolling_on_laptop_and_phone(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("student", "s-ada", name="Ada")
    wait_live(teacher, ada)
    ada.show_panel("chat")
    ada.by("chat-input").fill("Good morning")
    ada.by("chat-input").press("Enter")
    expect(teacher.by("chat-message")).to_have_count(1, timeout=WAIT_MS)

    for size_name, size in (("laptop", LAPTOP), ("phone", PHONE)):
        for tab, who in ((teacher, "teacher"), (ada, "student")):
            tab.page.set_viewport_size(size)
            check_panels_reachable(tab)
            # The stage's own controls and the board are on screen too.
            on_screen(tab, tab.by("stage-show-video"))
            on_screen(tab, tab.by("media-camera"))
            stage = tab.by("stage").bounding_box()
            side = tab.by("panel-tabs").bounding_box()
            assert stage and side
            board_tools_reachable(tab)
            if size is PHONE:
                assert stage["y"] + stage["height"] <= side["y"] + 1, (stage, side)  # stage on top
            else:
                on_screen(tab, tab.by("wb-stage"))
                assert stage["x"] + stage["width"] <= side["x"] + 1, (stage, side)  # side by side
            tab.show_panel("chat")
            tab.screenshot(e2e_artifacts, f"layout-{who}-{size_name}")
    # The tabs follow the ARIA tabs pattern: arrow keys move between them.
    ada.by("tab-people").click()
    ada.page.keyboard.press("ArrowRight")
    expect(ada.by("tab-chat")).to_have_attribute("aria-selected", "true")
    expect(ada.by("tab-chat")).to_be_focused()
    ada.page.keyboard.press("End")
    expect(ada.by("tab-polls")).to_have_attribute("aria-selected", "true")
    expect(ada.by("polls-panel")).to_be_visible()
    expect(ada.by("chat-panel")).to_be_hidden()
    for tab in (teacher, ada):
        assert tab.errors == [], f"{tab.label} page logged errors: {tab.errors}"
