""" "Stop camera" and "Stop sharing" stop for real, in real Chromium, through a real ``liveclass``.

A teacher and a student (Ada) with Chromium's fake devices, in the loopback-only network namespace
of ``test_media_browser.py`` (its fixtures and :class:`LoopbackGuard` are reused). When Ada stops
her camera: her local track is ``ended`` (a real camera's light goes off), her publish connection
sends no more frames, the SFU drops the producer (``liveclass_sfu_producers`` on ``/metrics``) and
the teacher's tile of it is gone within 2 s. Starting it again works on the same connection; the
screen share stops the same way.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Tab
from tests.e2e.test_media_browser import (  # the loopback-only network, its Chromium and server
    WAIT_MS,
    LoopbackGuard,
    browser,  # noqa: F401
    expect_decoding,
    expect_live,
    loopback_only_network,  # noqa: F401
    server,  # noqa: F401
    tile,
)
from tests.e2e.test_media_controls_browser import expect_clean_finish, open_class
from tests.server import LiveclassServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

#: The tile must leave the other page within this (issue 12: "within a second"; CI slack).
GONE_MS = 2_000

# Frames the publish connection has sent of one source's track (outbound-rtp), by its mid.
FRAMES_SENT = """async (source) => {
  const media = window.liveclass.media;
  const mid = media.senders.get(source)?.mid;
  if (!media.publishPc || mid == null) return null;
  for (const s of (await media.publishPc.getStats()).values()) {
    if (s.type === "outbound-rtp" && s.mid === mid) return s.framesSent ?? 0;
  }
  return null;
}"""


def producers(sfu: LiveclassServer) -> float:
    _, body, _ = sfu.get("/metrics")
    found = re.search(rb"^liveclass_sfu_producers (\S+)$", body, re.M)
    assert found is not None, "no liveclass_sfu_producers in /metrics"
    return float(found.group(1))


def wait_for_producers(sfu: LiveclassServer, count: int) -> None:
    deadline = time.monotonic() + WAIT_MS / 1000
    while (now := producers(sfu)) != count:
        assert time.monotonic() < deadline, f"the SFU has {now} producers, not {count}"
        time.sleep(0.1)


def stop_and_expect_gone(publisher: Tab, viewer: Tab, button: str, source: str) -> float:
    """Click ``button`` (a running source's stop) on the publisher's page: its track ends, and
    the viewer's tile of it is gone within GONE_MS. Returns how long that took (ms)."""
    page = publisher.page
    page.evaluate(f"window.__stopped = window.liveclass.media.local.{source}")
    assert page.evaluate("window.__stopped.readyState") == "live"
    started = time.monotonic()
    publisher.by(button).click()
    expect(tile(viewer, publisher_identity(publisher), source)).to_have_count(0, timeout=GONE_MS)
    took = (time.monotonic() - started) * 1000
    assert page.evaluate("window.__stopped.readyState") == "ended", "the track was not stopped"
    assert page.evaluate(f"window.liveclass.media.local.{source}") is None
    expect(publisher.by(button)).to_have_attribute("aria-pressed", "false")
    return took


def publisher_identity(tab: Tab) -> str:
    return str(tab.page.evaluate("window.liveclass.model.me.identity"))


def expect_not_sending(tab: Tab, source: str) -> None:
    """The publish connection sends no frames of ``source`` any more (two readings 1 s apart)."""
    tab.page.wait_for_timeout(300)  # what was in flight
    before = tab.page.evaluate(FRAMES_SENT, source)
    tab.page.wait_for_timeout(1000)
    after = tab.page.evaluate(FRAMES_SENT, source)
    print(f"{tab.label} {source} framesSent after stop: {before} -> {after}")
    assert before == after, f"{tab.label} still sends {source}: framesSent {before} -> {after}"


def test_stop_camera_ends_the_track_removes_the_tile_and_the_producer_then_starts_again(
    open_tab: Callable[..., Tab],
    server: LiveclassServer,  # noqa: F811 (the fixture imported above)
    e2e_artifacts: Path,
) -> None:
    guard = LoopbackGuard()
    teacher, ada = open_class(open_tab, guard)
    ada.by("media-camera").click()
    expect(tile(teacher, "s-ada", "camera")).to_have_attribute(
        "data-video", "playing", timeout=WAIT_MS
    )
    expect_decoding(teacher, "s-ada", "camera")
    wait_for_producers(server, 1)

    took = stop_and_expect_gone(ada, teacher, "media-camera", "camera")
    print(f"\nAda's camera tile gone from the teacher's page {took:.0f} ms after Stop camera")
    expect(ada.by("media-camera")).to_have_text("Start camera")
    expect(tile(ada, "s-ada", "camera")).to_have_count(0)  # her own preview too
    wait_for_producers(server, 0)
    expect_not_sending(ada, "camera")

    # Start camera again: the same publish connection, a new producer, decoded again.
    publish_pc = ada.page.evaluate_handle("window.liveclass.media.publishPc")
    ada.by("media-camera").click()
    expect(ada.by("media-camera")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
    expect(tile(teacher, "s-ada", "camera")).to_have_attribute(
        "data-video", "playing", timeout=WAIT_MS
    )
    expect_decoding(teacher, "s-ada", "camera")
    wait_for_producers(server, 1)
    same = ada.page.evaluate("(pc) => pc === window.liveclass.media.publishPc", publish_pc)
    assert same, "starting again opened a new publish connection"

    # The screen share stops the same way.
    ada.by("media-screen").click()
    expect(tile(teacher, "s-ada", "screen")).to_have_attribute(
        "data-video", "playing", timeout=WAIT_MS
    )
    wait_for_producers(server, 2)
    took = stop_and_expect_gone(ada, teacher, "media-screen", "screen")
    print(f"Ada's screen tile gone from the teacher's page {took:.0f} ms after Stop sharing")
    wait_for_producers(server, 1)
    expect_decoding(teacher, "s-ada", "camera")  # the camera goes on
    ada.screenshot(e2e_artifacts, "media-stop-student")
    expect_live(teacher)
    expect_clean_finish(guard, teacher, ada)
