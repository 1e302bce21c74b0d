"""The class's name in real Chromium: typed on the dev landing page, it is shown on the invite's
join page (with its teacher), in the classroom header and in the browser tab, for the teacher and
a student."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import VIEWPORT
from tests.server import LiveclassServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

WAIT_MS = 10_000


@pytest.fixture
def server(make_server: Callable[..., LiveclassServer]) -> LiveclassServer:
    return make_server("--dev")


def test_the_class_name_from_the_landing_page_is_on_the_join_page_header_and_tab(
    browser: Browser, server: LiveclassServer
) -> None:
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    try:
        landing = context.new_page()
        landing.goto(f"{server.http_url}/dev")
        landing.get_by_test_id("dev-class-name").fill("Biology 101")
        landing.get_by_test_id("dev-teacher-name").fill("Ms Rivera")
        landing.get_by_test_id("dev-create").click()
        expect(landing.get_by_test_id("dev-links")).to_be_visible(timeout=WAIT_MS)
        teacher_link = landing.get_by_test_id("dev-teacher-link").input_value()
        student_link = landing.get_by_test_id("dev-student-link").input_value()
        room = landing.get_by_test_id("dev-room").text_content() or ""
        assert room and " " not in room

        teacher = context.new_page()
        teacher.goto(teacher_link)
        expect(teacher.get_by_test_id("conn-state")).to_have_attribute(
            "data-state", "live", timeout=WAIT_MS
        )
        expect(teacher.get_by_test_id("class-name")).to_have_text("Biology 101")
        expect(teacher.get_by_test_id("room-id")).to_have_text(room)
        expect(teacher).to_have_title("Biology 101 · liveclass")

        student_context = browser.new_context(viewport=VIEWPORT, locale="en-US")
        try:
            join = student_context.new_page()
            join.goto(student_link)
            expect(join.get_by_test_id("join-class-name")).to_have_text("Biology 101")
            expect(join.get_by_test_id("join-teacher-name")).to_have_text("Ms Rivera")
            join.get_by_test_id("join-name").fill("Ada")
            join.get_by_test_id("join-submit").click()
            expect(join.get_by_test_id("conn-state")).to_have_attribute(
                "data-state", "live", timeout=WAIT_MS
            )
            expect(join.get_by_test_id("class-name")).to_have_text("Biology 101")
            expect(join).to_have_title("Biology 101 · liveclass")
        finally:
            student_context.close()
    finally:
        context.close()
