"""The web app in real Chromium under the server's Content-Security-Policy: the classroom page and
the dev pages work with nothing blocked, an injected inline script does not run, and no page can
frame the app (docs/operations.md, "Requests, origins and headers")."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import VIEWPORT, Tab
from tests.server import LiveclassServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

WAIT_MS = 10_000


def _errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    return errors


def test_the_classroom_page_runs_under_its_policy_and_an_injected_script_does_not(
    open_tab: Callable[..., Tab],
) -> None:
    teacher = open_tab("teacher", "t1", "teacher", name="Grace")
    expect(teacher.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(teacher.by("wb-status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    assert teacher.errors == [], teacher.errors
    blocked = teacher.page.evaluate(
        """() => new Promise((resolve) => {
             document.addEventListener("securitypolicyviolation",
               (e) => resolve(e.effectiveDirective), { once: true });
             setTimeout(() => resolve("no violation"), 2000);
             const script = document.createElement("script");
             script.textContent = "window.__injected = true";
             document.body.append(script);
           })"""
    )
    assert blocked == "script-src-elem"
    assert teacher.page.evaluate("window.__injected === undefined")


def test_the_dev_pages_run_under_the_policy(
    browser: Browser, make_server: Callable[..., LiveclassServer]
) -> None:
    server = make_server("--dev", "--no-media")
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    try:
        page = context.new_page()
        errors = _errors(page)
        page.goto(f"{server.http_url}/dev")
        page.get_by_test_id("dev-teacher-name").fill("Grace")
        page.get_by_test_id("dev-create").click()
        student_link = page.get_by_test_id("dev-student-link")
        expect(student_link).not_to_have_value("", timeout=WAIT_MS)
        join = context.new_page()
        errors += _errors(join)
        join.goto(student_link.input_value())
        join.get_by_test_id("join-name").fill("Ada")
        join.get_by_test_id("join-submit").click()
        expect(join.get_by_test_id("conn-state")).to_have_attribute(
            "data-state", "live", timeout=WAIT_MS
        )
        assert errors == []
    finally:
        context.close()


def test_no_page_can_frame_the_app(browser: Browser, server: LiveclassServer) -> None:
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    try:
        page = context.new_page()
        errors = _errors(page)
        page.set_content(f'<iframe src="{server.http_url}/"></iframe>')
        waited_ms = 0
        while not any("frame-ancestors" in e for e in errors) and waited_ms < WAIT_MS:
            page.wait_for_timeout(100)
            waited_ms += 100
        assert any("frame-ancestors 'none'" in e for e in errors), errors
        framed = page.frames[1] if len(page.frames) > 1 else None
        assert framed is None or framed.evaluate("document.querySelector('main') === null")
    finally:
        context.close()
