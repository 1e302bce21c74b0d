"""Notifications on the classroom page: unread badges on the panel tabs and toasts that say what
arrived, in real Chromium against a real ``liveclass serve``.

The teacher, looking at another tab, sees a student's raised hand, question and private message
arrive (a toast and the tab's badge; the badge clears once the tab is opened); a sound plays only
once they turn it on. The student sees a new poll pop up (its toast opens the poll) and being
called on. No toast ever covers a control.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Tab, wait_live

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

WAIT_MS = 10_000

# Every visible control outside the toasts whose box meets a toast's box.
COVERED_JS = """() => {
  const toasts = [...document.querySelectorAll('[data-testid=toast]')]
    .map((t) => t.getBoundingClientRect());
  const meets = (a, b) =>
    a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  return [...document.querySelectorAll('button, input, select, textarea, [role=tab], canvas')]
    .filter((n) => !n.closest('[data-testid=toasts]') && n.getClientRects().length)
    .filter((n) => toasts.some((t) => meets(t, n.getBoundingClientRect())))
    .map((n) => n.dataset.testid || n.tagName);
}"""


def toast(tab: Tab, code: str):
    return tab.page.locator(f"[data-testid=toast][data-code={code}]")


def expect_unread(tab: Tab, key: str, count: int) -> None:
    expect(tab.by(f"tab-{key}")).to_have_attribute("data-unread", str(count), timeout=WAIT_MS)
    badge = tab.by(f"tab-{key}").get_by_test_id("tab-badge")
    if count:
        expect(badge).to_have_text(str(count))
    else:
        expect(badge).to_be_hidden()


def test_staff_see_a_hand_a_question_and_a_private_message_arrive(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("student", "s-ada", name="Ada")
    wait_live(teacher, ada)
    expect(teacher.by("notify-sound")).to_have_attribute("aria-pressed", "false")  # off by default
    teacher.show_panel("polls")
    for key in ("people", "chat", "qa"):
        expect_unread(teacher, key, 0)

    ada.by("hand-raise").click()
    expect(toast(teacher, "hand-raised")).to_contain_text("Ada raised their hand", timeout=WAIT_MS)
    expect_unread(teacher, "people", 1)

    ada.show_panel("qa")
    ada.by("qa-input").fill("Is merge sort stable?")
    ada.by("qa-ask").click()
    expect(toast(teacher, "question")).to_contain_text(
        "Ada asked: Is merge sort stable?", timeout=WAIT_MS
    )
    expect_unread(teacher, "qa", 1)

    ada.show_panel("chat")
    ada.by("chat-to").select_option("staff")
    ada.by("chat-input").fill("I cannot hear you")
    ada.by("chat-input").press("Enter")
    expect(toast(teacher, "private-message")).to_contain_text(
        "Ada (private): I cannot hear you", timeout=WAIT_MS
    )
    expect_unread(teacher, "chat", 1)
    assert teacher.page.evaluate(COVERED_JS) == []
    teacher.screenshot(e2e_artifacts, "notifications-teacher")

    # Opening a tab reads what is in it; the others keep their badges.
    teacher.show_panel("people")
    expect_unread(teacher, "people", 0)
    expect_unread(teacher, "qa", 1)
    # The private message's toast replies there.
    toast(teacher, "private-message").get_by_test_id("toast-action").click()
    expect(teacher.by("tab-chat")).to_have_attribute("aria-selected", "true")
    expect_unread(teacher, "chat", 0)

    # With the sound on, the next arrival plays it.
    teacher.by("notify-sound").click()
    expect(teacher.by("notify-sound")).to_have_attribute("aria-pressed", "true")
    beeps = teacher.page.evaluate("window.liveclass.notifications.beeps()")
    ada.show_panel("qa")
    ada.by("qa-input").fill("And quicksort?")
    ada.by("qa-ask").click()
    expect(toast(teacher, "question")).to_have_count(2, timeout=WAIT_MS)
    assert teacher.page.evaluate("window.liveclass.notifications.beeps()") == beeps + 1
    for tab in (teacher, ada):
        assert tab.errors == [], f"{tab.label} page logged errors: {tab.errors}"


def test_a_student_sees_a_new_poll_pop_up_and_being_called_on(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("student", "s-ada", name="Ada")
    wait_live(teacher, ada)
    expect(ada.by("tab-chat")).to_have_attribute("aria-selected", "true")

    teacher.show_panel("polls")
    teacher.by("poll-question-input").fill("Which sort is stable?")
    options = teacher.by("poll-option-input")
    options.nth(0).fill("merge sort")
    options.nth(1).fill("quicksort")
    teacher.by("poll-open").click()

    popup = toast(ada, "poll")
    expect(popup).to_contain_text("New poll: Which sort is stable?", timeout=WAIT_MS)
    expect_unread(ada, "polls", 1)
    assert ada.page.evaluate(COVERED_JS) == []
    ada.screenshot(e2e_artifacts, "notifications-student-poll")
    popup.get_by_test_id("toast-action").click()
    expect(ada.by("tab-polls")).to_have_attribute("aria-selected", "true")
    expect(ada.by("poll-choice").first).to_be_visible()
    expect_unread(ada, "polls", 0)

    ada.by("hand-raise").click()
    teacher.show_panel("people")
    teacher.by("call-next").click()
    expect(toast(ada, "called")).to_contain_text("Ms Rivera called on you", timeout=WAIT_MS)
    for tab in (teacher, ada):
        assert tab.errors == [], f"{tab.label} page logged errors: {tab.errors}"
