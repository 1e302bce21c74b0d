"""The staff's media controls in real Chromium, carried out by the SFU of a real ``liveclass``.

A teacher and a student (Ada), each with Chromium's fake camera and microphone, in the same
loopback-only network namespace as ``test_media_browser.py`` (its fixtures and
:class:`LoopbackGuard` are reused, so every ICE candidate either way is on loopback). The teacher
acts only through the page's buttons; what the SFU forwards is read from the teacher's
``getStats()``: a muted or lecture-blocked camera must stop decoding (``framesDecoded`` no longer
rising), and decode again once allowed. The student's page must say what happened to her.

The last test runs the node on a Redis Cluster with two ``liveclass sfu`` worker processes (all in
the same namespace) and SIGKILLs the worker holding the class: both pages get ``media.reset``,
say so, and publish the same tracks and subscribe again, through the other worker, by themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect

from tests.e2e.conftest import VIEWPORT, Tab
from tests.e2e.test_media_browser import (  # the loopback-only network, its Chromium and server
    WAIT_MS,
    LoopbackGuard,
    browser,  # noqa: F401
    expect_decoding,
    expect_hearing,
    expect_live,
    expect_loopback_only,
    frames_decoded,
    inbound_from,
    loopback_only_network,  # noqa: F401
    server,  # noqa: F401
    tile,
    wait_for_inbound,
)
from tests.redis_cluster import RedisCluster
from tests.server import LiveclassServer
from tests.sfu_worker import SfuWorker

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

#: How long framesDecoded must stay the same to count as stopped (the fake camera sends ~30 fps).
STILL_MS = 1_000


def expect_frames_stop(viewer: Tab, identity: str, source: str = "camera") -> int:
    """``source`` of ``identity`` stops decoding on ``viewer``'s page within WAIT_MS: two readings
    STILL_MS apart are equal, and so is a third. Returns the frozen count."""
    deadline = time.monotonic() + WAIT_MS / 1000
    last = frames_decoded(inbound_from(viewer, identity), source)
    while True:
        viewer.page.wait_for_timeout(STILL_MS)
        now = frames_decoded(inbound_from(viewer, identity), source)
        if now == last:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"{viewer.label}: {source} of {identity} still decoding: {last} -> {now}")
        last = now
    viewer.page.wait_for_timeout(STILL_MS)
    after = frames_decoded(inbound_from(viewer, identity), source)
    print(f"{viewer.label} <- {identity} {source}: stopped at framesDecoded {now} (then {after})")
    assert after == now, f"{viewer.label}: {source} of {identity} decoded again: {now} -> {after}"
    return now


def expect_frames_resume(viewer: Tab, identity: str, since: int, source: str = "camera") -> None:
    """``source`` of ``identity`` decodes again on ``viewer``'s page: past ``since``, and rising."""
    wait_for_inbound(
        viewer, identity, lambda s: frames_decoded(s, source) > since, f"{source} decoding again"
    )
    expect_decoding(viewer, identity, source)


def ada_camera_playing(teacher: Tab, ada: Tab) -> Locator:
    """Ada starts her camera; her tile on the teacher's page once it plays and decodes."""
    start_camera(ada)
    ada_tile = tile(teacher, "s-ada", "camera")
    expect(ada_tile).to_have_attribute("data-video", "playing", timeout=WAIT_MS)
    expect_decoding(teacher, "s-ada", "camera")
    return ada_tile


def toast(tab: Tab, code: str) -> Locator:
    return tab.page.locator(f'[data-testid=toast][data-code="{code}"]')


def tiles(tab: Tab) -> Locator:
    return tab.page.locator("[data-testid=media-tiles] > [data-testid=media-tile]")


def open_class(open_tab: Callable[..., Tab], guard: LoopbackGuard) -> tuple[Tab, Tab]:
    teacher = open_tab(
        "teacher", "t-rivera", "teacher", name="Ms Rivera", before_load=guard.install
    )
    ada = open_tab("student", "s-ada", name="Ada", before_load=guard.install)
    for tab in (teacher, ada):
        expect_live(tab)
    return teacher, ada


def start_camera(tab: Tab) -> None:
    tab.by("media-camera").click()
    expect(tab.by("media-camera")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)


def expect_no_page_errors(*tabs: Tab) -> None:
    for tab in tabs:
        assert tab.errors == [], f"{tab.label} page logged errors: {tab.errors}"


