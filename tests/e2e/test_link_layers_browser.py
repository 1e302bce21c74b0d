"""A real browser's layered camera to a subscriber on a shrinking link: all, base, paused, and back.

The teacher is a real Chromium page of the web app: its own "Start camera" publishes Chromium's
fake camera (640x480, 20 fps) with three temporal layers (VP8 L1T3, ``clients/web/media.js``),
and its microphone is on. Two aiortc subscribers decode everything
(:class:`tests.integration.media_peers.Watcher`): a fast one straight on loopback, and a slow one
whose media crosses :class:`loadtest.impair.UdpPortMap`. The slow link's cap is lowered step by
step, then raised: the SFU's governor (``sfu/congestion.py``) moves the slow subscriber's consumer
of the camera from all layers to the base layer to paused, then back to base and to all, and
says so in ``media.layers`` (the SDK client's ``media_layers``) and on ``/metrics``.

In "base" the slow subscriber still decodes the camera, a quarter of the frames, and every one
is right: each picture it decodes is bit for bit one the fast subscriber decoded (so nothing it
refers to was withheld), and they are every fourth frame of the full stream, one temporal
position of L1T3's four: the base layer, TL0 (TL1 alone would not decode to the same pictures,
it refers to TL0). The same holds for every picture it decodes at any step, so the switch back
up to all layers shows no broken frame either. The teacher's sound reaches the slow subscriber
at every step, and the fast subscriber keeps the full frame rate throughout.

The caps come from what was measured here (2-core machine, Chromium 156, aiortc 1.16): the
camera, held to 300 kbit/s by its encoding's ``maxBitrate`` so that the rates do not drift while
Chromium ramps up, and the Opus sound take 270-290 kbit/s down the slow link, the sound about 45
of it; the SFU measured the camera at 240-250 kbit/s of payload, its base layer at 90-104 (37-42
%). At 200 kbit/s the SFU's estimate of the link fell to 140-150 kbit/s within 3-4 s: room for
the base layer and the sound, not for all layers. At 70 kbit/s it fell below 50: room for the
sound alone. The link's queue is the proxy's default 64 KB, so the link delays rather than drops
while the governor decides: aiortc's receiver, unlike a browser's, stalls for hundreds of
packets on one lost for good. Each stretch is kept shorter than the 8 s after which the governor
probes a step up; a probe that fails at once (a step up undone) is allowed for.

Loopback only, provably, as in ``test_media_browser.py`` (its network namespace, Chromium, server
and :class:`LoopbackGuard` are reused): the aiortc peers run on an asyncio loop in a thread this
test starts inside the namespace, gather 127.0.0.1 only, and every SDP they see names only it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from aiortc.codecs.vpx import Vp8Decoder
from playwright.sync_api import Page, expect

from clients import ClassroomClient
from loadtest.impair import Impairment, LinkShape, UdpPortMap
from tests.e2e.conftest import Tab
from tests.e2e.test_media_browser import (  # the loopback-only network, its Chromium and server
    WAIT_MS,
    LoopbackGuard,
    browser,  # noqa: F401
    candidate_addresses,
    expect_loopback_only,
    expect_no_errors,
    is_loopback,
    loopback_only_network,  # noqa: F401
    server,  # noqa: F401
)
from tests.integration.media_peers import (
    ImpairedWatcher,
    Watcher,
    flowing,
    joined,
    loopback_ice,
    until,
)
from tests.metrics_scrape import scrape, value
from tests.server import LiveclassServer

__all__ = ["loopback_ice"]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("loopback_ice", "keyframes_marked"),
]

T = TypeVar("T")

CAMERA, MICROPHONE = ("t-rivera", "camera"), ("t-rivera", "microphone")
#: The teacher's camera encoding's maxBitrate (bit/s), and the slow link's caps (bit/s).
CAMERA_MAX_BPS = 300_000
CAP_BASE = 200_000
CAP_PAUSED = 70_000
OPEN = Impairment(up=LinkShape(), down=LinkShape())
#: The fake camera's frame rate, and the least a subscriber forwarded all layers must decode.
CAMERA_FPS = 20
FULL_FPS = 15
#: Opus frames of 20 ms: 50 a second; the least the slow subscriber must decode on an open link.
SOUND_FPS = 35
#: How long each step may take (s): a step down needs a 2 s trend of the estimate, a step up
#: without room in the estimate a probe, 8 s after the last change (16 after a failed one).
STEP_S = 20.0
#: How long a step up may take to hold, through one failed probe and the doubled wait after it.
PROBES_S = 40.0

# The camera's sender as the teacher's page sees it: its encoding's scalability mode, and its
# outbound-rtp stats.
CAMERA_SENDER = """async () => {
  const media = window.liveclass.media;
  const transceiver = media.senders.get("camera");
  if (!media.publishPc || !transceiver) return null;
  const mode = transceiver.sender.getParameters().encodings[0].scalabilityMode ?? null;
  for (const s of (await media.publishPc.getStats()).values()) {
    if (s.type === "outbound-rtp" && s.mid === transceiver.mid) {
      return {encoding: mode, scalabilityMode: s.scalabilityMode ?? null,
        framesPerSecond: s.framesPerSecond ?? null, targetBitrate: s.targetBitrate ?? null,
        size: `${s.frameWidth}x${s.frameHeight}`};
    }
  }
  return {encoding: mode};
}"""

# Holds the camera's encoding to a bitrate (bit/s); its scalability mode stays.
CAMERA_MAX_BITRATE = """async (bps) => {
  const sender = window.liveclass.media.senders.get("camera").sender;
  const parameters = sender.getParameters();
  parameters.encodings[0].maxBitrate = bps;
  await sender.setParameters(parameters);
}"""


class PeerLoop:
    """An asyncio loop in a thread of its own for the aiortc peers, while this thread drives
    Playwright's sync API (which refuses to run inside an asyncio loop). The thread is started
    from this one, so it is in the same network namespace."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="aiortc", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 20.0) -> T:
        """Run ``coro`` on the loop and wait for it (at most ``timeout_s``); meanwhile Playwright
        keeps relaying the page's routed WebSocket (it does so only inside its own calls)."""
        what = getattr(coro, "__qualname__", repr(coro))
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        deadline = time.monotonic() + timeout_s
        while not future.done():
            if time.monotonic() > deadline:
                future.cancel()
                pytest.fail(f"{what} took more than {timeout_s} s")
            self.page.wait_for_timeout(50)
        return future.result()

    def sleep(self, seconds: float) -> None:
        self.run(asyncio.sleep(seconds), seconds + 5)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass(frozen=True)
