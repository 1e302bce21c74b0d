"""End of class in real Chromium: the teacher ends the session; the end screen is still there
after a reload (the page learns it from the server); the teacher downloads the class export and it
holds the class's chat, questions, polls and attendance."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Tab, wait_live

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

WAIT_MS = 10_000


def send(tab: Tab, text: str) -> None:
    tab.by("chat-input").fill(text)
    tab.by("chat-input").press("Enter")
    expect(tab.by("chat-input")).to_have_value("", timeout=WAIT_MS)


# Every visible element whose own text says the class ended (banner, header badge, toast, card).
ENDED_TEXTS = """() => [...document.querySelectorAll('body *')].filter((node) => {
  const own = [...node.childNodes].filter((c) => c.nodeType === 3)
    .map((c) => c.textContent).join('');
  return /\\bended\\b/i.test(own) && node.getClientRects().length > 0
    && getComputedStyle(node).visibility !== 'hidden';
}).map((node) => node.textContent.trim())"""


def assert_ended_once(tab: Tab) -> None:
    """The end is said once: the card's sentence, and no banner, badge or toast repeating it."""
    expect(tab.by("end-text")).to_have_text("The class has ended.")
    assert tab.page.evaluate(ENDED_TEXTS) == ["The class has ended."]


def assert_centred(tab: Tab) -> None:
    """The card sits in the middle of the viewport, whole."""
    box = tab.page.locator(".end-card").bounding_box()
    size = tab.page.viewport_size
    assert box is not None and size is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= size["width"] + 1
    assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"] + 1
    assert abs((box["x"] + box["width"] / 2) - size["width"] / 2) <= 2
    assert abs((box["y"] + box["height"] / 2) - size["height"] / 2) <= 2


def resize(tab: Tab, width: int, height: int) -> None:
    """Give the page a new viewport and wait until it has been laid out for it: the page's
    ``resize`` listeners run before the next animation frame's callbacks (HTML, "update the
    rendering"), and the viewport's new size is set before either."""
    tab.page.set_viewport_size({"width": width, "height": height})
    tab.page.evaluate(
        "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
    )


def assert_inside_viewport(tab: Tab, testid: str) -> None:
    box = tab.by(testid).bounding_box()
    size = tab.page.viewport_size
    assert box is not None and size is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= size["width"] + 1, box
    assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"] + 1, box


def test_the_end_screen_survives_a_reload_and_the_export_downloads(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("student A", "s-ada", name="Ada")
    wait_live(teacher, ada)
    expect(ada.by("export-menu")).to_be_hidden()
    send(ada, "Is there homework?")
    ada.page.evaluate(
        "window.liveclass.connection.send('question.ask', {text: 'Why is the sky blue?'}, 'Ask')"
    )
    teacher.page.evaluate(
        "window.liveclass.connection.send('poll.open',"
        " {question: 'Tea or coffee?', options: ['tea', 'coffee'], multiple: false}, 'Open poll')"
    )
    expect(teacher.by("chat-message")).to_have_count(1, timeout=WAIT_MS)

    # During the class the downloads wait in the header's "Download" menu, out of the way.
    expect(teacher.by("export-bar")).to_be_hidden()
    expect(teacher.by("export-open")).to_be_visible()
    assert teacher.page.locator("header").get_by_test_id("export-open").count() == 1
    teacher.by("export-open").click()
    expect(teacher.by("export-bar")).to_be_visible()
    assert_inside_viewport(teacher, "export-bar")
    teacher.screenshot(e2e_artifacts, "export-menu-teacher")
    resize(teacher, 390, 844)
    assert_inside_viewport(teacher, "export-bar")
    teacher.screenshot(e2e_artifacts, "export-menu-teacher-phone")
    resize(teacher, 1280, 800)
    teacher.page.locator("h1.brand").click()  # a click elsewhere folds the menu
    expect(teacher.by("export-bar")).to_be_hidden()

    teacher.by("end-session").click()
    teacher.by("reason-input").fill("See you tomorrow")
    teacher.by("reason-confirm").click()
    for tab in (teacher, ada):
        expect(tab.by("end-screen")).to_be_visible(timeout=WAIT_MS)
        assert_ended_once(tab)

    # A reload keeps the end screen: the server refuses the join and says why.
    for tab in (teacher, ada):
        tab.page.reload()
        expect(tab.by("end-screen")).to_be_visible(timeout=WAIT_MS)
        assert_ended_once(tab)
        expect(tab.by("end-title")).to_have_text("Room class")
        expect(tab.by("end-time")).to_have_text(re.compile(r"^Today at \d{1,2}:\d{2}"))
        expect(tab.by("end-todo")).to_have_text("You can close this page.")
        assert_centred(tab)
    expect(ada.by("end-screen").get_by_test_id("export-bar")).to_have_count(0)
    expect(ada.by("export-bar")).to_be_hidden()
    ada.screenshot(e2e_artifacts, "end-screen-student-after-reload")
    resize(ada, 390, 844)
    assert_centred(ada)
    ada.screenshot(e2e_artifacts, "end-screen-student-phone")

    # The staff's downloads are on the card (and no longer in the header).
    expect(teacher.by("end-screen").get_by_test_id("export-bar")).to_be_visible()
    expect(teacher.by("export-open")).to_be_hidden()
    with teacher.page.expect_download(timeout=WAIT_MS) as downloaded:
        teacher.by("export-json").click()
    download = downloaded.value
    assert download.suggested_filename == "class-class.json"
    export = json.loads(Path(download.path()).read_text())
    assert [m["text"] for m in export["chat"]] == ["Is there homework?"]
    assert [q["text"] for q in export["questions"]] == ["Why is the sky blue?"]
    assert [p["question"] for p in export["polls"]] == ["Tea or coffee?"]
    assert {p["identity"] for p in export["attendance"]} == {"t-rivera", "s-ada"}
    assert export["ended_at"] is not None
    with teacher.page.expect_download(timeout=WAIT_MS) as downloaded:
        teacher.by("export-attendance").click()
    csv_text = Path(downloaded.value.path()).read_text()
    assert csv_text.startswith("identity,name,role,joined_at,last_seen_at,left_at,removed_at")
    teacher.screenshot(e2e_artifacts, "end-screen-teacher-export")
    resize(teacher, 390, 844)
    assert_centred(teacher)
    teacher.screenshot(e2e_artifacts, "end-screen-teacher-phone")
