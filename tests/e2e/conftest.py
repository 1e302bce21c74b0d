"""Real Chromium for the end-to-end tests: one browser per test, one context per participant.

Playwright's sync API drives the system Chromium (``/usr/bin/chromium``); browsers are never
downloaded (no ``playwright install``). Pages only ever talk to the test server on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect, sync_playwright

from tests.server import LiveclassServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Media: a fake camera and microphone, granted without a prompt; WebRTC may use loopback
    # (Chromium adds 127.0.0.1 and ::1 as networks of their own); host candidates carry real
    # addresses, not mDNS names (resolving those would multicast to 224.0.0.251).
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
VIEWPORT = {"width": 1280, "height": 800}


@dataclass
class Tab:
    """One participant's browser context and classroom page, with the errors it logged."""

    label: str
    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)

    def by(self, testid: str) -> Locator:
        return self.page.get_by_test_id(testid)

    def show_panel(self, key: str) -> None:
        """Open the tab of a side panel: people, chat, qa, polls or (staff) breakouts."""
        self.by(f"tab-{key}").click()

    def roster_row(self, identity: str) -> Locator:
        """The People panel's row of ``identity``."""
        return self.page.locator(f'[data-testid=roster-item][data-identity="{identity}"]')

    def roster_actions(self, identity: str) -> Locator:
        """The row of ``identity`` with its actions menu open (staff: the row's "⋯" button)."""
        row = self.roster_row(identity)
        toggle = row.get_by_test_id("roster-actions")
        if toggle.get_attribute("aria-expanded") != "true":
            toggle.click()
        expect(row.get_by_test_id("roster-menu")).to_be_visible(timeout=15_000)
        return row

    def screenshot(self, directory: Path, name: str) -> Path:
        path = directory / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def wait_live(*tabs: Tab) -> None:
    """Wait until every tab's page says Live."""
    for tab in tabs:
        expect(tab.by("conn-state")).to_have_attribute("data-state", "live", timeout=15_000)


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"end-to-end tests need Chromium at {CHROMIUM}: bootstrap.sh --system-deps")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def open_tab(browser: Browser, server: LiveclassServer) -> Callable[..., Tab]:
    """Open the classroom page for a participant in a fresh context (own storage, own socket).

    ``before_load`` runs on the page before it navigates (e.g. to route its WebSocket).
    """

    def open_(
        label: str,
        identity: str,
        role: str = "student",
        *,
        name: str,
        before_load: Callable[[Page], None] | None = None,
    ) -> Tab:
        context = browser.new_context(viewport=VIEWPORT, locale="en-US")
        page = context.new_page()
        tab = Tab(label, context, page)
        page.on(
            "console",
            lambda msg: (
                tab.errors.append(f"console.{msg.type}: {msg.text}")
                if msg.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda exc: tab.errors.append(f"pageerror: {exc}"))
        if before_load is not None:
            before_load(page)
        page.goto(f"{server.http_url}/#token={server.token(identity, role, name=name)}")
        return tab

    return open_


@pytest.fixture
def e2e_artifacts(artifacts: Path) -> Path:
    """``artifacts/e2e/``, where the screenshots are kept."""
    directory = artifacts / "e2e"
    directory.mkdir(parents=True, exist_ok=True)
    return directory
