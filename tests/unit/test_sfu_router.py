"""Producers, Consumers and Routers (sfu/router.py) with a scripted incoming track, and the
announced-address rewrite of sfu/ice.py. No network: the track hands out packet stand-ins."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from sfu import router as router_module
from sfu.congestion import VideoLayer
from sfu.ice import announce
from sfu.passthrough import STATS, TemporalLayer
from sfu.router import Producer, Router


@dataclass(frozen=True)
class Packet:
    """What the pass-through receiver yields, as far as the router looks at it."""

    n: int
    is_keyframe: bool
    size: int = 1000
    #: The temporal layer (sfu.passthrough; None: the publisher sends no layers).
    opaque: TemporalLayer | None = None


class ScriptedTrack(MediaStreamTrack):
    """A remote track whose frames the test pushes; ``end()`` ends it like a closed receiver."""

    def __init__(self, kind: str = "video") -> None:
        super().__init__()
        self.kind = kind
        self.queue: asyncio.Queue[Packet | None] = asyncio.Queue()

    def push(self, n: int, key: bool = False, tid: int | None = None, sync: bool = False) -> None:
        layer = None if tid is None else TemporalLayer(tid, sync)
        self.queue.put_nowait(Packet(n, key, opaque=layer))

    def end(self) -> None:
        self.queue.put_nowait(None)

    async def recv(self) -> Packet:
        packet = await self.queue.get()
        if packet is None:
            raise MediaStreamError
        return packet


class Plis:
    """Counts the PLIs a producer sends upstream."""

    def __init__(self) -> None:
        self.sent = 0

    async def __call__(self) -> None:
        self.sent += 1


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def producer(kind: str = "video") -> tuple[Producer, ScriptedTrack, Plis]:
    track, plis = ScriptedTrack(kind), Plis()
    return Producer(track, "alice", "camera", plis), track, plis


async def drained(consumer: object) -> list[int]:
    """The frame numbers a consumer has queued, without waiting."""
    queue = consumer._queue  # type: ignore[attr-defined]
    return [queue.get_nowait().n for _ in range(queue.qsize())]


async def test_a_new_video_consumer_starts_at_a_keyframe_it_asked_for() -> None:
    source, track, plis = producer()
    consumer = source.consume()
    await settle()
    assert plis.sent == 1  # asked for when the consumer started
    await asyncio.sleep(router_module.KEYFRAME_INTERVAL_S + 0.05)
    assert plis.sent == 1  # once: a second, queued request would cost every subscriber a keyframe
    for n, key in ((1, False), (2, False), (3, True), (4, False)):
        track.push(n, key)
    await settle()
    assert await drained(consumer) == [3, 4]
    await source.close()


async def test_keyframe_requests_are_coalesced_per_producer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(router_module, "KEYFRAME_INTERVAL_S", 0.2)
    source, _, plis = producer()
    consumers = [source.consume() for _ in range(5)]
    for consumer in consumers:
        consumer.request_keyframe()  # every subscriber's PLI at once
    await settle()
    assert plis.sent == 1
    await asyncio.sleep(0.3)
    assert plis.sent == 2  # one more after the interval serves them all
    await source.close()


async def test_a_consumer_that_falls_behind_skips_to_the_next_keyframe() -> None:
    skips, requests = STATS.consumer_skips, STATS.keyframe_requests
    source, track, plis = producer()
    consumer = source.consume(queue_frames=3)
    track.push(1, True)
    for n in range(2, 6):
        track.push(n)
    await settle()
    assert consumer.skips == 1
    assert STATS.consumer_skips == skips + 1  # liveclass_sfu_consumer_skips_total
    track.push(6)
    track.push(7, True)
    await settle()
    assert await drained(consumer) == [7]
    await asyncio.sleep(router_module.KEYFRAME_INTERVAL_S + 0.05)
    assert plis.sent == 2  # the start, then the skip
    assert STATS.keyframe_requests == requests + 2  # liveclass_sfu_keyframe_requests_total
    await source.close()


async def test_audio_that_falls_behind_keeps_the_newest_frame() -> None:
    source, track, _ = producer("audio")
    consumer = source.consume(queue_frames=2)
    for n in range(1, 4):
        track.push(n)
    await settle()
    assert await drained(consumer) == [3]
    await source.close()


async def test_a_paused_producer_forwards_nothing_and_resumes_at_a_keyframe() -> None:
    source, track, plis = producer()
    consumer = source.consume()
    track.push(1, True)
    await settle()
    source.pause(True)
    track.push(2)
    track.push(3, True)
    await settle()
    assert await drained(consumer) == [1]
    await asyncio.sleep(router_module.KEYFRAME_INTERVAL_S + 0.05)
    source.pause(False)
    track.push(4)
    track.push(5, True)
    await settle()
    assert await drained(consumer) == [5]
    assert plis.sent == 2  # the start, then the resume
    await source.close()


async def test_a_consumer_is_re_pointed_and_a_closed_producer_only_detaches_it() -> None:
    first, first_track, _ = producer()
    second, second_track, second_plis = producer()
    consumer = first.consume()
    first_track.push(1, True)
    await settle()
    consumer.attach(second)
    assert consumer.producer is second and consumer not in first.consumers
    first_track.push(2, True)
    second_track.push(10)
    second_track.push(11, True)
    await settle()
    assert await drained(consumer) == [11]  # the old queue is dropped, the new one keyed
    assert second_plis.sent == 1

    # The producer goes away: the consumer is detached, and its recv() waits (an aiortc sender
    # whose track raises never sends again, so the m-line could not be reused).
    await second.close()
    assert consumer.producer is None and consumer.readyState == "live"
    pending = asyncio.ensure_future(consumer.recv())
    await settle()
    assert not pending.done()
    consumer.stop()
    with pytest.raises(MediaStreamError):
        await pending
    await first.close()


async def test_a_router_moves_a_live_producer_and_tells_its_listeners() -> None:
    main, breakout = Router("class"), Router("class/r1")
    changes: list[str] = []
    main.listen(lambda: changes.append("main"))
    breakout.listen(lambda: changes.append("r1"))
    source, _, _ = producer()
    main.add_producer(source)
    main.remove_producer(source)
    breakout.add_producer(source)
    assert changes == ["main", "main", "r1"]
    assert list(breakout.producers) == [source.id] and not main.producers
    await source.close()  # only the Router holding it forgets it
    assert not breakout.producers and changes[-1] == "r1" and changes.count("main") == 2


SDP = (
    "v=0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 97\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=candidate:1 1 udp 2130706431 0.0.0.0 40000 typ host\r\n"
    "a=candidate:2 1 udp 1694498815 203.0.113.7 40000 typ srflx raddr 0.0.0.0 rport 40000\r\n"
    "a=candidate:3 1 udp 16777215 198.51.100.2 50000 typ relay raddr 0.0.0.0 rport 40000\r\n"
)


def test_announce_rewrites_host_candidates_and_their_connection_line_only() -> None:
    out = announce(SDP, "127.0.0.2")
    assert "a=candidate:1 1 udp 2130706431 127.0.0.2 40000 typ host\r\n" in out
    assert "c=IN IP4 127.0.0.2\r\n" in out
    assert "203.0.113.7 40000 typ srflx raddr 0.0.0.0" in out
    assert "198.51.100.2 50000 typ relay" in out
    assert announce(SDP, None) == SDP


def test_announce_leaves_a_connection_line_of_another_address_and_checks_the_address() -> None:
    sdp = SDP.replace("c=IN IP4 0.0.0.0", "c=IN IP4 192.0.2.1")
    assert "c=IN IP4 192.0.2.1\r\n" in announce(sdp, "127.0.0.2")
    assert "c=IN IP6 ::1\r\n" in announce(SDP, "::1")
    with pytest.raises(ValueError):
        announce(SDP, "sfu.example")


async def test_a_paused_consumer_forwards_nothing_and_resumes_at_a_keyframe_it_asks_for() -> None:
    source, track, plis = producer()
    consumer = source.consume()
    track.push(1, True)
    track.push(2)
    await settle()
    assert await drained(consumer) == [1, 2]
    changes = STATS.layer_changes["paused"]
    consumer.set_layer(VideoLayer.PAUSED)
    assert STATS.layer_changes["paused"] == changes + 1
    track.push(3, True)
    track.push(4)
    await settle()
    assert await drained(consumer) == []
    await asyncio.sleep(router_module.KEYFRAME_INTERVAL_S + 0.05)
    asked = plis.sent
    consumer.set_layer(VideoLayer.ALL)  # resumes at the next keyframe, asked for now
    track.push(5)
    track.push(6, True)
    track.push(7)
    await settle()
    assert await drained(consumer) == [6, 7]
    assert plis.sent == asked + 1
    assert consumer.bytes_queued == 4 * 1000
    await source.close()


async def test_an_audio_consumer_is_never_paused() -> None:
    source, track, _ = producer("audio")
    consumer = source.consume()
    consumer.set_layer(VideoLayer.PAUSED)
    track.push(1)
    await settle()
    assert await drained(consumer) == [1]
    await source.close()


async def test_a_base_layer_consumer_forwards_only_frames_of_temporal_layer_0() -> None:
    source, track, _ = producer()
    consumer = source.consume()
    for n, tid in enumerate([0, 2, 1, 2, 0, 2, 1, 2], start=1):
        track.push(n, n == 1, tid)
    await settle()
    assert source.layered
    assert await drained(consumer) == [1, 2, 3, 4, 5, 6, 7, 8]
    consumer.set_layer(VideoLayer.BASE)
    for n, tid in enumerate([0, 2, 1, 2, 0, 2], start=9):
        track.push(n, False, tid)
    await settle()
    assert await drained(consumer) == [9, 13]  # no keyframe wait: the base never stopped
    assert consumer.bytes_queued == 10 * 1000
    assert consumer.base_bytes_queued == 4 * 1000  # the base layer's bytes, at every layer
    await source.close()


#: Libwebrtc's L1T3, as Chromium 156 sends it: (TID, layer sync bit) of eight frames.
L1T3 = [
    (0, False),
    (2, True),
    (1, True),
    (2, False),
    (0, False),
    (2, False),
    (1, False),
    (2, False),
]


async def test_back_from_the_base_layer_each_layer_resumes_at_its_next_sync_frame() -> None:
    source, track, _ = producer()
    consumer = source.consume()
    for n, (tid, sync) in enumerate(L1T3, start=1):
        track.push(n, n == 1, tid, sync)
    await settle()
    assert await drained(consumer) == list(range(1, 9))
    consumer.set_layer(VideoLayer.BASE)
    for n, (tid, sync) in enumerate(L1T3[:6], start=9):
        track.push(n, False, tid, sync)
    await settle()
    assert await drained(consumer) == [9, 13]
    # Back to all in the second half of the pattern: its TL1 and TL2 frames refer to the TL1
    # frame of the first half (never sent), so they wait for the next sync frames.
    consumer.set_layer(VideoLayer.ALL)
    for n, (tid, sync) in enumerate(L1T3[6:] + L1T3 + L1T3, start=15):
        track.push(n, False, tid, sync)
    await settle()
    assert await drained(consumer) == [17, 18, 19, 20, *range(21, 33)]
    await source.close()


async def test_back_from_the_base_layer_without_sync_frames_waits_for_a_keyframe() -> None:
    source, track, plis = producer()
    consumer = source.consume()
    for n, tid in enumerate([0, 2, 1, 2], start=1):
        track.push(n, n == 1, tid)  # no layer sync bit on any frame
    await settle()
    assert await drained(consumer) == [1, 2, 3, 4]
    consumer.set_layer(VideoLayer.BASE)
    await asyncio.sleep(router_module.KEYFRAME_INTERVAL_S + 0.05)
    asked = plis.sent
    consumer.set_layer(VideoLayer.ALL)
    for n, tid in enumerate([0, 2, 1, 2, 0, 2], start=5):
        track.push(n, n == 9, tid)
    await settle()
    assert plis.sent == asked + 1
    assert await drained(consumer) == [9, 10]
    await source.close()


async def test_a_consumer_pointed_at_another_producer_starts_at_all_again() -> None:
    first, _, _ = producer()
    second, track, _ = producer()
    consumer = first.consume()
    consumer.set_layer(VideoLayer.PAUSED)
    consumer.attach(second)  # the m-line is reused for another camera
    assert consumer.layer is VideoLayer.ALL
    track.push(1, True)
    await settle()
    assert await drained(consumer) == [1]
    await first.close()
    await second.close()