class Frame:
    """One decoded camera frame: when it was decoded (monotonic s), its RTP timestamp (as the
    receiver maps it), and a digest of its picture (the luma plane's visible bytes)."""

    at: float
    pts: int
    digest: bytes
    #: Decoded from a keyframe (:func:`keyframes_marked`).
    key: bool


def picture_digest(frame: Any) -> bytes:
    plane = frame.planes[0]
    data = memoryview(plane).cast("B")
    digest = hashlib.blake2b(digest_size=16)
    for row in range(frame.height):  # each row's visible width, not its padding
        start = row * plane.line_size
        digest.update(data[start : start + frame.width])
    return digest.digest()


@dataclass
class Subscribers:
    """The two aiortc subscribers and their clients, made and used on the peer loop."""

    server: LiveclassServer
    ports: UdpPortMap = field(default_factory=lambda: UdpPortMap((), OPEN, seed=18))
    made: list[Any] = field(default_factory=list)
    #: The camera frames each subscriber decoded, in order.
    decoded: dict[str, list[Frame]] = field(default_factory=lambda: {"slow": [], "fast": []})
    #: When the slow subscriber decoded each frame of the sound (monotonic s).
    sound: list[float] = field(default_factory=list)
    #: Every layer of the camera the slow client was told of (media.layers), in order.
    layers: list[str] = field(default_factory=list)
    #: When the slow client was told each of :attr:`layers` (monotonic s).
    told_at: list[float] = field(default_factory=list)
    #: Each step the test saw the slow client reach: (layer, when).
    marks: list[tuple[str, float]] = field(default_factory=list)
    _watchers: dict[str, Watcher] = field(default_factory=dict)
    _clients: dict[str, ClassroomClient] = field(default_factory=dict)

    @property
    def slow(self) -> Watcher:
        return self._watchers["slow"]

    @property
    def fast(self) -> Watcher:
        return self._watchers["fast"]

    @property
    def fast_client(self) -> ClassroomClient:
        return self._clients["fast"]

    async def start(self) -> None:
        for name in ("slow", "fast"):
            client = await joined(self.server, self.made, f"s-{name}", can_subscribe=True)
            watcher = ImpairedWatcher(client, self.ports) if name == "slow" else Watcher(client)
            self.made.append(watcher)
            watcher.frame_listeners.append(self._recorder(self.decoded[name]))
            if name == "slow":
                watcher.frame_listeners.append(self._hear)
            self._clients[name], self._watchers[name] = client, watcher
            await watcher.start()

    @staticmethod
    def _recorder(into: list[Frame]) -> Callable[[tuple[str, str], Any], None]:
        def record(key: tuple[str, str], frame: Any) -> None:
            if key == CAMERA:
                digest = picture_digest(frame)
                into.append(Frame(time.monotonic(), int(frame.pts), digest, frame.opaque == KEY))

        return record

    def _hear(self, key: tuple[str, str], frame: Any) -> None:
        if key == MICROPHONE:
            self.sound.append(time.monotonic())

    async def flowing(self) -> None:
        for watcher, key in ((self.fast, CAMERA), (self.slow, CAMERA), (self.slow, MICROPHONE)):
            await flowing(watcher, key)

    def layer(self) -> str:
        """The slow client's layer of the camera, as ``media.layers`` said (absent: all)."""
        [camera] = [
            p["producer_id"] for p in self.slow.producers.values() if p["source"] == "camera"
        ]
        return self._clients["slow"].media_layers.get(camera, "all")

    async def follow_layers(self) -> None:
        """Record each change of :meth:`layer` (polled every 20 ms)."""
        last = "all"
        while True:
            now = self.layer()
            if now != last:
                self.layers.append(now)
                self.told_at.append(time.monotonic())
                last = now
            await asyncio.sleep(0.02)

    async def reach(self, layer: str, hold_s: float = 0.0, within_s: float = STEP_S) -> float:
        """Wait until the slow client's camera is at ``layer`` and stays there ``hold_s`` (a step
        up the governor undoes as a failed probe does not count); when it got there
        (monotonic)."""
        deadline = time.monotonic() + within_s
        while True:
            remaining = deadline - time.monotonic()
            await until(lambda: self.layer() == layer, remaining, f"the slow subscriber at {layer}")
            reached = time.monotonic()
            with contextlib.suppress(AssertionError):
                await until(lambda: self.layer() != layer, hold_s, "")
                continue  # it did not hold
            return reached

    async def caught_up(self, lag_s: float = 0.5) -> float:
        """Wait until the slow subscriber decodes the camera less than ``lag_s`` after the fast
        one (what its link queued has drained); returns when (monotonic)."""

        def lag() -> float:
            if not self.decoded["slow"]:
                return float("inf")
            last = self.decoded["slow"][-1]
            twin = next(
                (f for f in reversed(self.decoded["fast"]) if f.digest == last.digest), None
            )
            fresh = time.monotonic() - last.at < 1.0
            return last.at - twin.at if twin is not None and fresh else float("inf")

        await until(lambda: lag() < lag_s, STEP_S, "the slow link drained")
        return time.monotonic()

    async def rates(self, seconds: float) -> dict[str, float]:
        """Over the next ``seconds``: camera frames a second each subscriber decodes, sound
        frames a second the slow one decodes, and bit/s sent down the slow link."""
        proxies = self.ports.proxies.values()
        counts = self.fast.frames[CAMERA], self.slow.frames[CAMERA], self.slow.frames[MICROPHONE]
        down = sum(p.down.bytes_out for p in proxies)
        await asyncio.sleep(seconds)
        rates = {
            "fast_fps": (self.fast.frames[CAMERA] - counts[0]) / seconds,
            "slow_fps": (self.slow.frames[CAMERA] - counts[1]) / seconds,
            "slow_sound_fps": (self.slow.frames[MICROPHONE] - counts[2]) / seconds,
            "slow_link_bps": (sum(p.down.bytes_out for p in proxies) - down) * 8 / seconds,
        }
        print("    " + ", ".join(f"{k} {v:.0f}" for k, v in rates.items()))
        return rates

    def sdps(self) -> list[str]:
        """Every SDP the subscribers got and sent."""
        watchers = self._watchers.values()
        return [sdp for w in watchers for sdp in w.offers] + [
            w.pc.localDescription.sdp for w in watchers
        ]

    async def close(self) -> None:
        for peer in reversed(self.made):
            with contextlib.suppress(Exception):
                await peer.close()
        await self.ports.close()


