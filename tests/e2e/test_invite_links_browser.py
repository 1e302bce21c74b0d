"""Removal keeps someone out, in real Chromium: the teacher makes a personal link on the dev
landing page, the student joins through it, the teacher removes them, and the same link under a
new name no longer admits anyone; the teacher closes the class link from the classroom page."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from clients import ClassroomClient
from tests.e2e.conftest import VIEWPORT
from tests.server import LiveclassServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

WAIT_MS = 10_000


@pytest.fixture
def server(make_server: Callable[..., LiveclassServer]) -> LiveclassServer:
    return make_server("--dev")


def test_a_removed_students_personal_link_no_longer_admits_anyone(
    browser: Browser, server: LiveclassServer
) -> None:
    teacher_context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    contexts = [teacher_context]
    try:
        landing = teacher_context.new_page()
        landing.goto(f"{server.http_url}/dev")
        landing.get_by_test_id("dev-teacher-name").fill("Ms Rivera")
        landing.get_by_test_id("dev-create").click()
        expect(landing.get_by_test_id("dev-personal-form")).to_be_visible(timeout=WAIT_MS)
        landing.get_by_test_id("dev-personal-name").fill("Mallory")
        landing.get_by_test_id("dev-personal-create").click()
        personal = landing.get_by_test_id("dev-personal-link")
        expect(personal).to_have_count(1, timeout=WAIT_MS)
        link = personal.input_value()
        teacher_link = landing.get_by_test_id("dev-teacher-link").input_value()
        room = landing.get_by_test_id("dev-room").text_content() or ""

        teacher = teacher_context.new_page()
        teacher.goto(teacher_link)
        expect(teacher.get_by_test_id("conn-state")).to_have_attribute(
            "data-state", "live", timeout=WAIT_MS
        )

        def join(name: str) -> tuple[BrowserContext, Page]:
            context = browser.new_context(viewport=VIEWPORT, locale="en-US")
            contexts.append(context)
            page = context.new_page()
            page.goto(link)
            expect(page.get_by_test_id("join-name")).to_have_value("Mallory")
            page.get_by_test_id("join-name").fill(name)
            page.get_by_test_id("join-submit").click()
            return context, page

        _, mallory = join("Mallory")
        expect(mallory.get_by_test_id("conn-state")).to_have_attribute(
            "data-state", "live", timeout=WAIT_MS
        )
        identity = mallory.evaluate("window.liveclass.model.me.identity")

        # The teacher removes her (through the protocol, as the page's Remove does).
        token = urlsplit(teacher_link).fragment.removeprefix("token=")

        async def remove() -> None:
            staff = ClassroomClient(server.ws_url, token, room, reconnect=False)
            await staff.connect()
            try:
                await staff.remove(identity, "disruptive")
            finally:
                await staff.close()

        # Playwright's sync API holds this thread's event loop; the SDK runs on another thread.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, remove()).result(timeout=15)
        expect(mallory.get_by_test_id("banner")).to_be_visible(timeout=WAIT_MS)

        _, again = join("Somebody Else")
        expect(again.get_by_test_id("banner")).to_contain_text(
            "You were removed from this class", timeout=WAIT_MS
        )
        assert again.evaluate("document.body.dataset.joined") == "false"

        # The class link: the teacher closes it from the classroom page.
        revoke = teacher.get_by_test_id("invite-revoke")
        expect(revoke).to_have_text("Close the class link")
        revoke.click()
        expect(revoke).to_have_text("Class link closed", timeout=WAIT_MS)
        expect(revoke).to_be_disabled()
    finally:
        for context in contexts:
            context.close()
