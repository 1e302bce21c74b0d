"""The classroom page in real Chromium against a real ``liveclass serve``.

A teacher and two students, each in their own browser context, run the Q&A and a poll through the
page's controls, and every page must show the outcome. A second test cuts a student's connection
and checks the page reconnects, resumes and shows what it missed. Screenshots of every page are
kept in ``artifacts/e2e/``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.e2e.conftest import Tab

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

# Every wait is bounded: Playwright's expect() polls until the condition holds or this passes.
WAIT_MS = 10_000
# A reconnect waits out a full-jitter backoff capped at 10 s (clients/web/protocol.js).
RECONNECT_WAIT_MS = 15_000

QUESTION = "Why does the merge step of merge sort need extra memory?"
POLL_QUESTION = "Which sort is stable?"
POLL_OPTIONS = ["merge sort", "quicksort", "heapsort"]


def expect_live(tab: Tab, online: int) -> None:
    expect(tab.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(tab.by("conn-state")).to_have_text("Live", timeout=WAIT_MS)
    expect(tab.by("online-count")).to_have_text(f"{online} online", timeout=WAIT_MS)


def expect_no_errors(*tabs: Tab) -> None:
    for tab in tabs:
        error_toasts = tab.page.locator("[data-testid=toast].toast-error")
        expect(error_toasts).to_have_count(0, timeout=WAIT_MS)
        assert tab.errors == [], f"{tab.label} page logged errors: {tab.errors}"


def expect_bars(tab: Tab, counts: list[int], voters: int) -> None:
    card = tab.by("poll-card").first
    bars = card.get_by_test_id("poll-bar")
    expect(bars).to_have_count(len(counts), timeout=WAIT_MS)
    for i, count in enumerate(counts):
        bar = card.locator(f'[data-testid=poll-bar][data-option="{i}"]')
        expect(bar).to_have_attribute("data-count", str(count), timeout=WAIT_MS)
        share = round(100 * count / voters) if voters else 0
        expect(bar.locator(".poll-bar-count")).to_have_text(f"{count} ({share}%)", timeout=WAIT_MS)
        expect(bar.locator(".poll-bar-fill")).to_have_attribute(
            "style", re.compile(rf"width:\s*{share}%"), timeout=WAIT_MS
        )
    noun = "voter" if voters == 1 else "voters"
    expect(card.get_by_test_id("poll-voters")).to_have_text(f"{voters} {noun}", timeout=WAIT_MS)


def test_teacher_and_two_students_run_qa_and_a_poll(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("student A", "s-ada", name="Ada")
    ben = open_tab("student B", "s-ben", name="Ben")
    everyone = (teacher, ada, ben)
    for tab in everyone:
        expect_live(tab, online=3)
    expect(teacher.by("me-role")).to_have_text("teacher", timeout=WAIT_MS)
    expect(ada.by("me-name")).to_have_text("Ada", timeout=WAIT_MS)
    expect(ben.by("me-name")).to_have_text("Ben", timeout=WAIT_MS)

    # Ada asks; Ben sees the question and upvotes it; everyone sees one vote.
    for tab in everyone:
        tab.show_panel("qa")
    ada.by("qa-input").fill(QUESTION)
    ada.by("qa-ask").click()
    expect(ada.by("qa-input")).to_have_value("", timeout=WAIT_MS)  # cleared on ack
    for tab in everyone:
        expect(tab.by("qa-item")).to_have_count(1, timeout=WAIT_MS)
        expect(tab.by("qa-text")).to_have_text(QUESTION, timeout=WAIT_MS)
        expect(tab.by("qa-item").get_by_text("Ada", exact=True)).to_be_visible(timeout=WAIT_MS)
    ben.by("qa-upvote").click()
    for tab in everyone:
        expect(tab.by("qa-votes")).to_have_text("1", timeout=WAIT_MS)
    expect(ben.by("qa-upvote")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
    expect(ada.by("qa-upvote")).to_have_attribute("aria-pressed", "false", timeout=WAIT_MS)
    expect(ada.by("qa-answer")).to_have_count(0, timeout=WAIT_MS)  # students get no staff actions

    # The teacher marks it answered; every page shows it answered and takes no more votes.
    teacher.by("qa-answer").click()
    for tab in everyone:
        item = tab.by("qa-item")
        expect(item).to_have_attribute("data-answered", "true", timeout=WAIT_MS)
        expect(item.locator(".badge-ok")).to_have_text("answered", timeout=WAIT_MS)
        expect(tab.by("qa-upvote")).to_be_disabled(timeout=WAIT_MS)
        expect(tab.by("qa-votes")).to_have_text("1", timeout=WAIT_MS)
    expect(teacher.by("qa-answer")).to_have_count(0, timeout=WAIT_MS)

    # The teacher opens a three-option poll; students see the ballot, not the tally.
    # The composer is staff-only.
    for tab in everyone:
        tab.show_panel("polls")
    expect(ada.by("poll-question-input")).to_be_hidden(timeout=WAIT_MS)
    teacher.by("poll-question-input").fill(POLL_QUESTION)
    teacher.by("poll-add-option").click()
    options = teacher.by("poll-option-input")
    expect(options).to_have_count(3, timeout=WAIT_MS)
    for i, text in enumerate(POLL_OPTIONS):
        options.nth(i).fill(text)
    teacher.by("poll-open").click()
    expect(teacher.by("poll-question-input")).to_have_value("", timeout=WAIT_MS)  # reset on ack
    for tab in everyone:
        card = tab.by("poll-card")
        expect(card).to_have_count(1, timeout=WAIT_MS)
        expect(card).to_have_attribute("data-open", "true", timeout=WAIT_MS)
        expect(card.get_by_test_id("poll-question")).to_have_text(POLL_QUESTION, timeout=WAIT_MS)
    expect_bars(teacher, [0, 0, 0], voters=0)
    expect(teacher.by("poll-close")).to_be_visible(timeout=WAIT_MS)
    for student in (ada, ben):
        expect(student.by("poll-choice")).to_have_count(3, timeout=WAIT_MS)
        expect(student.by("poll-results")).to_be_hidden(timeout=WAIT_MS)
        expect(student.by("poll-close")).to_be_hidden(timeout=WAIT_MS)

    # Both students answer, differently; the teacher's live tally follows each answer.
    ada.page.locator('[data-testid=poll-choice][value="0"]').check()
    ada.by("poll-submit").click()
    expect(ada.by("poll-mine")).to_have_text("Your answer: merge sort", timeout=WAIT_MS)
    expect_bars(teacher, [1, 0, 0], voters=1)
    ben.page.locator('[data-testid=poll-choice][value="1"]').check()
    ben.by("poll-submit").click()
    expect(ben.by("poll-mine")).to_have_text("Your answer: quicksort", timeout=WAIT_MS)
    expect_bars(teacher, [1, 1, 0], voters=2)
    for student in (ada, ben):  # no tally for students while the poll is open
        expect(student.by("poll-results")).to_be_hidden(timeout=WAIT_MS)
    teacher.screenshot(e2e_artifacts, "teacher-poll-live")

    # The teacher closes the poll; every page shows the results bar chart.
    teacher.by("poll-close").click()
    for tab in everyone:
        expect(tab.by("poll-card")).to_have_attribute("data-open", "false", timeout=WAIT_MS)
        expect(tab.by("poll-results")).to_be_visible(timeout=WAIT_MS)
        expect_bars(tab, [1, 1, 0], voters=2)
        expect(tab.by("poll-close")).to_be_hidden(timeout=WAIT_MS)
    for student in (ada, ben):
        expect(student.by("poll-choice").first).to_be_disabled(timeout=WAIT_MS)
        expect(student.by("poll-submit")).to_be_hidden(timeout=WAIT_MS)

    for tab, name in ((teacher, "teacher"), (ada, "student-a"), (ben, "student-b")):
        expect(tab.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        tab.screenshot(e2e_artifacts, name)
    expect_no_errors(*everyone)


class FlakyNetwork:
    """Routes a page's WebSocket through Playwright so the test can cut it and refuse reconnects.

    While up, each socket is passed through to the real server. ``cut()`` drops every socket as a
    lost network would (close 1006 in the page; the server side is closed too) and refuses new ones
    until ``restore()``.
    """

    def __init__(self) -> None:
        self.up = True
        self.live: list[tuple[WebSocketRoute, WebSocketRoute]] = []

    def install(self, page: Page) -> None:
        # Every socket of the page: its whiteboard connection is a presence too (it keeps the
        # student online), and a real network drop takes it along.
        page.route_web_socket(re.compile(r"/ws$|/whiteboard/"), self._route)

    def _route(self, ws: WebSocketRoute) -> None:
        if not self.up:
            ws.close(code=1006, reason="network unreachable")
            return
        self.live.append((ws, ws.connect_to_server()))

    def cut(self) -> None:
        self.up = False
        for page_side, server_side in self.live:
            page_side.close(code=1006, reason="network lost")
            # The page's real socket to the server closes too (WebSocket.close() in the page takes
            # only 1000 or 3000-4999, so no 1001), and the server sees the student go.
            server_side.close(code=4000, reason="network lost")
        self.live.clear()

    def restore(self) -> None:
        self.up = True


def test_student_page_reconnects_and_resumes_by_itself(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    network = FlakyNetwork()
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("student A", "s-ada", name="Ada", before_load=network.install)
    for tab in (teacher, ada):
        expect_live(tab, online=2)
    teacher.show_panel("chat")
    teacher.by("chat-input").fill("Welcome, everyone")
    teacher.by("chat-input").press("Enter")
    expect(ada.by("chat-text")).to_have_text(["Welcome, everyone"], timeout=WAIT_MS)
    assert ada.page.evaluate("window.liveclass.model.epoch") == 1

    # The network drops: the page notices at once and backs off; the server sees Ada leave.
    network.cut()
    expect(ada.by("conn-state")).to_have_attribute("data-state", "reconnecting", timeout=WAIT_MS)
    expect(ada.by("conn-state")).to_contain_text("Reconnecting", timeout=WAIT_MS)
    expect(teacher.by("online-count")).to_have_text("1 online", timeout=WAIT_MS)

    # Meanwhile the teacher posts; the teacher's page has it (input cleared on ack), Ada's not.
    teacher.by("chat-input").fill("Page 42, exercise 3")
    teacher.by("chat-send").click()
    expect(teacher.by("chat-input")).to_have_value("", timeout=WAIT_MS)
    expect(teacher.by("chat-text")).to_have_text(
        ["Welcome, everyone", "Page 42, exercise 3"], timeout=WAIT_MS
    )
    expect(ada.by("chat-text")).to_have_text(["Welcome, everyone"], timeout=WAIT_MS)
    expect(ada.by("conn-state")).to_have_attribute("data-state", "reconnecting", timeout=WAIT_MS)
    ada.screenshot(e2e_artifacts, "student-reconnecting")

    # The network comes back: the page's own backoff timer reconnects, with no help from the test.
    network.restore()
    expect(ada.by("conn-state")).to_have_attribute("data-state", "live", timeout=RECONNECT_WAIT_MS)
    expect(ada.by("chat-text")).to_have_text(
        ["Welcome, everyone", "Page 42, exercise 3"], timeout=WAIT_MS
    )
    expect(ada.by("chat-message").last).to_have_attribute("data-from", "t-rivera", timeout=WAIT_MS)
    for tab in (teacher, ada):
        expect_live(tab, online=2)
    # It resumed from its last event id (a `resumed` frame), not a fresh snapshot (`welcome`).
    assert ada.page.evaluate("window.liveclass.model.epoch") == 1
    assert network.live, "the page did not reconnect through the restored network"

    ada.screenshot(e2e_artifacts, "student-reconnected")
    expect_no_errors(teacher, ada)
