"""The camera and microphone check, in real Chromium (fake devices) against a real ``liveclass``.

On the join page a student sees themself, watches the microphone's level move and picks the
devices; the classroom page opens the devices picked there, and offers the same check from the
video panel. The check holds the devices only while it is shown.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import VIEWPORT
from tests.server import LiveclassServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

WAIT_MS = 10_000


def expect_working_check(page: Page) -> None:
    """The preview shows frames and the level meter moved (Chromium's fake microphone beeps)."""
    page.wait_for_function(
        "() => document.querySelector('[data-testid=device-preview]').videoWidth > 0",
        timeout=WAIT_MS,
    )
    expect(page.get_by_test_id("device-level")).to_have_attribute(
        "data-heard", "true", timeout=WAIT_MS
    )
    expect(page.get_by_test_id("device-camera").locator("option")).not_to_have_count(0)
    expect(page.get_by_test_id("device-status")).to_contain_text("see yourself")


def test_a_student_checks_and_picks_devices_before_joining_and_the_class_uses_them(
    browser: Browser, make_server: Callable[..., LiveclassServer]
) -> None:
    server = make_server("--dev", "--no-media")
    status, body, _ = server.get("/dev/api/new-room?teacher_name=Grace")
    assert status == 200, body
    student_link = json.loads(body)["student_link"]
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(
            f"{server.http_url}{student_link}" if student_link.startswith("/") else student_link
        )
        page.get_by_test_id("join-check-devices").click()
        expect_working_check(page)

        microphones = page.get_by_test_id("device-microphone").locator("option")
        expect(microphones).not_to_have_count(0)
        chosen = microphones.last.get_attribute("value")
        assert chosen
        page.get_by_test_id("device-microphone").select_option(chosen)
        expect_working_check(page)  # started again on the chosen microphone
        in_use = page.evaluate(
            "document.querySelector('[data-testid=device-preview]').srcObject !== null"
        )
        assert in_use

        page.get_by_test_id("join-name").fill("Ada")
        page.get_by_test_id("join-submit").click()
        expect(page.get_by_test_id("conn-state")).to_have_attribute(
            "data-state", "live", timeout=WAIT_MS
        )
        assert page.evaluate("window.liveclass.media.preferredDevice('microphone')") == chosen
        # The class's microphone is the one picked (opened as "Turn on microphone" opens it).
        opened = page.evaluate(
            """async () => {
              const track = await window.liveclass.media.openDevice("microphone");
              const id = track.getSettings().deviceId;
              track.stop();
              return id;
            }"""
        )
        assert opened == chosen

        # The same check from the video panel, with the choice made on the join page.
        page.get_by_test_id("media-check-devices").click()
        expect(page.get_by_test_id("device-dialog")).to_be_visible()
        expect_working_check(page)
        expect(page.get_by_test_id("device-microphone")).to_have_value(chosen)
        page.get_by_test_id("device-done").click()
        expect(page.get_by_test_id("device-dialog")).to_be_hidden()
        # Closed, it holds no device: its preview is emptied and its tracks ended. The dialog's
        # "close" event, which releases them, is fired in a task queued after it hides.
        page.wait_for_function(
            "() => document.querySelector('[data-testid=device-preview]').srcObject === null",
            timeout=2_000,
        )
        assert errors == []
    finally:
        context.close()
