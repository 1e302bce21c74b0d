"""A media peer process of ``bench.sfu``: the publisher, a share of the subscribers, or the
time-to-first-frame trials, against one SFU (liveclass, mediarelay or janus).

    python -m bench.sfu_media '<json config>'

JSON lines: events on stdout, commands on stdin (``stats``, ``quit``). The process exits on
``quit``, when stdin closes (the orchestrator died) or at its ``deadline_s``, closing its peer
connections. Every peer connection has ``iceServers=[]`` and gathers host candidates only on
``ice_ip`` (:func:`sfu.ice.use_host_addresses`): 127.0.0.1, or 127.0.1.1 inside the Janus
namespace.

Roles (``role``):

- ``publish``: one synthetic camera, 640x480 at 30 fps: the VP8 ``clip`` file
  (:mod:`bench.sfu_clip`) played in a loop, a keyframe whenever the SFU sends PLI/FIR; every SFU
  gets the same bytes. With ``audio_clip``, a microphone too: that Opus clip, one packet per
  20 ms. Events: ``ready`` (``feed`` for Janus), then ``stats``: frames and keyframes sent (and
  ``audio_frames``).
- ``subscribe``: ``count`` subscribers that never decode. :mod:`sfu.passthrough` is installed in
  this process, so each received video frame is the encoded ``av.Packet`` the jitter buffer
  reassembled; it is counted (frames, bytes, keyframes) and dropped. Each audio RTP packet is
  noted as it arrives (RTP timestamp, time, whether it carries Opus LBRR) for
  :mod:`bench.audio_continuity`. ``ready`` once every subscriber has its first keyframe (or
  ``first_frame_timeout_s`` passed), then ``stats``; ``report`` (``t0``, ``t1``,
  ``allowances_s``) answers each subscriber's audio continuity over that window, the video layers
  the SFU chose for it (``media.layers``, liveclass) and its link's counters. With ``impair``
  (``{"up": LinkShape fields, "down": ...}``), each subscriber's media crosses its own
  :class:`loadtest.impair.UdpPortMap` so shaped (its offers' candidates rewritten). With
  ``red``, the subscribers take the SFU's redundant audio (:mod:`sfu.red`) as Chromium does, and
  each block of a RED packet is noted as a frame arriving.
- ``ttff``: ``trials`` new subscribers, one after another, ``gap_s`` apart: each connects (not
  timed), then from the call that starts the subscription (liveclass: ``media.subscribe`` sent;
  mediarelay: the subscriber's offer being made; Janus: the subscriber ``join`` sent) to its
  first received keyframe, the first frame a decoder can show (an SFU that forwards from any
  frame on delivers undecodable delta frames before it; they are counted apart). Event ``ttff``
  with every trial.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import uvloop
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bench.audio_continuity import Arrival, continuity, opus_has_lbrr
from bench.sfu_clip import AudioClip, AudioClipTrack, Clip, ClipTrack
from bench.sfu_signaling import LiveclassSignaling, Signaling, for_participant
from loadtest.impair import Impairment, LinkShape, UdpPortMap, rewrite_candidates
from sfu import passthrough, red
from sfu.ice import use_host_addresses

#: How often a subscriber's video layer (``media.layers``) is sampled (s).
LAYER_SAMPLE_S = 0.1


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def new_pc() -> RTCPeerConnection:
    # Explicit: aiortc's default configuration uses a public STUN server.
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


# -- publisher -----------------------------------------------------------------------------------


async def run_publisher(cfg: dict[str, Any], commands: asyncio.StreamReader) -> None:
    signaling = for_participant(cfg, 0)
    pc = new_pc()
    track = ClipTrack(Clip.load(Path(cfg["clip"])))
    try:
        await signaling.connect()
        transceiver = pc.addTransceiver(track, direction="sendonly")
        # The SFU's PLI/FIR asks the clip for a keyframe (there is no encoder to force).
        transceiver.sender._send_keyframe = track.request_keyframe  # type: ignore[method-assign]
        vp8 = [
            c
            for c in RTCRtpSender.getCapabilities("video").codecs
            if c.mimeType.lower() in ("video/vp8", "video/rtx")
        ]
        transceiver.setCodecPreferences(vp8)
        microphone = None
        if cfg.get("audio_clip"):
            microphone = AudioClipTrack(AudioClip.load(Path(cfg["audio_clip"])))
            audio = pc.addTransceiver(microphone, direction="sendonly")
            opus = [
                c
                for c in RTCRtpSender.getCapabilities("audio").codecs
                if c.mimeType.lower() == "audio/opus"
            ]
            audio.setCodecPreferences(opus)
        info = await signaling.publish(pc)
        emit({"ev": "ready", **info})
        while line := await commands.readline():
            cmd = json.loads(line)
            if cmd["cmd"] == "stats":
                emit(
                    {
                        "ev": "stats",
                        "t": time.monotonic(),
                        "frames": track.sent,
                        "keyframes": track.keyframes,
                        "audio_frames": microphone.sent if microphone is not None else 0,
                        "state": pc.connectionState,
                    }
                )
            elif cmd["cmd"] == "quit":
                break
    finally:
        await pc.close()
        await signaling.close()


# -- subscribers ---------------------------------------------------------------------------------


@dataclass
class Counted:
    """What one subscriber received: encoded video frames, their bytes, keyframes among them;
    when (ms after the subscription started) its connection came up, its first frame of any
    kind arrived, and its first keyframe (the first frame a decoder can show); frames before it."""

    frames: int = 0
    bytes: int = 0
    keyframes: int = 0
    connected_ms: float | None = None
    first_frame_ms: float | None = None
    first_keyframe_ms: float | None = None
    frames_before_keyframe: int = 0
    #: Audio RTP packets and their payload bytes.
    audio_packets: int = 0
    audio_bytes: int = 0


class CountingSubscriber:
    """One subscriber: a peer connection whose video frames (encoded ``av.Packet`` s, with
    :mod:`sfu.passthrough` installed) are counted, never decoded."""

    def __init__(self, signaling: Signaling) -> None:
        self.signaling = signaling
        self.pc = new_pc()
        self.counted = Counted()
        #: Set at the first keyframe: from then on the subscriber could show the video.
        self.decodable = asyncio.Event()
        self.started = 0.0
        #: Every audio packet received, in order of arrival (bench.audio_continuity).
        self.arrivals: list[Arrival] = []
        #: (time.monotonic(), layer) at each change of the video layer the SFU chose for it.
        self.layers: list[tuple[float, str]] = [(time.monotonic(), "all")]
        #: Its impaired media path, if any.
        self.ports: UdpPortMap | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    async def start(self) -> None:
        """Start the subscription (``started`` is when, monotonic s)."""
        self.started = time.monotonic()
        await self.signaling.subscribe(self.pc)

    def _on_state(self) -> None:
        if self.pc.connectionState == "connected" and self.counted.connected_ms is None:
            self.counted.connected_ms = (time.monotonic() - self.started) * 1000

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            receiver = next(
                t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track
            )
            self._hear(receiver)
        counting = self._count(track) if track.kind == "video" else self._drain(track)
        task = asyncio.get_running_loop().create_task(counting)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _hear(self, receiver: Any) -> None:
        """Note each audio RTP packet as it arrives (after SRTP), before aiortc's jitter buffer
        (a private hook: ``RTCRtpReceiver._handle_rtp_packet``)."""
        handle = receiver._handle_rtp_packet
        counted, arrivals = self.counted, self.arrivals

        async def heard(packet: Any, arrival_time_ms: int) -> None:
            now = time.monotonic()
            if packet.payload_type == red.RED_PAYLOAD_TYPE:
                # Redundant audio: each block is a frame, the redundant ones earlier frames
                # arriving again (a RED-decoding receiver plays whichever comes first).
                for block in red.unpack(packet.payload):
                    timestamp = (packet.timestamp - block.offset) % 2**32
                    arrivals.append(Arrival(timestamp, now, opus_has_lbrr(block.data)))
            else:
                arrivals.append(Arrival(packet.timestamp, now, opus_has_lbrr(packet.payload)))
            counted.audio_packets += 1
            counted.audio_bytes += len(packet.payload)
            await handle(packet, arrival_time_ms)

        receiver._handle_rtp_packet = heard

    async def _drain(self, track: MediaStreamTrack) -> None:
        # A remote track's queue is unbounded: read it (what arrives is counted in _hear).
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()

    def sample_layer(self) -> None:
        """Note the video layer the SFU says it forwards (liveclass's ``media.layers``)."""
        if not isinstance(self.signaling, LiveclassSignaling):
            return
        layer = next(iter(self.signaling.client.media_layers.values()), "all")
        if layer != self.layers[-1][1]:
            self.layers.append((time.monotonic(), layer))

    def report(self, t0: float, t1: float, allowances_s: list[float]) -> dict[str, Any]:
        """Audio continuity (one per jitter-buffer allowance), time in each video layer and link
        counters over ``[t0, t1)``."""
        shares: dict[str, float] = {}
        for (at, layer), (until, _) in zip(self.layers, [*self.layers[1:], (t1, "")], strict=True):
            overlap = min(until, t1) - max(at, t0)
            if overlap > 0:
                shares[layer] = shares.get(layer, 0.0) + overlap / (t1 - t0)
        link: dict[str, Any] = {}
        if self.ports is not None:
            for name in ("up", "down"):
                link[name] = {
                    k: sum(getattr(getattr(p, name), k) for p in self.ports.proxies.values())
                    for k in ("bytes_in", "bytes_out", "lost", "queue_drops")
                }
        return {
            "audio": [continuity(self.arrivals, t0, t1, a).as_dict() for a in allowances_s],
            "layer_shares": shares,
            "layer_changes": sum(t0 <= at < t1 for at, _ in self.layers[1:]),
            "layer_at_end": self.layers[-1][1],
            "link": link,
        }

    async def _count(self, track: MediaStreamTrack) -> None:
        counted = self.counted
        with contextlib.suppress(MediaStreamError):
            while True:
                packet = await track.recv()
                now_ms = (time.monotonic() - self.started) * 1000
                if counted.first_frame_ms is None:
                    counted.first_frame_ms = now_ms
                if packet.is_keyframe and counted.first_keyframe_ms is None:
                    counted.first_keyframe_ms = now_ms
                    self.decodable.set()
                elif counted.first_keyframe_ms is None:
                    counted.frames_before_keyframe += 1
                counted.frames += 1
                counted.bytes += packet.size
                counted.keyframes += bool(packet.is_keyframe)

    async def close(self) -> None:
        for task in tuple(self._tasks):
            task.cancel()
        await self.pc.close()
        await self.signaling.close()
        if self.ports is not None:
            await self.ports.close()


def impaired_path(subscriber: CountingSubscriber, shape: dict[str, Any], seed: str) -> None:
    """Put ``subscriber``'s media on a path of its own shaped as ``shape`` (``up``/``down``:
    :class:`loadtest.link.LinkShape` fields): each of the SFU's offers gets its candidates
    rewritten to UDP proxies (:class:`loadtest.impair.UdpPortMap`)."""
    if not isinstance(subscriber.signaling, LiveclassSignaling):
        raise ValueError("an impaired path is made for liveclass's signaling only")
    ports = subscriber.ports = UdpPortMap(
        (),
        Impairment(up=LinkShape(**shape["up"]), down=LinkShape(**shape["down"])),
        seed=seed,
    )

    async def through_proxies(sdp: str) -> str:
        return rewrite_candidates(sdp, await ports.cover(sdp))

    subscriber.signaling.remote_sdp = through_proxies


async def run_subscribers(cfg: dict[str, Any], commands: asyncio.StreamReader) -> None:
    subscribers: list[CountingSubscriber] = []
    try:
        for i in range(int(cfg["count"])):
            subscriber = CountingSubscriber(for_participant(cfg, i))
            subscribers.append(subscriber)
            if cfg.get("impair"):
                impaired_path(subscriber, cfg["impair"], f"{cfg.get('seed', 0)}/{i}")
            await subscriber.signaling.connect()
            await subscriber.start()
        sampler = asyncio.get_running_loop().create_task(_sample_layers(subscribers))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(float(cfg.get("first_frame_timeout_s", 30))):
                await asyncio.gather(*(s.decodable.wait() for s in subscribers))
        emit(
            {
                "ev": "ready",
                "receiving": sum(s.decodable.is_set() for s in subscribers),
                "first_keyframe_ms": [s.counted.first_keyframe_ms for s in subscribers],
            }
        )
        while line := await commands.readline():
            cmd = json.loads(line)
            if cmd["cmd"] == "stats":
                emit(
                    {
                        "ev": "stats",
                        "t": time.monotonic(),
                        "subs": [asdict(s.counted) for s in subscribers],
                        "states": [s.pc.connectionState for s in subscribers],
                    }
                )
            elif cmd["cmd"] == "report":
                t0, t1, allowances = float(cmd["t0"]), float(cmd["t1"]), cmd["allowances_s"]
                emit({"ev": "report", "subs": [s.report(t0, t1, allowances) for s in subscribers]})
            elif cmd["cmd"] == "quit":
                break
        sampler.cancel()
    finally:
        await asyncio.gather(*(s.close() for s in subscribers), return_exceptions=True)


async def _sample_layers(subscribers: list[CountingSubscriber]) -> None:
    while True:
        for subscriber in subscribers:
            subscriber.sample_layer()
        await asyncio.sleep(LAYER_SAMPLE_S)


async def run_ttff(cfg: dict[str, Any]) -> None:
    trials: list[dict[str, Any]] = []
    timeout_s = float(cfg.get("timeout_s", 10))
    for i in range(int(cfg["trials"])):
        subscriber = CountingSubscriber(for_participant(cfg, i))
        trial: dict[str, Any] = {"trial": i}
        try:
            await subscriber.signaling.connect()
            await subscriber.start()
            async with asyncio.timeout(timeout_s):
                await subscriber.decodable.wait()
            trial.update(asdict(subscriber.counted))
        except Exception as exc:
            trial["error"] = repr(exc)
            trial.update(asdict(subscriber.counted))
        finally:
            with contextlib.suppress(Exception):
                await subscriber.close()
        trials.append(trial)
        await asyncio.sleep(float(cfg.get("gap_s", 1.0)))
    emit({"ev": "ttff", "trials": trials})


async def main(cfg: dict[str, Any]) -> None:
    use_host_addresses([cfg["ice_ip"]])
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    try:
        async with asyncio.timeout(float(cfg.get("deadline_s", 300))):
            if cfg["role"] == "publish":
                await run_publisher(cfg, commands)
            elif cfg["role"] == "subscribe":
                passthrough.install()
                if cfg.get("red"):
                    red.install()  # answer the SFU's redundant audio, as Chromium does
                await run_subscribers(cfg, commands)
            elif cfg["role"] == "ttff":
                passthrough.install()
                await run_ttff(cfg)
            else:
                raise ValueError(f"unknown role {cfg['role']!r}")
    except TimeoutError:
        print("sfu_media: deadline reached, exiting", file=sys.stderr)
    except Exception as exc:
        traceback.print_exc()
        emit({"ev": "error", "error": repr(exc)})


if __name__ == "__main__":
    config = json.loads(sys.argv[1])
    # loadtest.impair reads its timers' when(), which uvloop's handles lack: impaired
    # subscribers run on asyncio's own loop.
    (asyncio.run if config.get("impair") else uvloop.run)(main(config))
    sys.stdout.flush()
    os._exit(0)  # aiortc's decoder threads must not keep the process alive
