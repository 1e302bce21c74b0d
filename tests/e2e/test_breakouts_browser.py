"""A whole breakout cycle driven from the staff panel in real Chromium, with two student pages.

The teacher creates two named rooms, drags Ada into one and puts Ben into the other with the
keyboard's room menu, opens them with a timer and extends it; each student's page says where they
are, counts down on the server's clock, and switches chat, Q&A and whiteboard to their room by
itself (a ``view`` frame). What Ada draws lands on her room's board (``br1-1``), not on ``main``
nor on Ben's. The teacher moves Ada to Ben's room by drag-and-drop (her board and chat follow),
broadcasts to every room, answers Ben's help request, shortens the timer into its warning, and
closes: both land in the main room, and the rooms' boards stay viewable (read-only) from the
gallery. The groups saved while the rooms ran come back as the next plan. Screenshots are kept
in ``artifacts/e2e/`` (docs/protocol.md, "Breakout rooms").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Locator, expect

from tests.e2e.conftest import Tab
from tests.e2e.test_whiteboard_browser import (
    WAIT_MS,
    choose,
    drag,
    expect_board_live,
    expect_no_errors,
    expect_record_count,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

RED, BLUE = "Red team", "Blue team"


def chip(tab: Tab, identity: str) -> Locator:
    return tab.page.locator(f'[data-testid=breakout-chip][data-identity="{identity}"]')


def column(tab: Tab, room: str) -> Locator:
    return tab.page.locator(f'[data-testid=breakout-column][data-room="{room}"]')


def chat_lines(tab: Tab, text: str) -> Locator:
    return tab.by("chat-message").filter(has_text=text)


def on_board(tab: Tab, board: str) -> None:
    expect(tab.by("wb-stage")).to_have_attribute("data-board", board, timeout=WAIT_MS)
    expect_board_live(tab)


#: The page's estimate of the server's clock is off by at most a frame's transit (and rounds up).
CLOCK_SLACK_S = 2


def expect_remaining(tab: Tab, low: int, high: int) -> None:
    """The page's countdown shows between ``low`` and ``high`` (+ clock slack) seconds left."""
    tab.page.wait_for_function(
        """([low, high]) => {
          const n = Number(document.querySelector('[data-testid=breakout-countdown]')
            ?.dataset.remainingS);
          return n >= low && n <= high;
        }""",
        arg=[low, high + CLOCK_SLACK_S],
        timeout=WAIT_MS,
    )
    expect(tab.by("breakout-countdown")).to_have_text(re.compile(r"^\d+:\d\d left$"))


