"""The stage in real Chromium with real media: video tiles sized by the stage, a screen share
drawn large (never camera-sized) and taking the stage when it starts, and a fullscreen button.

Two pages (teacher and student) publish their fake cameras through the embedded SFU on
loopback only (the network and server fixtures of test_media_browser.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Tab
from tests.e2e.test_media_browser import (  # the loopback-only network, its Chromium and server
    WAIT_MS,
    LoopbackGuard,
    browser,  # noqa: F401
    loopback_only_network,  # noqa: F401
    server,  # noqa: F401
    tile,
)
from tests.e2e.test_media_controls_browser import expect_clean_finish, open_class, start_camera
from tests.server import LiveclassServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

#: The thumbnails the old page drew on a laptop were 236 px wide.
MIN_LAPTOP_TILE_PX = 320


def box(locator):
    found = locator.bounding_box()
    assert found is not None, f"{locator} is not drawn"
    return found


def test_tiles_fill_the_stage_and_a_screen_share_takes_it_large(
    open_tab: Callable[..., Tab],
    server: LiveclassServer,  # noqa: F811 (the fixture imported above)
    e2e_artifacts: Path,
) -> None:
    guard = LoopbackGuard()
    teacher, ada = open_class(open_tab, guard)
    start_camera(teacher)
    start_camera(ada)
    for viewer, other in ((teacher, "s-ada"), (ada, "t-rivera")):
        expect(tile(viewer, other, "camera")).to_have_attribute(
            "data-video", "playing", timeout=WAIT_MS
        )

    # The video view: two camera tiles, each far larger than a thumbnail, all inside the stage.
    ada.by("stage-show-video").click()
    expect(ada.by("stage")).to_have_attribute("data-stage", "video")
    expect(ada.by("whiteboard-panel")).to_be_hidden()
    stage = box(ada.by("stage"))
    ada.page.wait_for_timeout(300)  # one layout pass after the switch
    for identity in ("s-ada", "t-rivera"):
        drawn = box(tile(ada, identity, "camera"))
        assert drawn["width"] >= MIN_LAPTOP_TILE_PX, (identity, drawn)
        assert drawn["y"] + drawn["height"] <= stage["y"] + stage["height"] + 1, (drawn, stage)
    ada.screenshot(e2e_artifacts, "stage-student-video")

    # The teacher shares her screen: it takes the teacher's-screen viewer's stage (switching the
    # teacher's own page to the video view too) and is drawn across the stage, not camera-sized.
    teacher.by("stage-show-board").click()
    ada.by("stage-show-board").click()
    expect(ada.by("stage")).to_have_attribute("data-stage", "board")
    teacher.by("media-screen").click()
    screen = tile(ada, "t-rivera", "screen")
    expect(screen).to_have_attribute("data-video", "playing", timeout=WAIT_MS)
    expect(ada.by("stage")).to_have_attribute("data-stage", "video", timeout=WAIT_MS)
    ada.page.wait_for_timeout(300)
    shared = box(screen)
    camera = box(tile(ada, "t-rivera", "camera"))
    stage = box(ada.by("stage"))
    assert shared["width"] >= 0.9 * stage["width"] - 40, (shared, stage)
    assert shared["width"] * shared["height"] >= 2 * camera["width"] * camera["height"], (
        shared,
        camera,
    )
    assert shared["y"] + shared["height"] <= stage["y"] + stage["height"] + 1, (shared, stage)
    ada.screenshot(e2e_artifacts, "stage-student-screen-share")

    # On a phone the share still spans the stage.
    ada.page.set_viewport_size({"width": 390, "height": 844})
    ada.page.wait_for_timeout(300)
    shared = box(screen)
    stage = box(ada.by("stage"))
    assert shared["width"] >= 0.85 * stage["width"], (shared, stage)
    ada.screenshot(e2e_artifacts, "stage-student-screen-share-phone")

    # Fullscreen shows the stage alone.
    ada.page.set_viewport_size({"width": 1280, "height": 800})
    ada.by("stage-fullscreen").click()
    ada.page.wait_for_function(
        "document.fullscreenElement?.dataset.testid === 'stage'", timeout=WAIT_MS
    )
    expect(ada.by("stage-fullscreen")).to_have_text("Exit fullscreen")
    ada.by("stage-fullscreen").click()
    ada.page.wait_for_function("document.fullscreenElement === null", timeout=WAIT_MS)
    expect_clean_finish(guard, teacher, ada)
