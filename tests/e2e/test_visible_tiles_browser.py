"""Receiver-driven video on a phone, in real Chromium: the SFU sends a student only the video of
the tiles she can see (docs/protocol.md, ``media.view``; clients/web/views/media.js).

A class of seven aiortc publishers (loadtest/media_bot.py: a 320x240 15 fps VP8 camera and an Opus
microphone each; one of them the teacher), and one student, Ada, on a phone held upright
(390x844) in Chromium running the web app. Her video strip shows three or four of the seven tiles;
the rest are scrolled off to the side. What her page receives is read from its own subscribe
connection (``getStats()``, inbound-rtp by MID, mapped to the tiles through
``window.liveclass.media.remote``): the video of every tile on screen decodes (``framesDecoded``
rising), the video of every tile off screen does not (``framesDecoded`` still), and the sound of
all seven keeps coming. Which tiles are on screen is measured, not assumed: a tile is on screen
when some of its box is inside the viewport and inside every scrolling box around it. Scrolling
the strip swaps them: the tiles that come on screen decode within :data:`START_BOUND_MS` and
those that left stop within :data:`STOP_BOUND_MS`; the times are printed.

A classmate on screen who starts their camera again (a new producer in the same tile) is received
with no scroll. The spotlight and a screen share are what the class is looking at: their video
keeps coming while they are off screen (and a spotlight that ends goes back to being a tile like
the others, and leaves the student's stage as she chose it).

Loopback only, as in test_media_browser.py (its fixtures): the server, the aiortc publishers (a
thread of this process, started inside the namespace) and Chromium run in a network namespace of
the test's own whose only interface is ``lo``, every ICE candidate either way is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, ViewportSize, expect

from clients import ClassroomClient
from loadtest.media_bot import PatternVideoTrack, Publisher
from sfu.ice import use_host_addresses
from tests.e2e.conftest import Tab
from tests.e2e.test_media_browser import (  # the loopback-only network, its Chromium and server
    WAIT_MS,
    LoopbackGuard,
    browser,
    expect_loopback_only,
    loopback_only_network,
    server,
)
from tests.integration.media_peers import joined
from tests.server import LiveclassServer

__all__ = ["browser", "loopback_only_network", "server"]

#: The frames that carry SDP for a page that only receives.
SUBSCRIBED = frozenset({"media.offer", "media.answer"})

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

T = TypeVar("T")

#: A phone held upright (CSS pixels).
PHONE = ViewportSize(width=390, height=844)
#: The classmates who publish, in the order of their tiles (by name), the teacher last.
PUPILS = [f"pupil-{i}" for i in range(1, 7)]
TEACHER = "t-rivera"
#: From the scroll to the first frame decoded of a tile that came on screen: the page waits up
#: to 250 ms for the scroll to settle, then ``media.view`` and a keyframe request (PLI) go to the
#: publisher, whose next frame (15 fps) is a keyframe; measured 0.4-0.6 s on a loaded 2-core box.
START_BOUND_MS = 2_000
#: From the scroll to the last frame decoded of a tile that left the screen.
STOP_BOUND_MS = 2_000
#: How long each scroll is watched: long enough that a video which stopped within STOP_BOUND_MS
#: is then seen still for 2 s.
WATCH_MS = STOP_BOUND_MS + 2_000


class Classmates:
    """The class's publishers: aiortc peers on an event loop of their own, in a thread (the
    Playwright sync API holds the test's). Started inside the test's network namespace (a thread
    shares its creator's) and gathering ICE candidates on 127.0.0.1 only."""

    def __init__(self, server: LiveclassServer) -> None:
        self.server = server
        self.made: list[Any] = []
        self.clients: dict[str, ClassroomClient] = {}
        self.publishers: dict[str, Publisher] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = WAIT_MS / 1000) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=timeout)

    def publish(self, identity: str, *, screen: bool = False) -> None:
        """``identity`` joins (the teacher's role for :data:`TEACHER`, else a student's) and
        publishes a camera and a microphone, and with ``screen`` a 640x360 5 fps screen share."""

        async def start() -> None:
            role = "teacher" if identity == TEACHER else "student"
            client = await joined(self.server, self.made, identity, role=role)
            publisher = Publisher(client, video=PatternVideoTrack(320, 240, fps=15))
            publisher.screen = PatternVideoTrack(640, 360, fps=5)
            self.made.append(publisher)
            await publisher.start(camera=True, microphone=True, screen=screen)
            self.clients[identity] = client
            self.publishers[identity] = publisher

        self.call(start())

    def restart_camera(self, identity: str) -> None:
        """``identity`` stops their camera and starts it again: a new producer, the same tile."""

        async def restart() -> None:
            publisher = self.publishers[identity]
            await publisher.unpublish("camera")
            await publisher.republish("camera")

        self.call(restart())

    def spotlight(self, identity: str | None) -> None:
        """The teacher puts ``identity`` in the spotlight (None: clears it)."""
        self.call(self.clients[TEACHER].spotlight(identity))

    def close(self) -> None:
        async def close_all() -> None:
            for peer in reversed(self.made):
                with contextlib.suppress(Exception):
                    await peer.close()

        try:
            self.call(close_all())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()


