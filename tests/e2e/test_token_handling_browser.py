"""Where the access token goes in real Chromium: out of the address bar at once, nowhere on
``window.liveclass``, kept for the tab so a reload joins again, and never taken from ``?token=``."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import VIEWPORT
from tests.server import LiveclassServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

WAIT_MS = 10_000

# Every string reachable from window.liveclass (own properties, depth-first, bounded), to prove the
# token is on none of them: not on the connection, the whiteboard handle, the model or the media.
STRINGS_ON_HANDLE_JS = """() => {
  const seen = new Set(), found = [];
  const stack = [[window.liveclass, "liveclass", 0]];
  while (stack.length && seen.size < 50000) {
    const [value, path, depth] = stack.pop();
    if (typeof value === "string") { found.push([path, value]); continue; }
    if (value === null || (typeof value !== "object" && typeof value !== "function")) continue;
    if (seen.has(value) || depth > 8 || value instanceof Node || value === window) continue;
    seen.add(value);
    let keys = [];
    try { keys = Object.getOwnPropertyNames(value); } catch { continue; }
    for (const key of keys) {
      let child;
      try { child = value[key]; } catch { continue; }
      stack.push([child, `${path}.${key}`, depth + 1]);
    }
  }
  return found;
}"""


def open_page(browser: Browser, url: str) -> Page:
    page = browser.new_context(viewport=VIEWPORT, locale="en-US").new_page()
    page.goto(url)
    return page


def expect_live(page: Page) -> None:
    expect(page.get_by_test_id("conn-state")).to_have_attribute(
        "data-state", "live", timeout=WAIT_MS
    )


def test_the_token_leaves_the_address_bar_and_the_page_and_a_reload_still_joins(
    browser: Browser, server: LiveclassServer
) -> None:
    token = server.token("t-rivera", "teacher", name="Ms Rivera")
    page = open_page(browser, f"{server.http_url}/#token={token}")
    expect_live(page)
    assert page.url == f"{server.http_url}/", page.url
    assert page.evaluate("location.hash") == ""
    assert page.evaluate("window.liveclass.connection.token") is None  # undefined
    assert page.evaluate("'token' in window.liveclass.connection") is False
    leaks = [path for path, value in page.evaluate(STRINGS_ON_HANDLE_JS) if token in value]
    assert leaks == [], f"window.liveclass exposes the token at {leaks}"

    page.reload()
    expect_live(page)
    assert page.url == f"{server.http_url}/", page.url
    expect(page.get_by_test_id("me-name")).to_have_text("Ms Rivera", timeout=WAIT_MS)


def test_a_token_in_the_query_does_not_join(browser: Browser, server: LiveclassServer) -> None:
    token = server.token("s-ada", name="Ada")
    page = open_page(browser, f"{server.http_url}/?token={token}")
    state = page.get_by_test_id("conn-state")
    expect(state).to_have_attribute("data-state", "error", timeout=WAIT_MS)
    expect(state).to_contain_text("no access token", timeout=WAIT_MS)
    assert token not in page.url, "the refused token stayed in the address bar"
    assert page.evaluate("window.liveclass") is None