def expect_clean_finish(guard: LoopbackGuard, *tabs: Tab) -> None:
    """Every ICE candidate stayed on loopback, no error toast is up, no page error happened."""
    expect_loopback_only(guard, *tabs)
    for tab in tabs:
        expect(tab.page.locator("[data-testid=toast].toast-error")).to_have_count(0)
    expect_no_page_errors(*tabs)


def test_teacher_mutes_a_students_camera_and_the_sfu_stops_then_resumes_forwarding_it(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    guard = LoopbackGuard()
    teacher, ada = open_class(open_tab, guard)
    ada_tile = ada_camera_playing(teacher, ada)

    # Nobody mutes the teacher: her own row's mute buttons are disabled; a student gets none.
    own_row = teacher.roster_actions("t-rivera")
    expect(own_row.get_by_test_id("roster-mute-camera")).to_be_disabled()
    expect(own_row.get_by_test_id("roster-mute-microphone")).to_be_disabled()
    expect(ada.page.locator("[data-testid^=tile-], [data-testid^=roster-mute-]")).to_have_count(0)

    # The teacher mutes Ada's camera from Ada's tile.
    ada_tile.get_by_test_id("tile-mute-camera").click()
    expect(ada_tile.get_by_test_id("tile-mute-camera")).to_have_attribute(
        "aria-pressed", "true", timeout=WAIT_MS
    )
    expect(ada_tile).to_have_attribute("data-muted", "camera")
    expect(teacher.roster_actions("s-ada").get_by_test_id("roster-mute-camera")).to_have_attribute(
        "aria-pressed", "true"
    )
    frozen = expect_frames_stop(teacher, "s-ada", "camera")

    # Ada is told, and cannot lift it herself; she can still stop her camera (not start it).
    expect(toast(ada, "media-muted")).to_contain_text("Ms Rivera muted your camera")
    expect(ada.by("media-camera")).to_have_attribute("data-staff-muted", "true")
    expect(ada.by("media-camera")).to_have_text("Stop camera")
    expect(ada.by("media-camera")).to_be_enabled()
    expect(ada.by("media-screen")).to_have_text("Screen muted by staff")  # a camera mute covers it
    expect(ada.by("media-screen")).to_be_disabled()
    expect(ada.by("media-notice")).to_contain_text("Muted by staff: camera")
    own_tile = ada.page.locator("[data-testid=media-tile][data-local=true]")
    expect(own_tile).to_have_attribute("data-muted", "camera")
    ada.screenshot(e2e_artifacts, "media-controls-student-muted")
    teacher.screenshot(e2e_artifacts, "media-controls-teacher-muted")

    # The teacher unmutes from the roster: frames rise again; Ada's toggle is hers again.
    teacher.roster_actions("s-ada").get_by_test_id("roster-mute-camera").click()
    expect(ada_tile).to_have_attribute("data-muted", "", timeout=WAIT_MS)
    expect_frames_resume(teacher, "s-ada", frozen, "camera")
    expect(toast(ada, "media-unmuted")).to_contain_text("unmuted your camera")
    expect(ada.by("media-camera")).to_have_attribute("data-staff-muted", "false")
    expect(ada.by("media-camera")).to_have_text("Stop camera")
    expect(ada.by("media-camera")).to_be_enabled()
    expect(ada.by("media-notice")).to_be_hidden()

    expect_clean_finish(guard, teacher, ada)


def test_a_student_pauses_others_video_in_one_click_and_keeps_their_sound(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    guard = LoopbackGuard()
    teacher, ada = open_class(open_tab, guard)
    start_camera(teacher)
    teacher.by("media-microphone").click()
    teacher_tile = tile(ada, "t-rivera", "camera")
    expect(teacher_tile).to_have_attribute("data-video", "playing", timeout=WAIT_MS)
    expect_decoding(ada, "t-rivera", "camera")

    # Sound only, in one click: the SFU stops sending the video (media.view), not the sound.
    ada.by("media-pause-video").click()
    expect(ada.by("media-pause-video")).to_have_attribute("aria-pressed", "true")
    expect(ada.by("media-pause-video")).to_have_text("Show others' video")
    frozen = expect_frames_stop(ada, "t-rivera", "camera")
    expect(teacher_tile).to_have_attribute("data-paused", "mine", timeout=WAIT_MS)
    expect(teacher_tile).to_contain_text("You paused others' video")
    expect_hearing(ada, "t-rivera")
    ada.screenshot(e2e_artifacts, "media-others-video-paused")

    ada.by("media-pause-video").click()
    expect(ada.by("media-pause-video")).to_have_attribute("aria-pressed", "false")
    expect_frames_resume(ada, "t-rivera", frozen, "camera")
    expect(teacher_tile).to_have_attribute("data-paused", "", timeout=WAIT_MS)
    expect_clean_finish(guard, teacher, ada)


def test_lecture_mode_stops_a_students_video_and_refuses_her_publish_until_permitted(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    guard = LoopbackGuard()
    teacher, ada = open_class(open_tab, guard)
    start_camera(ada)
    expect_decoding(teacher, "s-ada", "camera")

    # The teacher switches to lecture mode from the header.
    expect(ada.by("media-mode")).to_be_hidden()
    teacher.by("media-mode").click()
    expect(teacher.by("media-mode")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
    expect(ada.by("media-lecture")).to_be_visible(timeout=WAIT_MS)
    expect(toast(ada, "media-mode")).to_contain_text("Lecture mode")
    expect(ada.by("media-notice")).to_contain_text("Lecture mode")
    frozen = expect_frames_stop(teacher, "s-ada", "camera")
    expect(tile(teacher, "s-ada", "camera")).to_have_attribute("data-blocked", "true")

    # Ada's toggles that are off cannot be turned on; the one that is on can be turned off.
    expect(ada.by("media-microphone")).to_be_disabled()
    expect(ada.by("media-microphone")).to_have_attribute("data-blocked", "true")
    expect(ada.by("media-camera")).to_be_enabled()
    # A page that publishes anyway (here: the app's own toggle called directly) is refused by the
    # server, says why, and leaves the microphone off.
    ada.page.evaluate("window.liveclass.media.toggle('microphone')")
    refused = toast(ada, "not_allowed")
    expect(refused).to_contain_text("lecture mode", timeout=WAIT_MS)
    expect(refused).to_contain_text("Turn on microphone failed")
    expect(ada.by("media-microphone")).to_have_attribute("aria-pressed", "false")
    assert ada.page.evaluate("window.liveclass.media.local.microphone") is None
    ada.screenshot(e2e_artifacts, "media-controls-student-lecture")

    # The teacher permits Ada: her camera is forwarded again and her microphone can be turned on.
    teacher.roster_actions("s-ada").get_by_test_id("roster-permit").click()
    expect(toast(ada, "media-permitted")).to_be_visible(timeout=WAIT_MS)
    expect(ada.by("media-microphone")).to_be_enabled()
    expect(ada.by("media-notice")).to_be_hidden()
    expect_frames_resume(teacher, "s-ada", frozen, "camera")
    ada.by("media-microphone").click()
    expect(ada.by("media-microphone")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
    expect(tile(teacher, "s-ada", "camera")).to_have_attribute(
        "data-audio", "true", timeout=WAIT_MS
    )
    expect_hearing(teacher, "s-ada")

    # Revoked while still in lecture mode: Ada is told, and her video stops again.
    teacher.roster_actions("s-ada").get_by_test_id("roster-permit").click()
    expect(toast(ada, "media-revoked")).to_be_visible(timeout=WAIT_MS)
    expect(ada.by("media-notice")).to_contain_text("Lecture mode")
    expect_frames_stop(teacher, "s-ada", "camera")

    # Back to discussion: the header says so, and the camera is forwarded again.
    teacher.by("media-mode").click()
    expect(ada.by("media-lecture")).to_be_hidden(timeout=WAIT_MS)
    expect_decoding(teacher, "s-ada", "camera")

    expect_loopback_only(guard, teacher, ada)
    expect(teacher.page.locator("[data-testid=toast].toast-error")).to_have_count(0)
    expect_no_page_errors(teacher, ada)


def test_spotlight_puts_the_students_tile_first_and_large_on_every_page(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    guard = LoopbackGuard()
    teacher, ada = open_class(open_tab, guard)
    start_camera(teacher)
    start_camera(ada)
    ada_on_teacher = tile(teacher, "s-ada", "camera")
    expect(ada_on_teacher).to_have_attribute("data-video", "playing", timeout=WAIT_MS)
    expect(tile(ada, "t-rivera", "camera")).to_have_attribute(
        "data-video", "playing", timeout=WAIT_MS
    )
    # Before: the teacher's own preview comes first on her page.
    expect(tiles(teacher).first).to_have_attribute("data-local", "true")

    ada_on_teacher.get_by_test_id("tile-spotlight").click()
    for tab in (teacher, ada):
        first = tiles(tab).first
        expect(first).to_have_attribute("data-identity", "s-ada", timeout=WAIT_MS)
        expect(first).to_have_attribute("data-spotlight", "true")
        expect(tab.page.locator("[data-testid=media-tile][data-spotlight=true]")).to_have_count(1)
        expect(tab.roster_row("s-ada")).to_have_attribute("data-spotlight", "true")
        listed = tab.page.evaluate("window.liveclass.tiles()")
        assert listed[0]["identity"] == "s-ada" and listed[0]["spotlight"], listed
        # Large: twice the width of the other tile.
        big = tiles(tab).nth(0).bounding_box()
        small = tiles(tab).nth(1).bounding_box()
        assert big and small and big["width"] > 1.5 * small["width"], (big, small)
    expect(tiles(ada).first).to_have_attribute("data-local", "true")
    expect(ada_on_teacher.get_by_test_id("tile-spotlight")).to_have_attribute(
        "aria-pressed", "true"
    )
    teacher.screenshot(e2e_artifacts, "media-controls-teacher-spotlight")
    ada.screenshot(e2e_artifacts, "media-controls-student-spotlight")

    teacher.by("media-clear-spotlight").click()
    for tab in (teacher, ada):
        expect(tab.page.locator("[data-testid=media-tile][data-spotlight=true]")).to_have_count(
            0, timeout=WAIT_MS
        )
        expect(tiles(tab).first).to_have_attribute("data-local", "true")
    expect(teacher.by("media-clear-spotlight")).to_be_hidden()

    expect_clean_finish(guard, teacher, ada)


def test_breakout_rooms_separate_media_until_closed(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    guard = LoopbackGuard()
    teacher, ada = open_class(open_tab, guard)
    start_camera(teacher)
    start_camera(ada)
    expect(tile(teacher, "s-ada", "camera")).to_have_attribute(
        "data-video", "playing", timeout=WAIT_MS
    )
    expect(tile(ada, "t-rivera", "camera")).to_have_attribute(
        "data-video", "playing", timeout=WAIT_MS
    )
    expect(ada.by("breakout-panel")).to_be_hidden()

    teacher.show_panel("breakouts")
    teacher.by("breakout-names").fill("red, blue")
    teacher.by("breakout-open").click()
    for tab in (teacher, ada):
        expect(tab.by("my-room")).to_have_text("Main room", timeout=WAIT_MS)
    expect(toast(ada, "breakout").filter(has_text="open: red, blue")).to_have_count(1)

    # Ada goes to "red": she is told, and the two no longer see each other.
    teacher.show_panel("people")
    teacher.roster_actions("s-ada").get_by_test_id("roster-breakout").select_option("red")
    expect(ada.by("my-room")).to_have_text("Breakout room: red", timeout=WAIT_MS)
    expect(teacher.roster_row("s-ada").get_by_test_id("roster-room")).to_have_text("red")
    expect(toast(ada, "breakout").filter(has_text="now in breakout room red")).to_have_count(1)
    expect(tile(teacher, "s-ada", "camera")).to_have_count(0, timeout=WAIT_MS)
    expect(tile(ada, "t-rivera", "camera")).to_have_count(0, timeout=WAIT_MS)
    ada.screenshot(e2e_artifacts, "media-controls-student-breakout")

    # Closing the rooms brings everyone back: each decodes the other again.
    teacher.show_panel("breakouts")
    teacher.by("breakout-close").click()
    for tab in (teacher, ada):
        expect(tab.by("my-room")).to_be_hidden(timeout=WAIT_MS)
    expect(tile(teacher, "s-ada", "camera")).to_have_attribute(
        "data-video", "playing", timeout=WAIT_MS
    )
    expect_decoding(teacher, "s-ada", "camera")
    expect_decoding(ada, "t-rivera", "camera")

    expect_clean_finish(guard, teacher, ada)


# -- a lost SFU worker ----------------------------------------------------------------------------


@pytest.fixture
def sfu_cluster(
    loopback_only_network: None,  # noqa: F811
    tmp_path: Path,
) -> Iterator[tuple[LiveclassServer, list[SfuWorker], RedisCluster]]:
    """A Redis Cluster, two SFU worker processes and one node using them, on loopback only."""
    cluster = RedisCluster(tmp_path / "redis").start()
    workers: list[SfuWorker] = []
    node: LiveclassServer | None = None
    try:
        node = LiveclassServer(
            tmp_path / "node",
            ["--redis-cluster", cluster.seeds, "--node-id", "node1", "--sfu-reconnect-ms", "500"],
        )
        for i in (1, 2):
            worker = SfuWorker(
                tmp_path / "workers",
                cluster.seeds,
                f"w{i}",
                ["--heartbeat-ttl-ms", "1500"],
                secret=node.secret,
            )
            workers.append(worker)
            worker.start()
        node.data_dir.mkdir(parents=True)
        node.start()
        yield node, workers, cluster
    finally:
        if node is not None:
            node.stop()
        for worker in workers:
            worker.stop()
        cluster.stop()


def open_page(
    chromium: Browser,
    node: LiveclassServer,
    label: str,
    identity: str,
    role: str = "student",
    *,
    name: str,
    before_load: Callable[[Page], None],
) -> Tab:
    """conftest's ``open_tab`` for a server of the test's own making."""
    size = ViewportSize(width=VIEWPORT["width"], height=VIEWPORT["height"])
    context = chromium.new_context(viewport=size, locale="en-US")
    page = context.new_page()
    tab = Tab(label, context, page)
    page.on("pageerror", lambda exc: tab.errors.append(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda msg: (
            tab.errors.append(f"console.error: {msg.text}") if msg.type == "error" else None
        ),
    )
    before_load(page)
    page.goto(f"{node.http_url}/#token={node.token(identity, role, name=name)}")
    return tab


def test_a_lost_sfu_worker_resets_media_and_both_pages_republish_and_resubscribe(
    browser: Browser,  # noqa: F811
    sfu_cluster: tuple[LiveclassServer, list[SfuWorker], RedisCluster],
    e2e_artifacts: Path,
) -> None:
    node, workers, cluster = sfu_cluster
    guard = LoopbackGuard()
    teacher = open_page(
        browser, node, "teacher", "t-rivera", "teacher", name="Ms Rivera", before_load=guard.install
    )
    ada = open_page(browser, node, "student", "s-ada", name="Ada", before_load=guard.install)
    for tab in (teacher, ada):
        expect_live(tab)
        start_camera(tab)
    expect_decoding(teacher, "s-ada", "camera")
    expect_decoding(ada, "t-rivera", "camera")
    for tab in (teacher, ada):
        tab.page.evaluate(
            "() => { const m = window.liveclass.media;"
            " window.__before = {publishPc: m.publishPc, subscribePc: m.subscribePc,"
            " camera: m.local.camera}; }"
        )

    placed = cluster.cli(cluster.ports[0], "-c", "get", "{sfu}:room:class").strip()
    victim = next(w for w in workers if w.worker_id == placed)
    started = time.monotonic()
    victim.kill()

    for tab in (teacher, ada):
        expect(toast(tab, "media-reset")).to_contain_text("Reconnecting media", timeout=WAIT_MS)
        tab.page.wait_for_function("window.liveclass.media.resets >= 1", timeout=WAIT_MS)
    expect_decoding(teacher, "s-ada", "camera")
    expect_decoding(ada, "t-rivera", "camera")
    print(f"media back through the other worker {time.monotonic() - started:.1f} s after the kill")
    for tab in (teacher, ada):
        same = tab.page.evaluate(
            "() => { const m = window.liveclass.media, b = window.__before;"
            " return {newPublish: m.publishPc !== b.publishPc,"
            " newSubscribe: m.subscribePc !== b.subscribePc,"
            " sameCamera: m.local.camera === b.camera}; }"
        )
        assert same == {"newPublish": True, "newSubscribe": True, "sameCamera": True}, same
        expect(tab.by("media-camera")).to_have_attribute("aria-pressed", "true")
    assert cluster.cli(cluster.ports[0], "-c", "get", "{sfu}:room:class").strip() != placed
    teacher.screenshot(e2e_artifacts, "media-controls-teacher-after-reset")

    expect_clean_finish(guard, teacher, ada)