@pytest.fixture
def classmates(server: LiveclassServer) -> Iterator[Classmates]:
    use_host_addresses(["127.0.0.1"])
    made = Classmates(server)
    try:
        yield made
    finally:
        made.close()
        use_host_addresses(None)


# -- reading the student's page -------------------------------------------------------------------

# Each tile of the video strip, keyed "identity:source", and whether some of it is on screen:
# inside the viewport and inside every box around it that clips what overflows it.
TILES_ON_SCREEN = """() => {
  const out = {};
  const tiles = document.querySelectorAll("[data-testid=media-tiles] > [data-testid=media-tile]");
  for (const node of tiles) {
    const r = node.getBoundingClientRect();
    let [left, top, right, bottom] = [r.left, r.top, r.right, r.bottom];
    for (let box = node.parentElement; box; box = box.parentElement) {
      const style = getComputedStyle(box);
      if (style.overflowX === "visible" && style.overflowY === "visible") continue;
      const c = box.getBoundingClientRect();
      [left, top, right, bottom] = [Math.max(left, c.left), Math.max(top, c.top),
        Math.min(right, c.right), Math.min(bottom, c.bottom)];
    }
    [left, top] = [Math.max(left, 0), Math.max(top, 0)];
    [right, bottom] = [Math.min(right, innerWidth), Math.min(bottom, innerHeight)];
    out[`${node.dataset.identity}:${node.dataset.source}`] = right > left && bottom > top;
  }
  return out;
}"""

# What the subscribe connection received of each tile's tracks, keyed "identity:source":
# {video: framesDecoded, audio: packetsReceived} (0 until the first packet).
RECEIVED = """async () => {
  const media = window.liveclass.media;
  const byMid = new Map();
  for (const r of media.remote.values()) byMid.set(r.mid, r);
  const out = {};
  for (const s of (await media.subscribePc.getStats()).values()) {
    const r = byMid.get(s.mid);
    if (s.type !== "inbound-rtp" || !r) continue;
    const key = `${r.identity}:${r.source === "microphone" ? "camera" : r.source}`;
    out[key] ??= {video: 0, audio: 0};
    if (s.kind === "video") out[key].video = s.framesDecoded ?? 0;
    else out[key].audio = s.packetsReceived ?? 0;
  }
  return out;
}"""

# Scroll the video strip to `left` (px; -1: the end).
SCROLL_TO = """(left) => {
  const strip = document.querySelector("[data-testid=media-tiles]");
  strip.scrollLeft = left < 0 ? strip.scrollWidth : left;
}"""

# Scroll the video strip to `left` (px; -1: the end), then for `ms` read getStats() every 50 ms:
# for each tile's video, when (ms after the scroll) framesDecoded first rose and last rose.
SCROLL_AND_WATCH = """async ({left, ms}) => {
  const read = async () => {
    const media = window.liveclass.media;
    const byMid = new Map();
    for (const r of media.remote.values()) if (r.kind === "video") byMid.set(r.mid, r);
    const out = {};
    for (const s of (await media.subscribePc.getStats()).values()) {
      const r = byMid.get(s.mid);
      if (s.type === "inbound-rtp" && r) out[`${r.identity}:${r.source}`] = s.framesDecoded ?? 0;
    }
    return out;
  };
  const strip = document.querySelector("[data-testid=media-tiles]");
  const before = await read();
  const t0 = performance.now();
  strip.scrollLeft = left < 0 ? strip.scrollWidth : left;
  const first = {}, last = {}, seen = {...before};
  while (performance.now() - t0 < ms) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = await read(), at = Math.round(performance.now() - t0);
    for (const [key, frames] of Object.entries(now)) {
      if (frames > (seen[key] ?? 0)) {
        first[key] ??= at;
        last[key] = at;
      }
      seen[key] = frames;
    }
  }
  return {first, last};
}"""