def test_staff_panel_runs_a_whole_breakout_cycle_with_two_students(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("ada", "s-ada", name="Ada")
    ben = open_tab("ben", "s-ben", name="Ben")
    everyone = (teacher, ada, ben)
    for tab in everyone:
        expect_board_live(tab)
    expect(ada.by("breakout-panel")).to_be_hidden()
    teacher.show_panel("breakouts")  # staff plan and run the rooms in their own tab

    # -- create two named rooms; Ada by drag-and-drop, Ben with the keyboard's room menu ----------
    teacher.by("breakout-names").fill(f"{RED}, {BLUE}")
    teacher.by("breakout-create").click()
    expect(column(teacher, RED)).to_be_visible(timeout=WAIT_MS)
    expect(chip(teacher, "s-ben")).to_be_visible(timeout=WAIT_MS)
    chip(teacher, "s-ada").get_by_test_id("breakout-chip-name").drag_to(column(teacher, RED))
    expect(column(teacher, RED).locator('[data-identity="s-ada"]')).to_have_count(1)
    chip(teacher, "s-ben").get_by_test_id("breakout-chip-room").select_option(BLUE)
    expect(column(teacher, BLUE).locator('[data-identity="s-ben"]')).to_have_count(1)
    teacher.by("breakout-duration").fill("2")
    teacher.screenshot(e2e_artifacts, "breakouts-1-staff-plan")
    teacher.by("breakout-open").click()

    # -- each student is told where they are, and counts down from the server's clock -------------
    expect(ada.by("my-room")).to_have_text(f"Breakout room: {RED}", timeout=WAIT_MS)
    expect(ben.by("my-room")).to_have_text(f"Breakout room: {BLUE}", timeout=WAIT_MS)
    for tab in everyone:
        expect_remaining(tab, 100, 120)
        expect(tab.by("header-countdown")).to_have_text(re.compile(r"^[12]:\d\d left$"))
    expect(ada.by("breakout-my-room")).to_have_text(f"You are in breakout room {RED}")

    # -- save this set of groups for a later lesson ------------------------------------------------
    teacher.by("breakout-groups-name").fill("Project teams")
    teacher.by("breakout-groups-save").click()
    saved = teacher.page.locator('[data-testid=breakout-groups-item][data-name="Project teams"]')
    expect(saved).to_have_count(1, timeout=WAIT_MS)

    # -- extend by a minute while the rooms run ----------------------------------------------------
    teacher.by("breakout-timer-minutes").fill("1")
    teacher.by("breakout-extend").click()
    for tab in everyone:
        expect_remaining(tab, 160, 180)

    # -- the whiteboard followed each student into their room: Ada draws on br1-1 only -----------
    on_board(ada, "br1-1")
    on_board(ben, "br1-2")
    choose(ada, "rect")
    drag(ada, [(200, 200), (400, 350)])
    expect_record_count(ada, 1)
    expect_record_count(ben, 0)
    expect_record_count(teacher, 0)  # the teacher is on main
    teacher.by("wb-board").select_option("br1-1")
    on_board(teacher, "br1-1")
    expect_record_count(teacher, 1)

    # -- chat stays in its room; staff see it labelled and filter by room -------------------------
    ada.by("chat-input").fill("hello red")
    ada.by("chat-send").click()
    expect(chat_lines(teacher, "hello red")).to_have_count(1, timeout=WAIT_MS)
    expect(chat_lines(teacher, "hello red").get_by_test_id("chat-room")).to_have_text(RED)
    expect(chat_lines(ada, "hello red")).to_have_count(1)
    ben.by("chat-input").fill("hello blue")
    ben.by("chat-send").click()
    expect(chat_lines(teacher, "hello blue")).to_have_count(1, timeout=WAIT_MS)
    expect(chat_lines(ben, "hello red")).to_have_count(0)
    expect(chat_lines(ada, "hello blue")).to_have_count(0)
    teacher.show_panel("chat")
    teacher.by("chat-room-filter").select_option(BLUE)
    expect(chat_lines(teacher, "hello red")).to_have_count(0)
    expect(chat_lines(teacher, "hello blue")).to_have_count(1)
    teacher.by("chat-room-filter").select_option("*")

    # Staff post into a chosen room; Q&A stays in its room too.
    teacher.by("chat-room-target").select_option(RED)
    teacher.by("chat-input").fill("tip for red")
    teacher.by("chat-send").click()
    expect(chat_lines(ada, "tip for red")).to_have_count(1, timeout=WAIT_MS)
    expect(chat_lines(teacher, "tip for red")).to_have_attribute("data-room", RED)
    teacher.by("chat-room-target").select_option("")
    ben.show_panel("qa")
    teacher.show_panel("qa")
    ben.by("qa-input").fill("blue question")
    ben.by("qa-ask").click()
    blue_question = teacher.by("qa-item").filter(has_text="blue question")
    expect(blue_question).to_have_attribute("data-room", BLUE, timeout=WAIT_MS)
    expect(blue_question.get_by_test_id("qa-room")).to_have_text(BLUE)
    expect(ben.by("qa-item").filter(has_text="blue question")).to_have_count(1)
    expect(chat_lines(ben, "tip for red")).to_have_count(0)
    expect(ada.by("qa-item")).to_have_count(0)
    ada.screenshot(e2e_artifacts, "breakouts-2-student-in-red")
    # On a phone: the room, the countdown and the help button fit the width (no sideways scroll).
    ada.page.set_viewport_size({"width": 390, "height": 844})
    ada.page.evaluate("window.scrollTo(0, 0)")
    expect(ada.by("breakout-help")).to_be_in_viewport(timeout=WAIT_MS)
    assert ada.page.evaluate("document.documentElement.scrollWidth") <= 390
    ada.screenshot(e2e_artifacts, "breakouts-2-student-phone")

    # -- move Ada to Blue by drag-and-drop: her board and chat follow, on the same page -----------
    teacher.show_panel("breakouts")
    chip(teacher, "s-ada").get_by_test_id("breakout-chip-name").drag_to(column(teacher, BLUE))
    expect(ada.by("my-room")).to_have_text(f"Breakout room: {BLUE}", timeout=WAIT_MS)
    on_board(ada, "br1-2")
    expect_record_count(ada, 0)
    expect(chat_lines(ada, "hello blue")).to_have_count(1, timeout=WAIT_MS)
    expect(chat_lines(ada, "hello red")).to_have_count(0)
    expect(column(teacher, BLUE).locator('[data-identity="s-ada"]')).to_have_count(1)

    # -- broadcast to every room, and a help request answered ------------------------------------
    teacher.by("breakout-broadcast-input").fill("Two minutes to go")
    teacher.by("breakout-broadcast-send").click()
    for tab in everyone:
        expect(chat_lines(tab, "Two minutes to go")).to_have_count(1, timeout=WAIT_MS)
        expect(chat_lines(tab, "Two minutes to go")).to_have_attribute("data-broadcast", "true")
    ben.by("breakout-help").click()
    help_item = teacher.page.locator('[data-testid=breakout-help-item][data-identity="s-ben"]')
    expect(help_item).to_have_attribute("data-room", BLUE, timeout=WAIT_MS)
    expect(ben.by("breakout-help-cancel")).to_be_visible(timeout=WAIT_MS)
    teacher.screenshot(e2e_artifacts, "breakouts-3-staff-running")
    help_item.get_by_test_id("breakout-help-done").click()
    expect(help_item).to_have_count(0, timeout=WAIT_MS)
    expect(ben.by("breakout-help")).to_be_visible(timeout=WAIT_MS)

    # -- the teacher visits Blue (shown in its roster, on its board) and leaves --------------------
    teacher.page.locator(f'[data-testid=breakout-visit][data-room="{BLUE}"]').click()
    expect(teacher.by("my-room")).to_have_text(f"Breakout room: {BLUE}", timeout=WAIT_MS)
    on_board(teacher, "br1-2")
    teacher_row = ben.page.locator('[data-testid=roster-item][data-identity="t-rivera"]')
    expect(teacher_row).to_have_attribute("data-room", BLUE, timeout=WAIT_MS)
    teacher.page.locator(f'[data-testid=breakout-leave][data-room="{BLUE}"]').click()
    expect(teacher.by("my-room")).to_have_text("Main room", timeout=WAIT_MS)
    expect(teacher_row).to_have_attribute("data-room", "", timeout=WAIT_MS)
    on_board(teacher, "main")

    # -- shorten into the warning (60 s before the end, announced in a live region) ---------------
    teacher.by("breakout-timer-minutes").fill("2")
    teacher.by("breakout-shorten").click()
    for tab in (ada, ben):
        expect(tab.by("breakout-warning")).to_have_text(
            re.compile(r"close in (0:\d\d|1:00)$"), timeout=WAIT_MS
        )
        expect(tab.by("breakout-countdown")).to_have_attribute("data-warning", "true")
    ben.screenshot(e2e_artifacts, "breakouts-4-student-warning")

    # -- close: everyone in the main room, boards kept in the gallery ------------------------------
    teacher.by("breakout-close").click()
    for tab in (ada, ben):
        expect(tab.by("my-room")).to_be_hidden(timeout=WAIT_MS)
        expect(tab.by("header-countdown")).to_be_hidden()
        on_board(tab, "main")
        expect_record_count(tab, 0)
        expect(chat_lines(tab, "hello blue")).to_have_count(0, timeout=WAIT_MS)
        expect(chat_lines(tab, "Two minutes to go")).to_have_count(1)
    gallery = teacher.by("breakout-gallery-item")
    expect(gallery).to_have_count(2, timeout=WAIT_MS)
    teacher.page.locator('[data-testid=breakout-gallery-item][data-board="br1-1"]').get_by_test_id(
        "breakout-gallery-view"
    ).click()
    on_board(teacher, "br1-1")
    expect_record_count(teacher, 1)
    expect(teacher.by("wb-stage")).to_have_attribute("data-readonly", "true")
    expect(chat_lines(teacher, "hello red")).to_have_count(1)  # staff keep the rooms' chat

    # Shared with students, the gallery shows Ada's rectangle to Ben, read-only.
    expect(ben.by("breakout-gallery")).to_be_hidden()
    teacher.by("breakout-share-boards").click()
    ben.page.locator('[data-testid=breakout-gallery-item][data-board="br1-1"]').get_by_test_id(
        "breakout-gallery-view"
    ).click(timeout=WAIT_MS)
    on_board(ben, "br1-1")
    expect_record_count(ben, 1)
    expect(ben.by("wb-stage")).to_have_attribute("data-readonly", "true")
    ben.screenshot(e2e_artifacts, "breakouts-5-student-gallery")

    # -- the saved groups come back as the next plan: Ada in Red, Ben in Blue ----------------------
    saved.get_by_test_id("breakout-groups-load").click()
    expect(column(teacher, RED).locator('[data-identity="s-ada"]')).to_have_count(
        1, timeout=WAIT_MS
    )
    expect(column(teacher, BLUE).locator('[data-identity="s-ben"]')).to_have_count(1)
    teacher.screenshot(e2e_artifacts, "breakouts-6-staff-closed")
    expect_no_errors(*everyone)


def choice(tab: Tab, room: str) -> Locator:
    return tab.page.locator(f'[data-testid=breakout-choose-room][data-room="{room}"]')


def test_automatic_assignment_keeps_a_pair_apart_and_students_pick_under_a_cap(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("ada", "s-ada", name="Ada")
    ben = open_tab("ben", "s-ben", name="Ben")
    everyone = (teacher, ada, ben)
    for tab in everyone:
        expect_board_live(tab)
    teacher.show_panel("breakouts")

    # Automatic, balanced, Ada and Ben kept apart: one in each room; no timer, no countdown.
    teacher.by("breakout-names").fill(f"{RED}, {BLUE}")
    teacher.by("breakout-create").click()
    expect(chip(teacher, "s-ben")).to_be_visible(timeout=WAIT_MS)
    teacher.by("breakout-pair-a").select_option("s-ada")
    teacher.by("breakout-pair-b").select_option("s-ben")
    teacher.by("breakout-keep-apart").click()
    expect(teacher.by("breakout-constraint")).to_have_attribute("data-kind", "apart")
    teacher.by("breakout-auto").check()
    teacher.by("breakout-open").click()
    rooms = set()
    for tab in (ada, ben):
        expect(tab.by("my-room")).to_have_text(re.compile(r"^Breakout room: "), timeout=WAIT_MS)
        rooms.add(tab.by("my-room").get_attribute("data-room"))
        expect(tab.by("breakout-countdown")).to_be_hidden()
    assert rooms == {RED, BLUE}, f"kept apart, one per room: {rooms}"
    # A mass move is one command: both ticked, both back in the main room.
    for identity in ("s-ada", "s-ben"):
        chip(teacher, identity).get_by_test_id("breakout-chip-pick").check()
    teacher.by("breakout-mass-room").select_option("")
    teacher.by("breakout-mass-move").click()
    for tab in (ada, ben):
        expect(tab.by("my-room")).to_have_text("Main room", timeout=WAIT_MS)
    teacher.by("breakout-close").click()
    for tab in (ada, ben):
        expect(tab.by("my-room")).to_be_hidden(timeout=WAIT_MS)

    # Students choose, at most one per room: Ada takes Red; Red is full for Ben.
    teacher.by("breakout-names").fill(f"{RED}, {BLUE}")
    teacher.by("breakout-self-select").check()
    teacher.by("breakout-cap").fill("1")
    teacher.by("breakout-open").click()
    expect(choice(ada, RED)).to_have_text(f"{RED} (0/1)", timeout=WAIT_MS)
    choice(ada, RED).click()
    expect(ada.by("my-room")).to_have_text(f"Breakout room: {RED}", timeout=WAIT_MS)
    expect(choice(ada, RED)).to_have_attribute("aria-pressed", "true")
    expect(choice(ben, RED)).to_have_text(f"{RED} (1/1)", timeout=WAIT_MS)
    expect(choice(ben, RED)).to_be_disabled()
    ben.screenshot(e2e_artifacts, "breakouts-7-student-chooses")
    choice(ben, BLUE).click()
    expect(ben.by("my-room")).to_have_text(f"Breakout room: {BLUE}", timeout=WAIT_MS)
    on_board(ben, "br2-2")
    expect_no_errors(*everyone)
