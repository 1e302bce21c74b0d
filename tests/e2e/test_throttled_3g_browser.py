"""On a throttled 3G-like link (Chromium's network emulation: 400 kbit/s each way, 400 ms added to
every request) a student opening the class link is Live within 5 s.

What makes it: the page asks for every module it needs to join at once (``modulepreload``,
rendered by signaling/static_site.py) instead of one import level per round trip; the whiteboard
with the Yjs stack, the breakout panel and the device check load only once the class is Live
(clients/web/views/deferred.js); the files are gzip-encoded, the app's modules minified by rjsmin,
and the vendored Yjs stack is one minified module. Measured: Live after 4.3-4.4 s with 32 requests
and 81 KB on the wire (6.1-6.4 s and 141 KB when everything loaded before joining).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.e2e.conftest import VIEWPORT
from tests.e2e.test_page_weight_browser import open_live, student_url
from tests.server import LiveclassServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

# CDP Network.emulateNetworkConditions: bytes per second, milliseconds.
THROTTLED_3G = {
    "offline": False,
    "latency": 400,
    "downloadThroughput": 400_000 / 8,
    "uploadThroughput": 400_000 / 8,
}
LIVE_WITHIN_S = 5.0


def test_a_student_on_a_throttled_3g_link_is_live_within_5_s(
    browser: Browser, server: LiveclassServer
) -> None:
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    try:
        log, took = open_live(context, student_url(server, "s-bea"), THROTTLED_3G)
        assert took < LIVE_WITHIN_S, (
            f"Live after {took:.1f} s on 400 kbit/s, 400 ms: {len(log.bytes_by_url)} requests, "
            f"{log.total_bytes} bytes"
        )
        print(f"Live after {took:.2f} s: {len(log.bytes_by_url)} requests, {log.total_bytes} bytes")
    finally:
        context.close()