#: The layers from the least to the most forwarded.
RANK = {"paused": 0, "base": 1, "all": 2}


def without_failed_probes(layers: list[str]) -> list[str]:
    """``layers`` (each change, in order, from "all") without the failed probes: a step up
    followed at once by a step down to where it came from, or lower (the governor steps down
    as deep as the link needs)."""
    kept: list[str] = []
    for layer in layers:
        if len(kept) >= 1:
            came_from = kept[-2] if len(kept) >= 2 else "all"
            if RANK[came_from] < RANK[kept[-1]] and RANK[layer] <= RANK[came_from]:
                kept.pop()
                if layer == (kept[-1] if kept else "all"):
                    continue
        kept.append(layer)
    return kept


def paused_stretches(subs: Subscribers, start: float, end: float) -> list[tuple[float, float]]:
    """The stretches between ``start`` and ``end`` the slow client was paused (monotonic s):
    from 0.5 s after it was told (what its link had queued has arrived) to 0.2 s before it was
    told the next layer (the SFU's first frame of a step up may beat the signalling path's
    word of it). A failed probe splits a stretch: it forwarded the base layer for a moment."""
    told = [*zip(subs.layers, subs.told_at, strict=True), ("end", end)]
    return [
        (at + 0.5, min(end, until_next) - 0.2)
        for (layer, at), (_, until_next) in itertools.pairwise(told)
        if layer == "paused" and start - 0.5 <= at < end and min(end, until_next) - 0.2 > at + 0.5
    ]


