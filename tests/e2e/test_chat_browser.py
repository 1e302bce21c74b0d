"""Chat on the classroom page in real Chromium against a real ``liveclass serve``.

A private message is a one-off: after it is sent, "To" goes back to Everyone, for the student
writing to the staff and for the teacher replying to a student, so the next message reaches the
room as a participant expects.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Tab
from tests.e2e.test_classroom_browser import RECONNECT_WAIT_MS, FlakyNetwork

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

WAIT_MS = 10_000


def send(tab: Tab, text: str) -> None:
    tab.by("chat-input").fill(text)
    tab.by("chat-input").press("Enter")
    expect(tab.by("chat-input")).to_have_value("", timeout=WAIT_MS)  # cleared on ack


def test_to_returns_to_everyone_after_a_private_message(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("student A", "s-ada", name="Ada")
    for tab in (teacher, ada):
        expect(tab.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        tab.show_panel("chat")

    # Ada writes privately to the staff; afterwards "To" reads Everyone again.
    ada.by("chat-to").select_option("staff")
    send(ada, "May I leave ten minutes early?")
    expect(ada.by("chat-to")).to_have_value("", timeout=WAIT_MS)
    expect(teacher.by("chat-message")).to_have_count(1, timeout=WAIT_MS)
    expect(teacher.by("chat-message")).to_have_attribute("data-thread", "s-ada")

    # The teacher replies through the thread label; "To" returns to Everyone after the reply.
    teacher.by("chat-thread-label").click()
    expect(teacher.by("chat-to")).to_have_value("s-ada", timeout=WAIT_MS)
    send(teacher, "Yes, of course.")
    expect(teacher.by("chat-to")).to_have_value("", timeout=WAIT_MS)

    # The next messages go to the room: Ada's reaches the room, not the private thread.
    send(ada, "Thank you!")
    last = teacher.by("chat-message").last
    expect(last).to_have_attribute("data-thread", "", timeout=WAIT_MS)
    expect(last.get_by_test_id("chat-text")).to_have_text("Thank you!", timeout=WAIT_MS)
    for tab, name in ((teacher, "chat-to-teacher"), (ada, "chat-to-student")):
        tab.screenshot(e2e_artifacts, name)


def test_messages_written_while_reconnecting_queue_and_send_on_resume(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    network = FlakyNetwork()
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("student A", "s-ada", name="Ada", before_load=network.install)
    for tab in (teacher, ada):
        expect(tab.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        tab.show_panel("chat")
    expect(ada.by("online-count")).to_have_attribute("data-stale", "false")

    # The network drops: the online count is marked as the last one known.
    network.cut()
    expect(ada.by("conn-state")).to_have_attribute("data-state", "reconnecting", timeout=WAIT_MS)
    expect(ada.by("online-count")).to_have_attribute("data-stale", "true")
    expect(ada.by("online-count")).to_have_text("2 online (last known)")

    # Written meanwhile: queued and shown as waiting, not refused; the input is free again.
    ada.by("chat-input").fill("Sorry, my connection dropped")
    ada.by("chat-input").press("Enter")
    ada.by("chat-to").select_option("staff")
    ada.by("chat-input").fill("Can you repeat the last step?")
    ada.by("chat-input").press("Enter")
    expect(ada.by("chat-input")).to_have_value("")
    expect(ada.by("chat-to")).to_have_value("")
    expect(ada.by("chat-queued")).to_have_count(2)
    expect(ada.page.locator("[data-testid=toast].toast-error")).to_have_count(0)
    ada.screenshot(e2e_artifacts, "chat-queued-while-reconnecting")

    # Back online: both go out, in order, the second privately; nothing waits any more.
    network.restore()
    expect(ada.by("conn-state")).to_have_attribute("data-state", "live", timeout=RECONNECT_WAIT_MS)
    expect(teacher.by("chat-text")).to_have_text(
        ["Sorry, my connection dropped", "Can you repeat the last step?"], timeout=WAIT_MS
    )
    expect(teacher.by("chat-message").last).to_have_attribute("data-thread", "s-ada")
    expect(ada.by("chat-queued")).to_have_count(0, timeout=WAIT_MS)
    expect(ada.by("chat-text")).to_have_text(
        ["Sorry, my connection dropped", "Can you repeat the last step?"], timeout=WAIT_MS
    )
    expect(ada.by("online-count")).to_have_attribute("data-stale", "false")
    expect(ada.by("online-count")).to_have_text("2 online", timeout=WAIT_MS)
    for tab in (teacher, ada):
        expect(tab.page.locator("[data-testid=toast].toast-error")).to_have_count(0)
        assert tab.errors == [], f"{tab.label} page logged errors: {tab.errors}"
