"""Media bots: aiortc peers that publish a synthetic camera and microphone through liveclass's
SFU, or subscribe to everything and decode it, signalling over ``/ws`` with the SDK.

On ``media.reset`` (the SFU worker holding the room's media was lost), and on every ``welcome`` or
``resumed`` after the first (the signalling connection came back, perhaps to a restarted node: the
SFU closed the old socket's peer connections), both bots close their peer connection and start
again on a new one, the publisher with the same tracks, as the web app does; a refusal
``media_unavailable`` or ``unavailable`` meanwhile (no worker live yet) is retried with backoff.

A bot runs in its own process from the SFU (the SFU installs encoded pass-through hooks
process-wide; a bot must encode and decode for real). Call :func:`sfu.ice.use_host_addresses`
first in tests, so every ICE candidate stays on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import math
import struct
import time
from dataclasses import dataclass, field, replace
from typing import Any

import av
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import (
    AudioStreamTrack,
    MediaStreamError,
    MediaStreamTrack,
    VideoStreamTrack,
)

from clients import ClassroomClient, CommandFailed

log = logging.getLogger(__name__)

WIDTH, HEIGHT = 640, 480


class PatternVideoTrack(VideoStreamTrack):
    """640x480 at 30 fps (or the size and rate given): diagonal bars that move one pixel per
    frame (so every frame differs)."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT, fps: float = 30.0) -> None:
        super().__init__()
        self.width, self.height = width, height
        self.fps = fps
        self._n = 0
        self._chroma = b""
        self._epoch: float | None = None

    async def _next_timestamp(self) -> tuple[int, fractions.Fraction]:
        if self.fps == 30.0:
            return await self.next_timestamp()
        # aiortc's VideoStreamTrack paces at 30 fps; another rate is paced here (90 kHz clock).
        now = time.monotonic()
        if self._epoch is None:
            self._epoch = now
        due = self._epoch + self._n / self.fps
        if due > now:
            await asyncio.sleep(due - now)
        return round(self._n * 90_000 / self.fps), fractions.Fraction(1, 90_000)

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pts, time_base = await self._next_timestamp()
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        shift = self._n
        self._n += 1
        # Each plane's rows are padded to its line size (libav aligns them: 240 pixels wide
        # is a 256-byte luma line and a 128-byte chroma one).
        luma = frame.planes[0]
        row = bytes(((x + shift) * 2) & 0xFF for x in range(self.width))
        luma.update((row + bytes(luma.line_size - self.width)) * self.height)
        for chroma in frame.planes[1:]:
            if len(self._chroma) != chroma.buffer_size:
                self._chroma = bytes([128]) * chroma.buffer_size
            chroma.update(self._chroma)
        frame.pts, frame.time_base = pts, time_base
        return frame


class ToneAudioTrack(AudioStreamTrack):
    """A 440 Hz tone, 48 kHz mono, 20 ms frames."""

    RATE = 48_000
    SAMPLES = 960

    def __init__(self) -> None:
        super().__init__()
        self._t = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._t / self.RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        samples = [
            int(8000 * math.sin(2 * math.pi * 440 * (self._t + i) / self.RATE))
            for i in range(self.SAMPLES)
        ]
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.SAMPLES)
        frame.planes[0].update(struct.pack(f"<{self.SAMPLES}h", *samples))
        frame.sample_rate = self.RATE
        frame.pts = self._t
        frame.time_base = fractions.Fraction(1, self.RATE)
        self._t += self.SAMPLES
        return frame


#: Refusals a bot answers by trying again after a backoff (a worker being replaced).
RETRY_CODES = frozenset({"media_unavailable", "unavailable"})
#: How long a bot keeps trying to publish or subscribe again after ``media.reset`` (s).
RETRY_FOR_S = 30.0


async def _with_retries(action: Any) -> None:
    """Await ``action()`` until it is not refused with one of :data:`RETRY_CODES`, backing off
    from 0.1 s to 2 s, for at most :data:`RETRY_FOR_S`."""
    deadline = time.monotonic() + RETRY_FOR_S
    delay = 0.1
    while True:
        try:
            await action()
            return
        except CommandFailed as exc:
            if exc.code not in RETRY_CODES or time.monotonic() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("media bot: %s failed: %r", task.get_name(), task.exception())


class _Feed(MediaStreamTrack):
    """One peer connection's handle on a source track. aiortc stops a sender's track when its
    connection closes; the source behind a feed goes on, for the next connection."""

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        return await self._source.recv()


