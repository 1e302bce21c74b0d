"""The waiting room in real Chromium: the teacher turns on "ask to join", a late student's page
shows that they wait, the teacher sees "1 waiting" and lets them in, and the student's page goes
live without a reload (same page, same socket); another student turned away is told so."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Tab

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

WAIT_MS = 10_000


def test_a_waiting_student_is_let_in_without_a_reload(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    expect(teacher.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    toggle = teacher.by("waiting-room-toggle")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)

    ada = open_tab("student A", "s-ada", name="Ada")
    expect(ada.by("conn-state")).to_have_attribute("data-state", "waiting", timeout=WAIT_MS)
    expect(ada.by("waiting-screen")).to_be_visible()
    ada.page.evaluate("window.__samePage = true")  # gone if the page reloads

    expect(teacher.by("waiting-count")).to_have_text("1 waiting", timeout=WAIT_MS)
    expect(teacher.by("waiting-entry")).to_have_count(1)
    expect(teacher.by("waiting-entry")).to_contain_text("Ada")
    teacher.screenshot(e2e_artifacts, "waiting-room-teacher")
    ada.screenshot(e2e_artifacts, "waiting-room-student")
    teacher.by("waiting-admit").click()

    expect(ada.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(ada.by("waiting-screen")).to_be_hidden()
    assert ada.page.evaluate("window.__samePage") is True, "the page reloaded"
    expect(teacher.by("waiting-count")).to_be_hidden(timeout=WAIT_MS)
    # In for real: a chat message reaches the teacher, and the whiteboard is connected.
    ada.by("chat-input").fill("Thanks!")
    ada.by("chat-input").press("Enter")
    expect(teacher.by("chat-message").last).to_contain_text("Thanks!", timeout=WAIT_MS)
    expect(ada.by("wb-status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)

    bob = open_tab("student B", "s-bob", name="Bob")
    expect(bob.by("conn-state")).to_have_attribute("data-state", "waiting", timeout=WAIT_MS)
    expect(teacher.by("waiting-entry")).to_contain_text("Bob", timeout=WAIT_MS)
    teacher.by("waiting-deny").click()
    expect(bob.by("banner")).to_contain_text("did not let you in", timeout=WAIT_MS)
    for tab in (teacher, ada, bob):
        assert not [e for e in tab.errors if "pageerror" in e], tab.errors