# The producer id of a tile's video ("identity:source"), or null.
PRODUCER_OF = """(key) => {
  for (const r of window.liveclass.media.remote.values()) {
    if (`${r.identity}:${r.source}` === key && r.kind === "video") return r.producer_id;
  }
  return null;
}"""


def on_screen(tab: Tab) -> dict[str, bool]:
    result: dict[str, bool] = tab.page.evaluate(TILES_ON_SCREEN)
    return result


def received(tab: Tab) -> dict[str, dict[str, int]]:
    result: dict[str, dict[str, int]] = tab.page.evaluate(RECEIVED)
    return result


def rising(tab: Tab, window_ms: int = 1_000) -> tuple[set[str], set[str]]:
    """The tiles whose video, and whose sound, arrived during ``window_ms``."""
    before = received(tab)
    tab.page.wait_for_timeout(window_ms)
    after = received(tab)

    def grew(kind: str) -> set[str]:
        return {k for k, v in after.items() if v[kind] > before.get(k, {}).get(kind, 0)}

    return grew("video"), grew("audio")


def expect_video_of(tab: Tab, wanted: set[str], what: str) -> set[str]:
    """Within WAIT_MS, the page decodes the video of exactly ``wanted`` (tile keys) over a 1 s
    window: theirs rises, every other tile's stays still. Returns the tiles whose sound arrived
    in that window."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        video, audio = rising(tab)
        if video == wanted:
            print(f"{what}: video of {sorted(video)}; sound of {len(audio)} tiles")
            return audio
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: wanted the video of {sorted(wanted)}, got {sorted(video)}")


def scroll_strip(tab: Tab, left: int) -> tuple[dict[str, int], dict[str, int]]:
    """Scroll the strip to ``left`` (-1: the end) and watch WATCH_MS: when each tile's video
    first and last decoded a frame, ms after the scroll."""
    watched: dict[str, dict[str, int]] = tab.page.evaluate(
        SCROLL_AND_WATCH, {"left": left, "ms": WATCH_MS}
    )
    return watched["first"], watched["last"]


def open_phone(browser: Browser, server: LiveclassServer, guard: LoopbackGuard) -> Tab:
    """Ada's classroom page on a phone held upright, its /ws through ``guard``."""
    context = browser.new_context(viewport=PHONE, locale="en-US", is_mobile=True, has_touch=True)
    page = context.new_page()
    tab = Tab("student", context, page)
    page.on("pageerror", lambda exc: tab.errors.append(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda msg: (
            tab.errors.append(f"console.error: {msg.text}") if msg.type == "error" else None
        ),
    )
    guard.install(page)
    page.goto(f"{server.http_url}/#token={server.token('s-ada', 'student', name='Ada')}")
    expect(tab.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    page.wait_for_function("() => window.liveclass.media.subscribed === true", timeout=WAIT_MS)
    return tab


def expect_tiles(tab: Tab, count: int) -> None:
    tiles = tab.page.locator("[data-testid=media-tiles] > [data-testid=media-tile]")
    expect(tiles).to_have_count(count, timeout=WAIT_MS)
    cameras = tiles.and_(tab.page.locator("[data-source=camera]"))
    for i in range(cameras.count()):
        expect(cameras.nth(i)).to_have_attribute("data-audio", "true", timeout=WAIT_MS)


def shown(screen: dict[str, bool]) -> set[str]:
    return {key for key, visible in screen.items() if visible}


def test_a_phone_receives_the_video_of_the_tiles_on_screen_only_and_scrolling_swaps_them(
    browser: Browser, server: LiveclassServer, classmates: Classmates, e2e_artifacts: Path
) -> None:
    for identity in (*PUPILS, TEACHER):
        classmates.publish(identity)
    guard = LoopbackGuard()
    ada = open_phone(browser, server, guard)
    expect_tiles(ada, 7)
    expect(ada.by("stage")).to_have_attribute("data-stage", "board")

    # Upright, the strip shows a few tiles; the video of those alone comes, the sound of all.
    screen = on_screen(ada)
    visible, hidden = shown(screen), set(screen) - shown(screen)
    print(f"\non screen: {sorted(visible)}; off screen: {sorted(hidden)}")
    assert 2 <= len(visible) <= 4 and len(hidden) >= 3, screen
    heard = expect_video_of(ada, visible, "upright")
    assert heard == set(screen), f"sound stopped: {sorted(set(screen) - heard)}"
    ada.screenshot(e2e_artifacts, "visible-tiles-phone")

    # Scrolling to the end swaps them: the tiles that came on screen start, those that left stop.
    for left in (-1, 0):
        first, last = scroll_strip(ada, left)
        screen = on_screen(ada)
        now = shown(screen)
        came, left_screen = now - visible, visible - now
        assert came and left_screen, f"the scroll to {left} changed nothing on screen: {screen}"
        starts = {key: first.get(key) for key in came}
        stops = {key: last.get(key) for key in left_screen}
        print(f"scroll to {left}: started (ms) {starts}; last frame of those that left {stops}")
        for key, ms in starts.items():
            assert ms is not None and ms < START_BOUND_MS, f"{key} came on screen: started {ms}"
        for key, ms in stops.items():
            assert ms is None or ms < STOP_BOUND_MS, f"{key} left the screen: last frame {ms}"
        for key in set(screen) - now:
            assert last.get(key, 0) < STOP_BOUND_MS, f"{key} is off screen but decoded at {last}"
        heard = expect_video_of(ada, now, f"scrolled to {left}")
        assert heard == set(screen), f"sound stopped: {sorted(set(screen) - heard)}"
        visible = now

    # A classmate on screen starts their camera again (a new producer in the same tile): the
    # page asks for the new video with no scroll, and decodes it.
    restarted = f"{PUPILS[0]}:camera"
    assert restarted in visible, visible
    before = ada.page.evaluate(PRODUCER_OF, restarted)
    classmates.restart_camera(PUPILS[0])
    ada.page.wait_for_function(
        "([key, before]) => { const p = window.liveclass.media.remote; return [...p.values()]"
        ".some((r) => `${r.identity}:${r.source}` === key && r.kind === 'video'"
        " && r.producer_id !== before); }",
        arg=[restarted, before],
        timeout=WAIT_MS,
    )
    expect_video_of(ada, visible, "a camera started again")

    expect_loopback_only(guard, ada, signalled=SUBSCRIBED)
    assert ada.errors == [], ada.errors


def test_the_spotlight_and_a_screen_share_keep_their_video_when_scrolled_off_screen(
    browser: Browser, server: LiveclassServer, classmates: Classmates, e2e_artifacts: Path
) -> None:
    classmates.publish(TEACHER, screen=True)
    for identity in PUPILS:
        classmates.publish(identity)
    classmates.spotlight(PUPILS[-1])
    guard = LoopbackGuard()
    ada = open_phone(browser, server, guard)
    expect_tiles(ada, 8)
    spot, share = f"{PUPILS[-1]}:camera", f"{TEACHER}:screen"

    # The spotlight and the screen share put the video on the stage: both drawn large, one above
    # the other, the small tiles below; upright, the stage shows little more than the first.
    expect(ada.by("stage")).to_have_attribute("data-stage", "video")
    screen = on_screen(ada)
    print(f"\nvideo stage: on screen {sorted(shown(screen))}")
    assert not all(screen.values()), screen
    expect_video_of(ada, shown(screen) | {spot, share}, "video stage")
    ada.screenshot(e2e_artifacts, "visible-tiles-phone-video-stage")

    # Ada goes back to the whiteboard, with the strip: the spotlight first, the screen share last.
    ada.by("stage-show-board").click()
    expect(ada.by("stage")).to_have_attribute("data-stage", "board")
    tiles = ada.page.evaluate("window.liveclass.tiles()")
    assert [tiles[0]["identity"], tiles[0]["spotlight"]] == [PUPILS[-1], True], tiles
    assert [tiles[-1]["identity"], tiles[-1]["source"]] == [TEACHER, "screen"], tiles

    for left in (0, -1):
        ada.page.evaluate(SCROLL_TO, left)
        screen = on_screen(ada)
        print(f"scrolled to {left}: on screen {sorted(shown(screen))}")
        assert not screen[share if left == 0 else spot], screen
        expect_video_of(ada, shown(screen) | {spot, share}, f"board, scrolled to {left}")
    ada.screenshot(e2e_artifacts, "visible-tiles-phone-spotlight-kept")

    # The spotlight ends: its tile goes back among the others, off screen, and its video stops.
    # (Ada stays on the whiteboard: a spotlight that ends does not take the stage.)
    classmates.spotlight(None)
    expect(ada.page.locator("[data-testid=media-tile][data-spotlight=true]")).to_have_count(
        0, timeout=WAIT_MS
    )
    expect(ada.by("stage")).to_have_attribute("data-stage", "board")
    ada.page.evaluate(SCROLL_TO, 0)
    screen = on_screen(ada)
    assert not screen[spot], screen
    expect_video_of(ada, shown(screen) | {share}, "spotlight cleared")

    expect_loopback_only(guard, ada, signalled=SUBSCRIBED)
    assert ada.errors == [], ada.errors
