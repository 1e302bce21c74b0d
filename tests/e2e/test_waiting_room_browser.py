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


def assert_waiting_section_laid_out(tab: Tab) -> None:
    """Who waits is a section under the "Ask to join" switch: the heading, then one row a person
    with the name on the left and Let in / Turn away lined up on the right, all inside the panel
    and the viewport."""
    toggle = tab.by("waiting-room-toggle").bounding_box()
    heading = tab.by("waiting-heading").bounding_box()
    panel = tab.by("waiting-room").bounding_box()
    size = tab.page.viewport_size
    assert toggle and heading and panel and size
    assert heading["y"] >= toggle["y"] + toggle["height"], "the section is not below the switch"
    rows = tab.by("waiting-entry")
    admits, denies, names = [], [], []
    for i in range(rows.count()):
        row = rows.nth(i)
        admit = row.get_by_test_id("waiting-admit").bounding_box()
        deny = row.get_by_test_id("waiting-deny").bounding_box()
        name = row.locator(".waiting-name").bounding_box()
        box = row.bounding_box()
        assert admit and deny and name and box
        # One line: the name and both buttons share the row's middle.
        for part in (admit, deny, name):
            assert abs((part["y"] + part["height"] / 2) - (box["y"] + box["height"] / 2)) <= 2
        assert name["x"] + name["width"] <= admit["x"] <= deny["x"]
        assert deny["x"] + deny["width"] <= panel["x"] + panel["width"] + 1
        assert deny["x"] + deny["width"] <= size["width"]
        admits.append(round(admit["x"]))
        denies.append(round(deny["x"] + deny["width"]))
        names.append(round(name["x"]))
    assert len(set(admits)) == 1 and len(set(denies)) == 1 and len(set(names)) == 1, (
        admits,
        denies,
        names,
    )


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
    expect(teacher.by("waiting-heading")).to_have_text("Waiting (1)")
    expect(teacher.by("waiting-admit-all")).to_be_hidden()
    ada.screenshot(e2e_artifacts, "waiting-room-student")

    cy = open_tab("student C", "s-cy", name="Cy Long-Named Student")
    expect(cy.by("conn-state")).to_have_attribute("data-state", "waiting", timeout=WAIT_MS)
    expect(teacher.by("waiting-heading")).to_have_text("Waiting (2)", timeout=WAIT_MS)
    expect(teacher.by("waiting-admit-all")).to_be_visible()
    assert_waiting_section_laid_out(teacher)
    teacher.screenshot(e2e_artifacts, "waiting-room-teacher")
    teacher.page.set_viewport_size({"width": 390, "height": 844})
    assert_waiting_section_laid_out(teacher)
    teacher.screenshot(e2e_artifacts, "waiting-room-teacher-phone")
    teacher.page.set_viewport_size({"width": 1280, "height": 800})
    teacher.by("waiting-admit-all").click()
    expect(cy.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)

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
    for tab in (teacher, ada, cy, bob):
        assert not [e for e in tab.errors if "pageerror" in e], tab.errors