def _pc(config: RTCConfiguration | None, max_bundle: bool = False) -> RTCPeerConnection:
    # Explicit: aiortc's default configuration uses a public STUN server.
    config = config or RTCConfiguration(iceServers=[])
    if max_bundle:
        config = replace(config, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    return RTCPeerConnection(config)


def ice_config(ice_servers: list[dict[str, Any]], relay_only: bool = False) -> RTCConfiguration:
    """An aiortc configuration from a ``welcome``'s ``ice_servers`` (relay candidates only with
    ``relay_only``, like a browser's ``iceTransportPolicy: "relay"``)."""
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in ice_servers
    ]
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


class Publisher:
    """Publishes a camera (VP8) and a microphone (Opus) through ``client``."""

    def __init__(
        self,
        client: ClassroomClient,
        config: RTCConfiguration | None = None,
        video: PatternVideoTrack | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.pc = _pc(config)
        self.video = video or PatternVideoTrack()
        self.audio = ToneAudioTrack()
        self.screen = PatternVideoTrack(640, 360)
        #: ``media.reset`` frames received, rejoins (reconnects) seen, and when each new publish
        #: was answered (monotonic s).
        self.resets = 0
        self.rejoins = 0
        self.republished: list[float] = []
        self._chosen: tuple[bool, bool, bool] | None = None
        #: The publish connection's transceiver of each source published.
        self.transceivers: dict[str, RTCRtpTransceiver] = {}
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        client.media_reset_listeners.append(self._on_reset)
        client.rejoin_listeners.append(self._on_rejoin)

    async def start(
        self, camera: bool = True, microphone: bool = True, screen: bool = False
    ) -> None:
        """Offer the chosen tracks (the screen is a 640x360 pattern) and apply the answer."""
        self._chosen = (camera, microphone, screen)
        async with self._lock:
            await self._publish()

    def _on_reset(self, msg: dict[str, Any]) -> None:
        if self._chosen is None:
            return
        self.resets += 1
        self._restart("media.reset")

    def _on_rejoin(self, msg: dict[str, Any]) -> None:
        if self._chosen is None:
            return
        self.rejoins += 1
        self._restart(str(msg.get("t")))

    def _restart(self, after: str) -> None:
        task = asyncio.get_running_loop().create_task(
            self._publish_again(), name=f"publishing again after {after}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)

    async def _publish_again(self) -> None:
        """A new connection with the same tracks (the old one's worker or socket is gone)."""

        async def attempt() -> None:
            old, self.pc = self.pc, _pc(self.config)
            await old.close()
            await self._publish()

        async with self._lock:
            await _with_retries(attempt)
            self.republished.append(time.monotonic())

    async def _publish(self) -> None:
        assert self._chosen is not None
        camera, microphone, screen = self._chosen
        wanted = [
            (camera, self.video, "camera"),
            (microphone, self.audio, "microphone"),
            (screen, self.screen, "screen"),
        ]
        self.transceivers = {
            source: self.pc.addTransceiver(_Feed(track), direction="sendonly")
            for on, track, source in wanted
            if on
        }
        await self._offer(list(self.transceivers))

    async def _offer(self, sources: list[str]) -> None:
        """A new offer on the publish connection naming ``sources``' m-lines."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        labels = {str(self.transceivers[source].mid): source for source in sources}
        answer = await self.client.publish_media(self.pc.localDescription.sdp, labels)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def unpublish(self, source: str) -> None:
        """Stop ``source`` as a user's "Stop camera" does: its sender sends nothing more and the
        SFU removes its producer (``media.unpublish``); the m-line stays."""
        async with self._lock:
            self.transceivers[source].sender.replaceTrack(None)
            await self.client.unpublish_media(source)

    async def republish(self, source: str) -> None:
        """Start ``source`` again on the same connection: a new offer naming its m-line."""
        tracks = {"camera": self.video, "microphone": self.audio, "screen": self.screen}
        async with self._lock:
            self.transceivers[source].sender.replaceTrack(_Feed(tracks[source]))
            await self._offer([source])

    async def close(self) -> None:
        self._chosen = None
        for task in tuple(self._tasks):
            task.cancel()
        await self.pc.close()


@dataclass
class Received:
    """What a subscriber decoded from one producer."""

    producer: dict[str, str]
    frames: int = 0
    first_frame_s: float | None = None
    sizes: set[tuple[int, int]] = field(default_factory=set)


class Subscriber:
    """Subscribes to every producer offered and decodes each track; counts decode errors.

    ``received`` is by producer id; ``started`` is when ``start()`` was called (monotonic s).
    On each ``media.reset`` or rejoin they start again: what was received so far moves to
    ``previous`` and ``started`` becomes the time of the reset or rejoin.
    """

    def __init__(self, client: ClassroomClient, config: RTCConfiguration | None = None) -> None:
        self.client = client
        self.config = config
        # Max-bundle, as a browser answers: with aiortc's "balanced" policy, in an offer of
        # video, audio, video, audio the second audio m-line stays on a transport the BUNDLE
        # stops, and its packets go to the first audio's receiver (sfu/transport.py).
        self.pc = _pc(config, max_bundle=True)
        self.received: dict[str, Received] = {}
        self.previous: list[dict[str, Received]] = []
        self.resets = 0
        self.rejoins = 0
        self._subscribed = False
        self.decode_errors = 0
        self.started = 0.0
        self._mids: dict[str, dict[str, str]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._lock = asyncio.Lock()
        self._consumers: set[asyncio.Task[None]] = set()
        self.pc.on("track", self._on_track)
        client.media_offer_listeners.append(self._on_offer)
        client.media_reset_listeners.append(self._on_reset)
        client.rejoin_listeners.append(self._on_rejoin)
        _DecodeErrors.watch(self)

    async def start(self) -> None:
        self._subscribed = True
        self.started = time.monotonic()
        await self.client.subscribe_media()

    def _on_reset(self, msg: dict[str, Any]) -> None:
        if not self._subscribed:
            return
        self.resets += 1
        self._restart("media.reset")

    def _on_rejoin(self, msg: dict[str, Any]) -> None:
        if not self._subscribed:
            return
        self.rejoins += 1
        self._restart(str(msg.get("t")))

    def _restart(self, after: str) -> None:
        self.previous.append(self.received)
        self.received = {}
        self.started = time.monotonic()
        task = asyncio.get_running_loop().create_task(
            self._subscribe_again(), name=f"subscribing again after {after}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)

    async def _subscribe_again(self) -> None:
        """A new subscribe connection (the old one's worker or socket is gone)."""
        async with self._lock:
            for task in tuple(self._consumers):
                task.cancel()
            old, self.pc = self.pc, _pc(self.config, max_bundle=True)
            self.pc.on("track", self._on_track)
            self._mids = {}
            await old.close()
        await _with_retries(self.client.subscribe_media)

    def _on_offer(self, msg: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(
            self._answer(msg), name=f"answering offer {msg.get('version')}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)

    async def _answer(self, msg: dict[str, Any]) -> None:
        async with self._lock:
            self._mids.update(msg["producers"])
            await self.pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await self.client.answer_media(msg["version"], self.pc.localDescription.sdp)

    def _on_track(self, track: Any) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        producer = self._mids.get(str(transceiver.mid), {"producer_id": f"mid{transceiver.mid}"})
        received = self.received.setdefault(producer["producer_id"], Received(producer))
        task = asyncio.get_running_loop().create_task(self._consume(track, received))
        self._tasks.add(task)
        self._consumers.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(self._consumers.discard)

    async def _consume(self, track: Any, received: Received) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                received.frames += 1
                if received.first_frame_s is None:
                    received.first_frame_s = time.monotonic() - self.started
                if isinstance(frame, av.VideoFrame):
                    received.sizes.add((frame.width, frame.height))

    def frames(self, kind: str) -> list[int]:
        return [r.frames for r in self.received.values() if r.producer.get("kind") == kind]

    async def close(self) -> None:
        self._subscribed = False
        _DecodeErrors.unwatch(self)
        for task in tuple(self._tasks):
            task.cancel()
        await self.pc.close()


class _DecodeErrors(logging.Handler):
    """Counts aiortc's "failed to decode" warnings (the receiver logs them from its thread)."""

    watching: set[Subscriber] = set()
    _installed: _DecodeErrors | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if "failed to decode" in record.getMessage():
            for subscriber in tuple(self.watching):
                subscriber.decode_errors += 1

    @classmethod
    def watch(cls, subscriber: Subscriber) -> None:
        if cls._installed is None:
            cls._installed = cls(logging.WARNING)
            logging.getLogger("aiortc.rtcrtpreceiver").addHandler(cls._installed)
        cls.watching.add(subscriber)

    @classmethod
    def unwatch(cls, subscriber: Subscriber) -> None:
        cls.watching.discard(subscriber)
