"""The classroom page is light on the wire and a returning visit asks the server for nothing but
the page itself (tests/e2e/test_throttled_3g_browser.py times a throttled cold load).

Bytes are counted by Chromium itself (CDP ``Network.loadingFinished.encodedDataLength``: headers
and the body as sent, compressed or not); revalidations are the ``304`` answers and the requests
that reached the network (``Network.responseReceived`` not from a cache). See
docs/operations.md, "The web app's files".
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.conftest import VIEWPORT
from tests.server import LiveclassServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

WAIT_MS = 15_000
COLD_LOAD_MAX_BYTES = 350_000


@dataclass
class WireLog:
    """What one page fetched over HTTP, as Chromium's network domain saw it."""

    bytes_by_url: dict[str, int] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    from_network: list[tuple[str, int, str]] = field(default_factory=list)
    cached: set[str] = field(default_factory=set)

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_by_url.values())


def watch_network(context: BrowserContext, page: Page, conditions: Any = None) -> WireLog:
    """Record ``page``'s HTTP traffic (never its WebSocket frames) through a CDP session."""
    log = WireLog()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    if conditions is not None:
        cdp.send("Network.emulateNetworkConditions", conditions)

    def sent(event: dict[str, Any]) -> None:
        log.urls[event["requestId"]] = event["request"]["url"]

    def from_cache(event: dict[str, Any]) -> None:
        log.cached.add(event["requestId"])

    def received(event: dict[str, Any]) -> None:
        response = event["response"]
        if not response["url"].startswith("http"):
            return
        cached = (
            event["requestId"] in log.cached
            or response.get("fromDiskCache")
            or response.get("fromPrefetchCache")
        )
        if not cached:
            log.from_network.append((response["url"], response["status"], event["type"]))

    def finished(event: dict[str, Any]) -> None:
        url = log.urls.get(event["requestId"], "")
        if url.startswith("http"):
            log.bytes_by_url[url] = int(event["encodedDataLength"])

    cdp.on("Network.requestWillBeSent", sent)
    cdp.on("Network.requestServedFromCache", from_cache)
    cdp.on("Network.responseReceived", received)
    cdp.on("Network.loadingFinished", finished)
    return log


def student_url(server: LiveclassServer, identity: str) -> str:
    return f"{server.http_url}/#token={server.token(identity, 'student', name=identity)}"


def open_live(context: BrowserContext, url: str, conditions: Any = None) -> tuple[WireLog, float]:
    page = context.new_page()
    log = watch_network(context, page, conditions)
    started = time.monotonic()
    page.goto(url)
    expect(page.get_by_test_id("conn-state")).to_have_attribute(
        "data-state", "live", timeout=WAIT_MS
    )
    took = time.monotonic() - started
    page.wait_for_load_state("load")
    # What the page imports once Live (the whiteboard, the breakout panel) is part of its weight.
    page.wait_for_function("() => window.liveclass?.whiteboard !== undefined", timeout=WAIT_MS)
    page.wait_for_load_state("networkidle")
    page.close()
    return log, took


def test_a_cold_load_is_under_350_kb_and_a_returning_visit_revalidates_nothing(
    browser: Browser, server: LiveclassServer
) -> None:
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    try:
        cold, _ = open_live(context, student_url(server, "s-ada"))
        heaviest = sorted(cold.bytes_by_url.items(), key=lambda kv: -kv[1])[:5]
        assert cold.total_bytes < COLD_LOAD_MAX_BYTES, (
            f"cold load {cold.total_bytes} bytes on the wire; heaviest {heaviest}"
        )
        assert any(".js" in url for url in cold.bytes_by_url), cold.bytes_by_url  # modules counted

        again, _ = open_live(context, student_url(server, "s-ada"))
        asked = [(url, status) for url, status, kind in again.from_network if kind != "Document"]
        assert asked == [], f"a returning visit fetched or revalidated {asked}"
        documents = [hit for hit in again.from_network if hit[2] == "Document"]
        assert len(documents) == 1 and documents[0][1] in (200, 304), documents
    finally:
        context.close()


def test_the_page_names_every_module_by_content_hash(
    open_tab: Callable[..., Any], server: LiveclassServer
) -> None:
    tab = open_tab("student", "s-cy", name="Cy")
    expect(tab.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    loaded = tab.page.evaluate(
        "performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname)"
    )
    static = [path for path in loaded if path.startswith("/static/")]
    assert static, loaded
    unhashed = [path for path in static if not _looks_hashed(path)]
    assert unhashed == [], f"fetched under a name that is not content-hashed: {unhashed}"


def _looks_hashed(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    parts = name.split(".")
    return len(parts) >= 3 and re.fullmatch(r"[0-9a-f]{12}", parts[-2]) is not None
