"""End of class in real Chromium: the teacher ends the session; the end screen (one card, saying it
once, at 1280x800 and 390x844) is still there after a reload (the page learns it from the server);
the teacher downloads the class export, from the header's Download menu during the class and from
the end card, and it holds the class's chat, questions, polls and attendance."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import VIEWPORT, Tab

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

WAIT_MS = 10_000


def send(tab: Tab, text: str) -> None:
    tab.by("chat-input").fill(text)
    tab.by("chat-input").press("Enter")
    expect(tab.by("chat-input")).to_have_value("", timeout=WAIT_MS)


def test_the_end_screen_survives_a_reload_and_the_export_downloads(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("student A", "s-ada", name="Ada")
    for tab in (teacher, ada):
        expect(tab.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(ada.by("export-bar")).to_be_hidden()
    expect(ada.by("export-menu")).to_be_hidden()
    # During the class the downloads are a menu in the header, closed until opened.
    expect(teacher.by("export-bar")).to_be_hidden()
    teacher.by("export-menu-button").click()
    expect(teacher.by("export-bar")).to_be_visible()
    teacher.by("export-menu-button").click()
    expect(teacher.by("export-bar")).to_be_hidden()
    send(ada, "Is there homework?")
    ada.page.evaluate(
        "window.liveclass.connection.send('question.ask', {text: 'Why is the sky blue?'}, 'Ask')"
    )
    teacher.page.evaluate(
        "window.liveclass.connection.send('poll.open',"
        " {question: 'Tea or coffee?', options: ['tea', 'coffee'], multiple: false}, 'Open poll')"
    )
    expect(teacher.by("chat-message")).to_have_count(1, timeout=WAIT_MS)

    teacher.by("end-session").click()
    teacher.by("reason-input").fill("See you tomorrow")
    teacher.by("reason-confirm").click()
    for tab in (teacher, ada):
        expect(tab.by("banner")).to_have_attribute("data-state", "ended", timeout=WAIT_MS)

    # A reload keeps the end screen: the server refuses the join and says why.
    for tab in (teacher, ada):
        tab.page.reload()
        expect(tab.by("banner")).to_have_attribute("data-state", "ended", timeout=WAIT_MS)
        expect(tab.by("banner")).to_be_visible()
        # Said once: the card, not the header's pill too; which class, and what to do.
        expect(tab.page.get_by_text("Session ended").filter(visible=True)).to_have_count(1)
        expect(tab.by("conn-state")).to_be_hidden()
        expect(tab.by("banner-class")).to_have_text("Room class")
        expect(tab.by("banner-todo")).to_contain_text("You can close this page")
        expect(tab.page.locator(".layout")).to_be_hidden()
    ada.screenshot(e2e_artifacts, "end-screen-student-after-reload")
    ada.page.set_viewport_size({"width": 390, "height": 844})
    ada.screenshot(e2e_artifacts, "end-screen-student-phone")
    ada.page.set_viewport_size(VIEWPORT)

    expect(teacher.by("export-bar")).to_be_visible()
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
