"""Two real Chromium pages see and hear each other through the SFU of a real ``liveclass serve``.

A teacher and a student, each with Chromium's fake camera and microphone, publish and subscribe
from the classroom page's own controls. Each page's subscribe connection must decode the other's
video (inbound-rtp ``framesDecoded`` rising) and receive its audio (``packetsReceived``); the time
from the teacher's "Start camera" click to the student's first decoded frame is measured and
bounded.

Loopback only, provably: the test runs its server and its Chromium in a network namespace of its
own whose only interface is ``lo`` (the network rule allows namespaces a test creates), so no
WebRTC stack in it can gather, send to or answer any other address. Stripping candidates from the
SDP would not be enough on its own: Chromium pairs each of its local candidates with the SFU's
127.0.0.1 (libwebrtc's ``Port::IsCompatibleAddress`` checks only the address family), so on a host
with another interface it would send connectivity checks from that interface's address (Linux
delivers them over ``lo``) and the SFU would answer to it. On top, every page's ``/ws`` runs
through :class:`LoopbackGuard`, which reads every ICE candidate in the SDP both ways, drops any
not on loopback before the server sees it, and lets the test assert that none was ever offered;
and the test reads both ends of every candidate pair Chromium checked from ``getStats()``.
"""

from __future__ import annotations

import ctypes
import fcntl
import ipaddress
import os
import re
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from playwright.sync_api import Browser, Locator, Page, WebSocketRoute, expect

from tests.e2e.conftest import Tab
from tests.server import LiveclassServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

WAIT_MS = 15_000
#: The bound on the time from one page's "Start camera" click to the other page's first decoded
#: frame. The product goal for a new subscriber's first frame is 300 ms (docs/benchmarks.md);
#: this path is longer (getUserMedia, ICE gathering, two negotiations and two ICE + DTLS
#: handshakes, a keyframe request) and CI machines are slow and shared, so the bound is 2 s.
FIRST_FRAME_BOUND_MS = 2_000

_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_libc = ctypes.CDLL(None, use_errno=True)


def _netns_call(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)} (a test network namespace needs root)")


def _bring_up_loopback() -> None:
    """``ip link set lo up`` (a new namespace's ``lo`` is down), with no ``ip`` binary needed."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | _IFF_UP, b""))


@pytest.fixture
def loopback_only_network() -> Iterator[None]:
    """Move this thread, and so every process it starts (the server, Playwright's driver and its
    Chromium), into a new network namespace whose only interface is ``lo``; move back after."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _netns_call(_libc.unshare(_CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        try:
            _bring_up_loopback()
            interfaces = [name for _, name in socket.if_nameindex()]
            assert interfaces == ["lo"], f"the test's namespace has {interfaces}"
            yield
        finally:
            _netns_call(_libc.setns(home, _CLONE_NEWNET), "setns back to the runner's network")
    finally:
        os.close(home)


@pytest.fixture
def browser(loopback_only_network: None, browser: Browser) -> Browser:
    """conftest's Chromium, started inside the loopback-only namespace."""
    return browser


@pytest.fixture
def server(
    loopback_only_network: None, make_server: Callable[..., LiveclassServer]
) -> LiveclassServer:
    return make_server("--sfu-listen-ips", "127.0.0.1")


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:  # an mDNS name (<uuid>.local) is not an address at all
        return False


