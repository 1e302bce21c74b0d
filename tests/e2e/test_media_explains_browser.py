"""Media that explains itself, in real Chromium against a real ``liveclass serve``.

When media cannot connect the page says so, and what to do, within 15 s (issue 15's acceptance):
here the SFU announces 127.0.0.2, an address nothing listens on (it listens on 127.0.0.1 only),
so the browser's connectivity checks go unanswered, on loopback. A tile whose picture stopped
(lecture mode holds the person back, the staff turned the camera off, or no frame arrives) shows
the person's name and why, never a frozen last frame.

Both run in the loopback-only network namespace of ``test_media_browser.py`` (its fixtures and
:class:`LoopbackGuard` are reused), so every ICE candidate either way is on loopback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Tab
from tests.e2e.test_media_browser import (  # the loopback-only network and its Chromium
    ICE_ADDRESSES,
    WAIT_MS,
    LoopbackGuard,
    browser,  # noqa: F401
    expect_loopback_only,
    is_loopback,
    loopback_only_network,  # noqa: F401
)
from tests.e2e.test_media_controls_browser import ada_camera_playing, open_class
from tests.server import LiveclassServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

#: Issue 15: "the page shows the media error within 15 s".
MEDIA_ERROR_BOUND_S = 15.0


@pytest.fixture
def announced_ip() -> str:
    """``--sfu-announced-ip`` of the test's server: none (a test parametrizes it to set one)."""
    return ""


@pytest.fixture
def server(
    loopback_only_network: None,  # noqa: F811
    make_server: Callable[..., LiveclassServer],
    announced_ip: str,
) -> LiveclassServer:
    """The server of ``test_media_browser.py``; with ``announced_ip`` its SFU gathers on
    127.0.0.1 and writes that address into its candidates instead."""
    announce = ["--sfu-announced-ip", announced_ip] if announced_ip else []
    return make_server("--sfu-listen-ips", "127.0.0.1", *announce)


@pytest.mark.parametrize("announced_ip", ["127.0.0.2"])  # nothing listens there
def test_media_that_cannot_connect_says_so_within_15_s(
    announced_ip: str,
    open_tab: Callable[..., Tab],
    e2e_artifacts: Path,
) -> None:
    guard = LoopbackGuard()
    teacher, ada = open_class(open_tab, guard)
    expect(teacher.by("media-error")).to_be_hidden()

    started = time.monotonic()
    teacher.by("media-camera").click()
    error = teacher.by("media-error")
    expect(error).to_be_visible(timeout=MEDIA_ERROR_BOUND_S * 1000)
    took = time.monotonic() - started
    print(f"media error shown {took:.1f} s after Start camera")
    assert took < MEDIA_ERROR_BOUND_S
    expect(error).to_contain_text("Video and sound cannot connect")
    expect(error).to_contain_text("Try another network")
    expect(teacher.by("media-quality")).to_have_text("Not connected")
    toast = teacher.page.locator("[data-testid=toast][data-code=media_failed]")
    expect(toast).to_contain_text("Video and sound cannot connect")
    # The student subscribes to the teacher's camera through the same unreachable address.
    expect(ada.by("media-error")).to_be_visible(timeout=MEDIA_ERROR_BOUND_S * 1000)
    teacher.screenshot(e2e_artifacts, "media-cannot-connect")

    # Every candidate either way is on loopback, and the SFU's is the unreachable one: the
    # teacher's checks went to 127.0.0.2 and nowhere else.
    assert guard.stripped == [], guard.stripped
    assert guard.seen and all(is_loopback(address) for _, address in guard.seen), guard.seen
    assert ("ack", announced_ip) in guard.seen, guard.seen
    checked = teacher.page.evaluate(ICE_ADDRESSES)["checked"]
    assert {remote for _, remote in checked} <= {announced_ip}, checked

    # Retry tries again on new connections; the page keeps saying why while it cannot connect.
    teacher.by("media-retry").click()
    expect(error).to_be_hidden()
    expect(error).to_be_visible(timeout=MEDIA_ERROR_BOUND_S * 1000)
    assert teacher.errors == [] and ada.errors == []


def test_a_paused_tile_shows_the_name_and_why_never_a_frozen_frame(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    guard = LoopbackGuard()
    teacher, ada = open_class(open_tab, guard)
    ada_tile = ada_camera_playing(teacher, ada)
    expect(ada_tile).to_have_attribute("data-paused", "")
    expect(ada_tile.get_by_test_id("media-tile-why")).to_be_hidden()
    expect(teacher.by("media-error")).to_be_hidden()

    # Lecture mode: the SFU stops forwarding Ada's camera; her tile says so under her name.
    teacher.by("media-mode").click()
    expect(ada_tile).to_have_attribute("data-paused", "lecture", timeout=WAIT_MS)
    why = ada_tile.get_by_test_id("media-tile-why")
    expect(why).to_have_text("Lecture mode: only the staff share video, so Ada's camera is paused.")
    expect(ada_tile.locator(".media-avatar")).to_be_visible()
    expect(ada_tile.get_by_test_id("media-tile-name")).to_have_text("Ada")
    teacher.screenshot(e2e_artifacts, "media-tile-lecture")
    teacher.by("media-mode").click()
    expect(ada_tile).to_have_attribute("data-paused", "", timeout=WAIT_MS)
    expect(ada_tile.locator(".media-avatar")).to_be_hidden()

    # The staff turn Ada's camera off.
    row = teacher.roster_actions("s-ada")
    row.get_by_test_id("roster-mute-camera").click()
    expect(ada_tile).to_have_attribute("data-paused", "muted", timeout=WAIT_MS)
    expect(why).to_have_text("The staff turned off Ada's camera.")
    teacher.roster_actions("s-ada").get_by_test_id("roster-mute-camera").click()
    expect(ada_tile).to_have_attribute("data-paused", "", timeout=WAIT_MS)

    # Ada's page stops sending frames without unpublishing (a sender that stopped): the tile
    # stalls, says so, and shows the picture again once frames come back.
    ada.page.evaluate(
        """() => {
          const media = window.liveclass.media;
          window.__camera = media.local.camera;
          return media.senders.get("camera").sender.replaceTrack(null);
        }"""
    )
    expect(ada_tile).to_have_attribute("data-paused", "stalled", timeout=WAIT_MS)
    expect(why).to_contain_text("No picture is coming from Ada")
    ada.page.evaluate(
        "window.liveclass.media.senders.get('camera').sender.replaceTrack(window.__camera)"
    )
    expect(ada_tile).to_have_attribute("data-paused", "", timeout=WAIT_MS)
    expect_loopback_only(guard, teacher, ada)
    assert teacher.errors == [] and ada.errors == []
