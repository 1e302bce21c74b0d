"""The stage is the staff's choice for the room, in real Chromium (docs/protocol.md, "The stage").

A teacher's Video / Whiteboard switch puts that view on a student's stage within a second; the
student may look at the other view on their own page (the teacher's stays as it is) and a "Back
to the class view" button or the next staff choice brings them back; a reload shows the staff's
choice, not the student's last look. The choice is the main room's: a student in a breakout room
is not moved by it, and follows it again once back.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from clients import ClassroomClient
from tests.e2e.conftest import Tab
from tests.server import LiveclassServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

WAIT_MS = 10_000
FOLLOW_MS = 1_000  # a student's stage follows the staff's choice within a second


def live(tab: Tab) -> None:
    expect(tab.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)


def staff_choose(teacher: Tab, student: Tab, view: str) -> float:
    """The teacher puts ``view`` on the stage; returns the seconds until the student's follows."""
    started = time.monotonic()
    teacher.by(f"stage-show-{view}").click()
    expect(student.by("stage")).to_have_attribute("data-stage", view, timeout=FOLLOW_MS)
    return time.monotonic() - started


def test_the_teachers_stage_choice_takes_the_students_stage_and_survives_a_reload(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("student", "s-ada", name="Ada")
    for tab in (teacher, ada):
        live(tab)
        expect(tab.by("stage")).to_have_attribute("data-stage", "board")
    expect(teacher.by("stage-show-video")).to_have_attribute(
        "title", "Put the video on everyone's stage"
    )

    # The teacher puts the video on stage, then the whiteboard, then the video again.
    for view in ("video", "board", "video"):
        assert staff_choose(teacher, ada, view) < FOLLOW_MS / 1000 + 0.5
    expect(ada.by("stage-follow")).to_be_hidden()

    # Ada looks at the whiteboard on her own page: the teacher's stays on the video.
    ada.by("stage-show-board").click()
    expect(ada.by("stage")).to_have_attribute("data-stage", "board")
    expect(ada.by("stage-follow")).to_be_visible()
    ada.page.wait_for_timeout(500)  # time for a stage.set to reach the teacher, were one sent
    expect(teacher.by("stage")).to_have_attribute("data-stage", "video")
    ada.by("stage-follow").click()
    expect(ada.by("stage")).to_have_attribute("data-stage", "video")

    # A new staff choice brings a student who looked away back to the class view.
    ada.by("stage-show-board").click()
    staff_choose(teacher, ada, "board")
    ada.by("stage-show-video").click()
    expect(ada.by("stage-follow")).to_be_visible()
    staff_choose(teacher, ada, "video")
    expect(ada.by("stage-follow")).to_be_hidden()

    # A reload shows the staff's choice, not the student's last look.
    ada.by("stage-show-board").click()
    ada.page.reload()
    live(ada)
    expect(ada.by("stage")).to_have_attribute("data-stage", "video")
    staff_choose(teacher, ada, "board")
    ada.page.reload()
    live(ada)
    expect(ada.by("stage")).to_have_attribute("data-stage", "board")
    ada.screenshot(e2e_artifacts, "stage-choice-student-board")
    teacher.page.reload()
    live(teacher)
    expect(teacher.by("stage")).to_have_attribute("data-stage", "board")
    assert teacher.errors == [] and ada.errors == [], (teacher.errors, ada.errors)


def as_assistant(server: LiveclassServer, type_: str, **fields: Any) -> None:
    """Send one room command as an assistant over the SDK (in a thread: Playwright's sync API owns
    this one's event loop)."""

    async def send() -> None:
        assistant = ClassroomClient(
            server.ws_url, server.token("a-lee", "assistant"), "class", reconnect=False
        )
        await assistant.connect()
        try:
            await assistant.request(type_, **fields)
        finally:
            await assistant.close()

    failure: list[BaseException] = []
    thread = threading.Thread(
        target=lambda: _capture(failure, lambda: asyncio.run(send())), daemon=True
    )
    thread.start()
    thread.join(15)
    assert not thread.is_alive(), f"{type_} did not finish"
    assert not failure, failure


def _capture(failure: list[BaseException], run: Callable[[], None]) -> None:
    try:
        run()
    except BaseException as error:  # handed to the test's thread
        failure.append(error)


def test_a_student_in_a_breakout_room_keeps_their_stage_and_follows_again_back_in_the_main_room(
    open_tab: Callable[..., Tab], server: LiveclassServer
) -> None:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("student", "s-ada", name="Ada")
    for tab in (teacher, ada):
        live(tab)
    staff_choose(teacher, ada, "video")

    as_assistant(server, "breakout.open", rooms=["Red"], members={"s-ada": "Red"})
    expect(ada.by("my-room")).to_have_text("Breakout room: Red", timeout=WAIT_MS)
    teacher.by("stage-show-board").click()  # the main room's stage
    expect(teacher.by("stage")).to_have_attribute("data-stage", "board")
    ada.page.wait_for_timeout(1_000)
    expect(ada.by("stage")).to_have_attribute("data-stage", "video")
    expect(ada.by("stage-follow")).to_be_hidden()

    as_assistant(server, "breakout.close")
    expect(ada.by("my-room")).to_be_hidden(timeout=WAIT_MS)
    expect(ada.by("stage")).to_have_attribute("data-stage", "board", timeout=WAIT_MS)
    assert teacher.errors == [] and ada.errors == [], (teacher.errors, ada.errors)