def candidate_addresses(sdp: str) -> list[str]:
    """The connection address of each ``a=candidate`` line (RFC 8839 section 5.1)."""
    return [line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")]


class LoopbackGuard:
    """Routes a page's ``/ws`` through Playwright and reads the SDP of every media frame.

    Outgoing ``media.publish`` / ``media.answer``: candidates not on loopback are removed before
    the server sees them (and recorded in ``stripped``). Every candidate address seen, either
    way, is recorded in ``seen`` as ``(frame type, address)``.
    """

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.stripped: list[str] = []

    def install(self, page: Page) -> None:
        page.route_web_socket(re.compile(r"/ws$"), self._route)

    def _route(self, page_side: WebSocketRoute) -> None:
        server_side = page_side.connect_to_server()
        page_side.on_message(lambda message: server_side.send(self._outgoing(message)))
        server_side.on_message(lambda message: page_side.send(self._incoming(message)))

    def _outgoing(self, message: str | bytes) -> str | bytes:
        frame = self._decode(message)
        if frame is None or frame.get("t") not in ("media.publish", "media.answer"):
            return message
        lines = frame["sdp"].split("\r\n")
        kept = []
        for line in lines:
            if line.startswith("a=candidate:"):
                address = line.split()[4]
                self.seen.append((frame["t"], address))
                if not is_loopback(address):
                    self.stripped.append(line)
                    continue
            kept.append(line)
        if len(kept) == len(lines):
            return message
        return msgpack.packb({**frame, "sdp": "\r\n".join(kept)}, use_bin_type=True)

    def _incoming(self, message: str | bytes) -> str | bytes:
        frame = self._decode(message)
        if frame is not None and isinstance(frame.get("sdp"), str):
            kind = str(frame.get("t"))
            self.seen.extend((kind, a) for a in candidate_addresses(frame["sdp"]))
        return message

    @staticmethod
    def _decode(message: str | bytes) -> dict[str, Any] | None:
        if isinstance(message, str):
            return None
        frame = msgpack.unpackb(message, raw=False)
        return frame if isinstance(frame, dict) else None


# -- reading the pages ----------------------------------------------------------------------------

# Resolves with the time (ms, performance.timeOrigin-based, so comparable across pages) at which
# the subscribe connection first decoded a video frame; null after 15 s.
WATCH_FIRST_FRAME = """() => {
  window.__firstFrameAt = new Promise((resolve) => {
    const deadline = performance.now() + 15000;
    const poll = async () => {
      const pc = window.liveclass.media.subscribePc;
      if (pc) {
        for (const s of (await pc.getStats()).values()) {
          if (s.type === "inbound-rtp" && s.kind === "video" && s.framesDecoded > 0) {
            return resolve(performance.timeOrigin + performance.now());
          }
        }
      }
      if (performance.now() > deadline) return resolve(null);
      setTimeout(poll, 5);
    };
    poll();
  });
}"""

# Records when a button is clicked (capturing, so before the app's own handler runs).
MARK_CLICK = """(testid) => {
  window.__clickedAt = null;
  document.addEventListener("click", (event) => {
    if (window.__clickedAt === null && event.target.closest(`[data-testid="${testid}"]`)) {
      window.__clickedAt = performance.timeOrigin + performance.now();
    }
  }, { capture: true });
}"""

# The subscribe connection's inbound-rtp stats for one participant's tracks, by source.
INBOUND_FROM = """async (identity) => {
  const media = window.liveclass.media;
  const pc = media.subscribePc;
  if (!pc) return {};
  const sources = {};
  for (const r of media.remote.values()) if (r.identity === identity) sources[r.mid] = r.source;
  const out = {};
  for (const s of (await pc.getStats()).values()) {
    if (s.type !== "inbound-rtp" || !(s.mid in sources)) continue;
    out[sources[s.mid]] = {kind: s.kind, framesDecoded: s.framesDecoded ?? null,
      packetsReceived: s.packetsReceived ?? 0, frameWidth: s.frameWidth ?? null,
      frameHeight: s.frameHeight ?? null};
  }
  return out;
}"""

# Every ICE candidate address either connection of the page knows (local and remote), and the
# addresses of each candidate pair that sent a connectivity check.
ICE_ADDRESSES = """async () => {
  const media = window.liveclass.media;
  const out = {candidates: [], checked: []};
  for (const pc of [media.publishPc, media.subscribePc]) {
    if (!pc) continue;
    const stats = await pc.getStats();
    for (const s of stats.values()) {
      if (s.type === "local-candidate" || s.type === "remote-candidate") {
        out.candidates.push(`${s.type} ${s.candidateType} ${s.address}`);
      } else if (s.type === "candidate-pair" && s.requestsSent + s.responsesSent > 0) {
        const local = stats.get(s.localCandidateId), remote = stats.get(s.remoteCandidateId);
        out.checked.push([local?.address, remote?.address]);
      }
    }
  }
  return out;
}"""


def inbound_from(viewer: Tab, identity: str) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = viewer.page.evaluate(INBOUND_FROM, identity)
    return result


def wait_for_inbound(
    viewer: Tab, identity: str, ready: Callable[[dict[str, dict[str, Any]]], bool], what: str
) -> dict[str, dict[str, Any]]:
    """Poll the viewer's inbound stats from ``identity`` until ``ready`` (bounded)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        stats = inbound_from(viewer, identity)
        if ready(stats):
            return stats
        if time.monotonic() > deadline:
            pytest.fail(f"{viewer.label}: no {what} within {WAIT_MS} ms; inbound stats: {stats}")
        # Not time.sleep: Playwright dispatches the routed WebSocket only inside its own calls.
        viewer.page.wait_for_timeout(100)


def frames_decoded(stats: dict[str, dict[str, Any]], source: str) -> int:
    return int(stats.get(source, {}).get("framesDecoded") or 0)


def expect_decoding(viewer: Tab, identity: str, source: str) -> tuple[int, int]:
    """``source`` from ``identity`` decodes on ``viewer``'s page: framesDecoded read twice, 1 s
    apart, rises. Returns the two readings."""
    before = wait_for_inbound(
        viewer, identity, lambda s: frames_decoded(s, source) > 0, f"{source} decoded"
    )
    viewer.page.wait_for_timeout(1000)
    after = inbound_from(viewer, identity)
    readings = (frames_decoded(before, source), frames_decoded(after, source))
    size = f"{after[source]['frameWidth']}x{after[source]['frameHeight']}"
    print(f"{viewer.label} <- {identity} {source}: framesDecoded {readings} in 1 s, {size}")
    assert readings[1] > readings[0], f"{viewer.label}: {source} of {identity} stopped decoding"
    return readings


def expect_hearing(viewer: Tab, identity: str) -> None:
    """Audio from ``identity`` reaches ``viewer``'s page, and keeps arriving."""

    def received(stats: dict[str, dict[str, Any]]) -> int:
        return int(stats.get("microphone", {}).get("packetsReceived") or 0)

    first = received(wait_for_inbound(viewer, identity, lambda s: received(s) > 0, "audio"))
    viewer.page.wait_for_timeout(500)
    second = received(inbound_from(viewer, identity))
    print(f"{viewer.label} <- {identity} microphone: packetsReceived {first} -> {second}")
    assert second > first, f"{viewer.label}: audio of {identity} stopped"


def first_frame_ms(publisher: Tab, viewer: Tab, button: str) -> float:
    """Click ``button`` on the publisher's page; the time until the viewer's page decodes its
    first video frame (ms)."""
    viewer.page.evaluate(WATCH_FIRST_FRAME)
    publisher.page.evaluate(MARK_CLICK, button)
    publisher.by(button).click()
    decoded_at = viewer.page.evaluate("window.__firstFrameAt")
    clicked_at = publisher.page.evaluate("window.__clickedAt")
    assert decoded_at is not None, f"{viewer.label}'s page decoded no video within 15 s"
    assert clicked_at is not None, f"the click on {button} was not seen"
    return float(decoded_at - clicked_at)


def expect_live(tab: Tab) -> None:
    expect(tab.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(tab.by("online-count")).to_have_text("2 online", timeout=WAIT_MS)
    # Subscribed (the SFU offers once someone else publishes).
    tab.page.wait_for_function("window.liveclass.media.subscribed === true", timeout=WAIT_MS)


def tile(viewer: Tab, identity: str, source: str) -> Locator:
    return viewer.page.locator(
        f'[data-testid=media-tile][data-identity="{identity}"][data-source={source}]'
    )


#: The frames whose SDP a page that publishes and subscribes sends and gets.
SDP_FRAMES = frozenset({"media.publish", "media.answer", "ack", "media.offer"})


def expect_loopback_only(
    guard: LoopbackGuard, *tabs: Tab, signalled: frozenset[str] = SDP_FRAMES
) -> None:
    """Every candidate in every SDP either way (``signalled``: the frames that must have carried
    some), and both ends of every pair ICE checked."""
    assert guard.stripped == [], f"non-loopback candidates were offered: {guard.stripped}"
    frames = {kind for kind, _ in guard.seen}
    assert signalled <= frames, guard.seen
    assert all(is_loopback(address) for _, address in guard.seen), guard.seen
    for tab in tabs:
        ice = tab.page.evaluate(ICE_ADDRESSES)
        assert ice["checked"], f"{tab.label}: no connectivity checks seen"
        for line in ice["candidates"]:
            assert is_loopback(line.split()[-1]), f"{tab.label}: {line}"
        for local, remote in ice["checked"]:
            assert is_loopback(local) and is_loopback(remote), f"{tab.label}: {local} -> {remote}"


def expect_no_errors(*tabs: Tab) -> None:
    for tab in tabs:
        expect(tab.page.locator("[data-testid=toast].toast-error")).to_have_count(0)
        assert tab.errors == [], f"{tab.label} page logged errors: {tab.errors}"


def test_two_pages_see_and_hear_each_other_through_the_sfu(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    guard = LoopbackGuard()
    teacher = open_tab(
        "teacher", "t-rivera", "teacher", name="Ms Rivera", before_load=guard.install
    )
    ada = open_tab("student", "s-ada", name="Ada", before_load=guard.install)
    for tab in (teacher, ada):
        expect_live(tab)
        expect(tab.by("media-quality")).to_have_attribute("data-level", "unknown")
        expect(tab.by("media-empty")).to_be_visible()

    # The teacher starts her camera: Ada's page decodes it within the bound.
    took = first_frame_ms(teacher, ada, "media-camera")
    print(f"\ntime to first frame (teacher clicks Start camera -> Ada decodes): {took:.0f} ms")
    assert took < FIRST_FRAME_BOUND_MS, f"first frame after {took:.0f} ms"
    expect(teacher.by("media-camera")).to_have_attribute("aria-pressed", "true")
    expect(teacher.by("media-camera")).to_have_text("Stop camera")

    # Everything on, both sides.
    teacher.by("media-microphone").click()
    ada.by("media-camera").click()
    ada.by("media-microphone").click()
    for tab in (teacher, ada):
        for toggle in ("media-camera", "media-microphone"):
            expect(tab.by(toggle)).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
        own = tab.page.locator("[data-testid=media-tile][data-local=true]")
        expect(own).to_have_attribute("data-video", "playing", timeout=WAIT_MS)

    # Each page sees and hears the other: a tile with video playing and sound, and getStats().
    for viewer, other in ((teacher, "s-ada"), (ada, "t-rivera")):
        expect(tile(viewer, other, "camera")).to_have_attribute(
            "data-video", "playing", timeout=WAIT_MS
        )
        expect(tile(viewer, other, "camera")).to_have_attribute("data-audio", "true")
        expect_decoding(viewer, other, "camera")
        expect_hearing(viewer, other)

    # The quality indicator has measured something (on loopback it reads good).
    for tab in (teacher, ada):
        expect(tab.by("media-quality")).to_have_attribute(
            "data-level", re.compile("good|fair|poor"), timeout=WAIT_MS
        )
        print(f"{tab.label} quality: {tab.by('media-quality').text_content()}")
    teacher.screenshot(e2e_artifacts, "media-teacher")
    ada.screenshot(e2e_artifacts, "media-student")

    # The teacher shares her screen too: Ada decodes both of the teacher's videos.
    teacher.by("media-screen").click()
    expect(teacher.by("media-screen")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
    expect(tile(ada, "t-rivera", "screen")).to_have_attribute(
        "data-video", "playing", timeout=WAIT_MS
    )
    expect_decoding(ada, "t-rivera", "screen")
    expect_decoding(ada, "t-rivera", "camera")
    ada.screenshot(e2e_artifacts, "media-student-screen")

    # Camera off stops it (test_media_stop_browser.py): the button says so; the teacher keeps
    # Ada's tile for her microphone, without video.
    ada.by("media-camera").click()
    expect(ada.by("media-camera")).to_have_attribute("aria-pressed", "false")
    expect(ada.by("media-camera")).to_have_text("Start camera")
    expect(tile(teacher, "s-ada", "camera")).to_have_attribute(
        "data-video", "none", timeout=WAIT_MS
    )
    expect(tile(teacher, "s-ada", "camera")).to_have_attribute("data-audio", "true")

    expect_loopback_only(guard, teacher, ada)
    expect_no_errors(teacher, ada)
