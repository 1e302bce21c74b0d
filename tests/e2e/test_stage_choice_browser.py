"""The stage is the staff's choice for the room, in real Chromium (docs/protocol.md, "The stage").

A teacher's Video / Whiteboard switch puts that view on a student's stage within a second; the
student may look at the other view on their own page (the teacher's stays as it is) and a "Back
to the class view" button or the next staff choice brings them back; a reload shows the staff's
choice, not the student's last look.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Tab

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