def expect_same_pictures(subs: Subscribers) -> None:
    """Every picture the slow subscriber decoded is one the fast subscriber decoded, the same
    frame of the stream (one RTP timestamp offset for all)."""
    fast = {f.digest: f for f in subs.decoded["fast"]}
    offsets = set()
    strays = []
    for frame in subs.decoded["slow"]:
        twin = fast.get(frame.digest)
        if twin is None:
            since = [
                f"{frame.at - at:.2f} s after {layer}" for layer, at in subs.marks if at <= frame.at
            ]
            strays.append((frame.pts, since[-1:] or "before any step"))
            continue
        offsets.add((frame.pts - twin.pts) % 2**32)
    total = len(subs.decoded["slow"])
    assert not strays, (
        f"the slow subscriber decoded pictures the fast one did not: {strays}/{total}"
    )
    assert len(offsets) == 1, f"pictures matched across different frames: offsets {offsets}"


def share_of_stream(
    subs: Subscribers, start: float, end: float
) -> tuple[float, float, list[tuple[int, int, int]]]:
    """Of the frames the fast subscriber decoded between ``start`` and ``end``: the share the
    slow one decoded too, how many a second that is, and the gaps between those, each in frames
    the fast one decoded and in frames of the camera by RTP timestamp, with the RTP timestamp
    it starts at (a keyframe restarts L1T3's pattern: the gap to one is not counted)."""
    window = [f for f in subs.decoded["fast"] if start <= f.at < end]
    slow = {f.digest for f in subs.decoded["slow"]}
    got = [i for i, f in enumerate(window) if f.digest in slow]
    interval = 90_000 / CAMERA_FPS
    gaps = [
        (b - a, round((window[b].pts - window[a].pts) / interval), window[a].pts)
        for a, b in itertools.pairwise(got)
        if not any(f.key for f in window[a + 1 : b + 1])
    ]
    return len(got) / max(1, len(window)), len(got) / (end - start), gaps


KEY = "keyframe"


