"""Routers, Producers and Consumers (mediasoup's model): who forwards which encoded frames to whom.

A :class:`Router` is one media room (a class or one of its breakout rooms). A :class:`Producer` is
one incoming track (a camera, a microphone or a screen) read once; each encoded frame it reads is
handed, as the same ``av.Packet`` object, to every :class:`Consumer` of it. A Consumer is the
outgoing track one subscriber's sender reads, with a bounded queue:

- a video Consumer starts at a keyframe (frames before the first keyframe are not sent), and asks
  its Producer for one when it starts;
- when its queue is full (the subscriber's connection falls behind) it drops the queue and skips to
  the next keyframe, asking for one, rather than send a picture that cannot be decoded;
- a subscriber's PLI or FIR (RFC 4585 section 6.3.1, RFC 5104 section 4.3.1) becomes a keyframe
  request upstream.

Keyframe requests go upstream as an RTCP PLI to the publisher's media SSRC, coalesced: at most one
per :data:`KEYFRAME_INTERVAL_S` per Producer, since one keyframe serves every Consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .congestion import VideoLayer
from .passthrough import STATS, temporal_layer

log = logging.getLogger(__name__)

#: Fewest seconds between two keyframe requests a Producer sends upstream.
KEYFRAME_INTERVAL_S = 0.5
#: Frames a Consumer holds for a slow subscriber before skipping to the next keyframe.
CONSUMER_QUEUE_FRAMES = 120

_ids = itertools.count(1)


class Producer:
    """One incoming track, read once and fanned out to its consumers.

    Args:
        track: the remote track (its ``recv()`` returns encoded ``av.Packet`` s with
            :mod:`sfu.passthrough` installed).
        identity: the participant publishing it.
        source: ``"camera"``, ``"microphone"`` or ``"screen"``.
        request_pli: sends one RTCP PLI for the publisher's media SSRC (a coroutine function).
    """

    def __init__(
        self,
        track: MediaStreamTrack,
        identity: str,
        source: str,
        request_pli: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        self.id = f"p{next(_ids)}"
        self.track = track
        self.kind: str = track.kind
        self.identity = identity
        self.source = source
        self.consumers: set[Consumer] = set()
        #: The negotiated codec (``RTCRtpCodecParameters``) and m-line, set by the transport.
        self.codec: Any = None
        self.mid: str | None = None
        self.paused = False
        self.frames = 0
        self.keyframe_requests = 0
        #: It sends temporal layers (a frame above the base was seen): a subscriber on a slow
        #: link can be sent the base layer only.
        self.layered = False
        #: A frame above the base carried the layer sync bit (libwebrtc sets it): a consumer
        #: back from the base layer finds the points where the other layers decode again.
        self.layer_sync = False
        self._request_pli = request_pli
        self._last_request = 0.0
        self._pending_request: asyncio.TimerHandle | None = None
        self._closed = False
        self._pump = asyncio.get_running_loop().create_task(self._read())
        self.on_close: list[Callable[[Producer], None]] = []

    def describe(self) -> dict[str, str]:
        """``{producer_id, identity, kind, source}`` for the protocol."""
        return {
            "producer_id": self.id,
            "identity": self.identity,
            "kind": self.kind,
            "source": self.source,
        }

    async def _read(self) -> None:
        try:
            while True:
                packet = await self.track.recv()
                self.frames += 1
                layer = temporal_layer(packet)
                if layer is not None and layer.tid > 0:
                    self.layered = True
                    self.layer_sync = self.layer_sync or layer.sync
                if self.paused:
                    continue
                for consumer in tuple(self.consumers):
                    consumer.feed(packet)
        except MediaStreamError:
            pass
        finally:
            await self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def renew_id(self) -> None:
        """Take a new id: the same m-line published again after ``media.unpublish`` is a new
        track for subscribers (their clients key tiles by producer id)."""
        self.id = f"p{next(_ids)}"

    def detach_consumers(self) -> None:
        """Forward nothing more to the current consumers (the producer was unpublished); their
        m-lines go inactive in each subscriber's next offer."""
        for consumer in tuple(self.consumers):
            consumer.detach()

    def pause(self, paused: bool) -> None:
        """Stop (``paused`` True) or resume forwarding; frames read while paused are dropped.

        On resume every video consumer waits for a keyframe again, and one is requested, so
        subscribers never get a picture that refers to frames they did not receive.
        """
        if paused == self.paused:
            return
        self.paused = paused
        if not paused and self.kind == "video":
            for consumer in self.consumers:
                consumer.hold_until_keyframe()
            self.request_keyframe()

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, at most once per :data:`KEYFRAME_INTERVAL_S`."""
        if self.kind != "video" or self._closed or self._pending_request is not None:
            return
        wait = self._last_request + KEYFRAME_INTERVAL_S - time.monotonic()
        loop = asyncio.get_running_loop()
        if wait > 0:
            self._pending_request = loop.call_later(wait, self._send_request)
        else:
            self._send_request()

    def _send_request(self) -> None:
        self._pending_request = None
        if self._closed:
            return
        self._last_request = time.monotonic()
        self.keyframe_requests += 1
        STATS.keyframe_requests += 1
        task = asyncio.get_running_loop().create_task(self._request_pli())
        task.add_done_callback(_log_failure)

    def consume(self, queue_frames: int = CONSUMER_QUEUE_FRAMES) -> Consumer:
        """A new consumer of this producer; it waits for a keyframe, which is requested now."""
        return Consumer(self, queue_frames)  # attaching adds it and asks for the keyframe

    async def close(self) -> None:
        """Stop reading; every consumer is detached (it sends nothing until re-pointed)."""
        if self._closed:
            return
        self._closed = True
        if self._pending_request is not None:
            self._pending_request.cancel()
        if self._pump is not asyncio.current_task():
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        for consumer in tuple(self.consumers):
            consumer.detach()
        for callback in self.on_close:
            callback(self)


class Consumer(MediaStreamTrack):
    """The track a subscriber's sender reads: one producer's encoded frames, from a keyframe on.

    A Consumer can be pointed at another producer of the same kind (:meth:`attach`) or at none
    (:meth:`detach`): aiortc's sender ends for good when its track's ``recv()`` raises, and never
    reuses a stopped m-line, so a subscribe connection keeps one Consumer per m-line and re-points
    it as producers come and go. Only :meth:`stop` (the connection closes) ends it.
    """

    def __init__(self, producer: Producer, queue_frames: int) -> None:
        super().__init__()
        self.kind = producer.kind
        self.producer: Producer | None = None
        self.id_ = f"c{next(_ids)}"
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_frames)
        self._need_keyframe = False
        self.skips = 0
        self.sent = 0
        #: What it forwards (:mod:`sfu.congestion`; audio always everything).
        self.layer = VideoLayer.ALL
        #: Encoded bytes queued for the subscriber so far (its bitrate, measured by the
        #: subscribe connection's governor).
        self.bytes_queued = 0
        #: Of those, the bytes of base-layer frames (temporal layer 0 of a layered producer):
        #: the base layer's bitrate, measured while all layers are forwarded too.
        self.base_bytes_queued = 0
        #: The subscriber does not show this video (``media.view``): nothing is forwarded.
        self.hidden = False
        #: The temporal layers above the base the subscriber can decode (all, once a keyframe
        #: was sent; after the base layer alone, each from its next sync frame on).
        self._synced: set[int] | None = None
        self.attach(producer)

    def attach(self, producer: Producer) -> None:
        """Forward ``producer`` (same kind) from its next keyframe on, which is requested now."""
        self.detach()
        self.producer = producer
        # Another producer (a reused m-line): what the link let through of the last one says
        # nothing of this one, and the client knows this one at "all" (sfu.congestion decides).
        self.layer = VideoLayer.ALL
        producer.consumers.add(self)
        self.hold_until_keyframe()
        producer.request_keyframe()

    def detach(self) -> None:
        """Forward nothing (the producer went away, or the m-line went inactive); the sender
        waits, and nothing queued from the old producer is sent."""
        if self.producer is not None:
            self.producer.consumers.discard(self)
            self.producer = None
        while not self._queue.empty():
            self._queue.get_nowait()

    def feed(self, packet: Any) -> None:
        """Queue one encoded frame (called by the producer for every frame)."""
        if self.readyState != "live" or self.layer is VideoLayer.PAUSED or self.hidden:
            return
        if self._need_keyframe:
            if not packet.is_keyframe:
                return
            self._need_keyframe = False
        if not self._forwards(packet):
            return
        try:
            self._queue.put_nowait(packet)
            self.bytes_queued += packet.size
            layer = temporal_layer(packet)
            if layer is not None and layer.tid == 0:
                self.base_bytes_queued += packet.size
        except asyncio.QueueFull:
            # Fell behind: what is queued is stale; start again at the next keyframe.
            while not self._queue.empty():
                self._queue.get_nowait()
            self.skips += 1
            STATS.consumer_skips += 1
            if self.kind == "video":
                self._need_keyframe = True
                self.request_keyframe()
            else:
                self._queue.put_nowait(packet)

    def _forwards(self, packet: Any) -> bool:
        """Whether to send this frame (after any keyframe wait). At the base layer only frames
        of temporal layer 0 (nothing in the base refers to the others). Back at all layers, a
        frame above the base goes only once its layer and those below it are in sync again:
        each from its next frame with the layer sync bit (it refers to the base alone, RFC 7741
        section 4.2), since frames after it may refer to it. Libwebrtc's L1T3 sets the bit on
        every other TL1 and TL2 frame; a TL2 frame without it may refer to a TL1 frame the
        subscriber never got, and decodes to a broken picture.
        """
        layer = temporal_layer(packet)
        if packet.is_keyframe:
            self._synced = None  # every reference buffer is refreshed
        if layer is None or layer.tid == 0:
            return True
        if self.layer is VideoLayer.BASE:
            return False
        if self._synced is None:
            return True
        if layer.sync:
            self._synced.add(layer.tid)
            return True
        return all(t in self._synced for t in range(1, layer.tid + 1))

    def set_hidden(self, hidden: bool) -> None:
        """Forward nothing while the subscriber does not show this video (video only); shown
        again, it restarts at a keyframe, requested now."""
        if self.kind != "video" or hidden is self.hidden:
            return
        self.hidden = hidden
        if hidden:
            while not self._queue.empty():
                self._queue.get_nowait()
        elif self.layer is not VideoLayer.PAUSED:
            self.hold_until_keyframe()
            self.request_keyframe()

    def set_layer(self, layer: VideoLayer) -> None:
        """Forward ``layer`` from now on (video). Pausing drops what is queued; resuming waits
        for a keyframe, which is requested now, so the subscriber's picture restarts cleanly.
        From the base layer to all, each layer above the base starts at its next sync frame
        (:meth:`_forwards`), or, from a publisher that marks none, at a keyframe asked for now."""
        if self.kind != "video" or layer is self.layer:
            return
        paused = self.layer is VideoLayer.PAUSED
        from_base = self.layer is VideoLayer.BASE
        self.layer = layer
        STATS.layer_changes[layer] += 1
        if from_base and layer is VideoLayer.ALL:
            if self.producer is not None and self.producer.layer_sync:
                self._synced = set()  # the layers above the base sync again (_forwards)
            else:  # no sync points: a keyframe is one
                self.hold_until_keyframe()
                self.request_keyframe()
        if layer is VideoLayer.PAUSED:
            while not self._queue.empty():
                self._queue.get_nowait()
        elif paused and not self.hidden:
            self.hold_until_keyframe()
            self.request_keyframe()

    def hold_until_keyframe(self) -> None:
        """Send nothing more until the next keyframe (video only)."""
        if self.kind == "video":
            self._need_keyframe = True

    def request_keyframe(self) -> None:
        """The subscriber lost a picture (PLI/FIR): ask the publisher for a keyframe."""
        if self.producer is not None:
            self.producer.request_keyframe()

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            raise MediaStreamError
        self.sent += 1
        return packet

    def stop(self) -> None:
        if self.readyState == "live":
            self.detach()
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)
        super().stop()


class Router:
    """One media room: its producers, and who is told when they come and go."""

    def __init__(self, router_id: str) -> None:
        self.id = router_id
        self.producers: dict[str, Producer] = {}
        self._listeners: list[Callable[[], None]] = []

    def add_producer(self, producer: Producer) -> None:
        self.producers[producer.id] = producer
        producer.on_close.append(self._forget)
        self._changed()

    def remove_producer(self, producer: Producer) -> None:
        """Take a (live) producer out of this Router, as when its participant moves rooms."""
        with contextlib.suppress(ValueError):
            producer.on_close.remove(self._forget)
        self._forget(producer)

    def _forget(self, producer: Producer) -> None:
        if self.producers.pop(producer.id, None) is not None:
            self._changed()

    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever a producer is added or removed."""
        self._listeners.append(callback)

    def unlisten(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(callback)

    def _changed(self) -> None:
        for callback in tuple(self._listeners):
            callback()

    async def close(self) -> None:
        for producer in tuple(self.producers.values()):
            await producer.close()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("sfu: keyframe request failed: %r", task.exception())