@pytest.fixture
def keyframes_marked(monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process, a picture decoded from a VP8 keyframe (frame tag bit 0 is 0, RFC 6386
    section 9.1) carries :data:`KEY` as its ``opaque`` (libvpx's decoder does not say)."""
    decode = Vp8Decoder.decode

    def marking(self: Vp8Decoder, encoded_frame: Any) -> list[Any]:
        frames = decode(self, encoded_frame)
        if encoded_frame.data and encoded_frame.data[0] & 0x01 == 0:
            for frame in frames:
                frame.opaque = KEY
        return frames

    monkeypatch.setattr(Vp8Decoder, "decode", marking)


@pytest.fixture
def peer_loops() -> Iterator[list[PeerLoop]]:
    made: list[PeerLoop] = []
    yield made
    for loop in made:
        loop.close()


def layer_gauge(sfu: LiveclassServer) -> dict[str, float]:
    """``liveclass_sfu_video_consumers`` by layer."""
    families = scrape(sfu.http_url)
    return {
        layer: value(families, "liveclass_sfu_video_consumers", layer=layer)
        for layer in ("all", "base", "paused")
    }


def layer_changes(sfu: LiveclassServer) -> dict[str, float]:
    """``liveclass_sfu_layer_changes_total`` by layer."""
    families = scrape(sfu.http_url)
    return {
        layer: value(families, "liveclass_sfu_layer_changes_total", layer=layer)
        for layer in ("all", "base", "paused")
    }


def test_a_slow_subscriber_gets_a_browsers_camera_at_all_then_base_then_paused_and_back(
    open_tab: Callable[..., Tab],
    server: LiveclassServer,  # noqa: F811 (the fixture imported above)
    peer_loops: list[PeerLoop],
) -> None:
    guard = LoopbackGuard()
    teacher = open_tab(
        "teacher", "t-rivera", "teacher", name="Ms Rivera", before_load=guard.install
    )
    expect(teacher.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    peers = PeerLoop(teacher.page)
    peer_loops.append(peers)
    assert peers.run(_network_namespace()) == os.readlink("/proc/thread-self/ns/net")
    subs = Subscribers(server)
    try:
        peers.run(subs.start())
        teacher.by("media-camera").click()
        teacher.by("media-microphone").click()
        for toggle in ("media-camera", "media-microphone"):
            expect(teacher.by(toggle)).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
        teacher.page.evaluate(CAMERA_MAX_BITRATE, CAMERA_MAX_BPS)
        peers.run(subs.flowing())
        sender = teacher.page.evaluate(CAMERA_SENDER)
        print(f"\nthe teacher's camera: {sender}")
        assert sender["encoding"] == "L1T3" and sender["scalabilityMode"] == "L1T3", sender
        peers.loop.call_soon_threadsafe(lambda: peers.loop.create_task(subs.follow_layers()))

        def step(label: str, cap: int | None, layer: str, hold_s: float = 0.0) -> float:
            subs.ports.reshape(OPEN if cap is None else _capped(cap))
            started = time.monotonic()
            within = STEP_S if hold_s == 0 else PROBES_S
            try:
                reached = peers.run(subs.reach(layer, hold_s, within), within + 5)
            except BaseException:
                print(server.log())
                raise
            print(f"  {label}: {layer} after {reached - started:.1f} s")
            subs.marks.append((layer, reached))
            return reached

        def until_(moment: float) -> None:
            peers.sleep(max(0.0, moment - time.monotonic()))

        first_step = time.monotonic()
        print("  open link:")
        full = expect_rates(peers, subs, 2.0)
        assert full["slow_fps"] >= FULL_FPS, full
        assert layer_gauge(server) == {"all": 2, "base": 0, "paused": 0}

        # Down: room for the base layer and the sound, not for all layers. (Each stretch is
        # shorter than the governor's 8 s before it probes a step up.)
        base_at = step(f"cap {CAP_BASE} bit/s", CAP_BASE, "base")
        assert layer_gauge(server) == {"all": 1, "base": 1, "paused": 0}
        until_(base_at + 2.5)

        # Down again: room for the sound only.
        paused_at = step(f"cap {CAP_PAUSED} bit/s", CAP_PAUSED, "paused")
        assert layer_gauge(server) == {"all": 1, "base": 0, "paused": 1}
        until_(paused_at + 4.5)  # past the dwell: the step up is a probe, on the new link

        # Up: the base layer fits again (a probe finds it, 8 s after the pause).
        base_again_at = step(f"cap {CAP_BASE} bit/s", CAP_BASE, "base", hold_s=3.0)
        assert base_again_at - paused_at >= 3.5, "stepped up within the dwell"
        until_(base_again_at + 3.0)

        # Up again: the open link takes all layers.
        all_at = step("open link", None, "all")
        peers.run(subs.caught_up(), STEP_S)
        back = expect_rates(peers, subs, 2.0)
        assert back["slow_fps"] >= FULL_FPS, back
        assert layer_gauge(server) == {"all": 2, "base": 0, "paused": 0}
        # The client was told every change, and /metrics counted each; a probe the governor
        # made and undid at once (a step up that did not fit) aside, the steps were these.
        changes = layer_changes(server)
        print(f"  the slow client was told: {subs.layers}; layer changes on /metrics: {changes}")
        assert changes == {layer: subs.layers.count(layer) for layer in changes}, changes
        assert without_failed_probes(subs.layers) == ["base", "paused", "base", "all"]
        assert subs.fast_client.media_layers == {}, "the fast subscriber's video was cut"

        # What the slow subscriber decoded of each stretch of the stream (by the fast one's
        # clock: what its link queued has all arrived by now).
        expect_same_pictures(subs)
        expect_quarter(subs, base_at + 0.5, base_at + 2.5, "the base layer from all")
        stretches = paused_stretches(subs, paused_at, base_again_at)
        paused_s = sum(b - a for a, b in stretches)
        print(f"    paused: {paused_s:.1f} s in {len(stretches)} stretch(es)")
        assert stretches, "never paused"
        for start, end in stretches:
            got, _, _ = share_of_stream(subs, start, end)
            assert got == 0, f"{got:.0%} of the camera's frames reached the slow subscriber paused"
        expect_quarter(subs, base_again_at + 0.5, base_again_at + 3.0, "the base layer again")
        got, _, _ = share_of_stream(subs, all_at + 1.0, all_at + 3.0)
        print(f"    all layers again: {got:.0%} of the frames")
        assert got >= 0.9, f"all layers again, yet {got:.0%} of the frames"
        drops = sum(p.down.queue_drops + p.up.queue_drops for p in subs.ports.proxies.values())
        print(f"  datagrams the slow link's queue dropped: {drops}")
        for line in server.log(full=True).splitlines():
            if " now " in line:
                print("  " + json.loads(line)["msg"])
        sound_gaps = [b - a for a, b in itertools.pairwise(subs.sound) if a > first_step]
        print(f"  the longest wait for the sound: {max(sound_gaps):.2f} s")
        assert max(sound_gaps) <= 1.0, "the sound stopped"
        sdps = subs.sdps()
    finally:
        peers.run(subs.close())
    for sdp in sdps:
        assert all(is_loopback(a) for a in candidate_addresses(sdp)), sdp
    expect_loopback_only(guard, teacher, signalled=frozenset({"media.publish", "ack"}))
    expect_no_errors(teacher)


def expect_rates(peers: PeerLoop, subs: Subscribers, seconds: float) -> dict[str, float]:
    """The rates over the next ``seconds``: the fast subscriber's camera at the full rate, the
    slow one's sound at its rate."""
    rates = peers.run(subs.rates(seconds), seconds + 5)
    assert rates["fast_fps"] >= FULL_FPS, f"the fast subscriber slowed down: {rates}"
    assert rates["slow_sound_fps"] >= SOUND_FPS, f"the sound slowed down: {rates}"
    return rates


def expect_quarter(subs: Subscribers, start: float, end: float, what: str) -> None:
    """The slow subscriber decoded about a quarter of the frames of the stream between
    ``start`` and ``end`` (by the fast subscriber's clock), every fourth one: one temporal
    position of L1T3's four, and (:func:`expect_same_pictures`) the one that decodes alone.

    Every fourth frame encoded, or captured: Chromium's encoder may drop a frame after it chose
    its layer (then a gap is three encoded frames, four captured), and where it dropped one of
    the base layer's position the gap is eight captured frames, the one between missing from
    the fast subscriber too.
    """
    share, fps, gaps = share_of_stream(subs, start, end)
    shown = [(encoded, captured) for encoded, captured, _ in gaps]
    print(f"    {what}: {share:.0%} of the frames ({fps:.1f} a second), gaps {shown}")
    assert 0.15 <= share <= 0.35, f"{what}: {share:.0%} of the frames"
    assert gaps, f"{what}: no two frames"
    interval = 90_000 / CAMERA_FPS
    window = [f for f in subs.decoded["fast"] if start <= f.at < end]
    for encoded, captured, after in gaps:
        if 4 in (encoded, captured):
            continue
        assert captured % 4 == 0, f"{what}: not every fourth frame: {shown}"
        for k in range(1, captured // 4):
            slot = after + 4 * k * interval
            assert not any(abs(f.pts - slot) < interval / 2 for f in window), (
                f"{what}: a frame of the base layer's position did not come: {shown}"
            )
    assert sum(4 in gap[:2] for gap in gaps) >= 0.75 * len(gaps), f"{what}: {shown}"


def _capped(rate_bps: int) -> Impairment:
    shape = LinkShape(rate_bps=rate_bps)
    return Impairment(up=shape, down=shape)


async def _network_namespace() -> str:
    return os.readlink("/proc/thread-self/ns/net")
