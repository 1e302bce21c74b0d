"""One bottleneck shared by a learner's WebSocket and media (loadtest/impair.py ``Bottleneck``,
loadtest/link.py ``Flow``).

The model is held to its formulas without I/O, exactly. On loopback sockets a timer may fire
late, never early: lower bounds are exact, upper bounds get +30 ms (``LATE_S``) or +/-15 % of a
rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest

from loadtest.impair import (
    Bottleneck,
    Impairment,
    LinkShape,
    TcpImpairProxy,
    UdpImpairProxy,
    UdpPortMap,
)
from loadtest.link import Flow, Link, LinkCounters, Outages
from tests.unit.impair_peers import HEADER, LATE_S, Recorder, tcp_server, until


class _Draws(random.Random):
    """A random stream that returns the values given, in turn (then 0.5)."""

    def __init__(self, values: Sequence[float] = ()) -> None:
        super().__init__(0)
        self._values = list(values)

    def random(self) -> float:
        return self._values.pop(0) if self._values else 0.5


def _shared(shape: LinkShape) -> Link[str]:
    return Link(shape, outages=Outages(0.0, shape.outages), counters=LinkCounters())


def _flow(reliable: bool, rng: random.Random | None = None) -> Flow:
    return Flow(reliable, rng or random.Random(7), LinkCounters())


def _run(link: Link[str]) -> list[tuple[float, str]]:
    """Every arrival, (loop time, payload), advancing the link from one wake-up to the next."""
    arrived = []
    while (when := link.next_wakeup()) is not None:
        arrived += [(when, payload) for payload in link.advance(when)]
    return arrived


# --- the model ---


def test_two_flows_through_one_link_share_its_rate() -> None:
    link = _shared(LinkShape(rate_bps=8000, queue_bytes=None))
    tcp, udp = _flow(True), _flow(False)
    for i in range(5):
        link.offer(f"t{i}", 1000, 0.0, tcp)
        link.offer(f"u{i}", 1000, 0.0, udp)
    arrived = _run(link)
    # 1 s per chunk at 8 kbit/s, one after another: both flows are done after 10 s, not 5.
    assert [t for t, _ in arrived] == pytest.approx([1.0 * n for n in range(1, 11)])
    assert [p for _, p in arrived][-2:] == ["t4", "u4"]
    assert tcp.counters is not None and udp.counters is not None
    assert tcp.counters.bytes_out == udp.counters.bytes_out == 5000
    assert link.counters.bytes_out == 10_000


def test_a_datagram_waits_behind_queued_segments_and_a_segment_behind_datagrams() -> None:
    shape = LinkShape(rate_bps=80_000, delay_ms=50, queue_bytes=None)  # 1000 bytes: 0.1 s
    for first, then in ((True, False), (False, True)):
        link = _shared(shape)
        bulk, late = _flow(first), _flow(then)
        for i in range(4):
            link.offer(f"bulk{i}", 1000, 0.0, bulk)
        link.offer("control", 100, 0.0, late)
        arrived = dict((p, t) for t, p in _run(link))
        assert arrived["control"] == pytest.approx(0.4 + 0.01 + 0.05)


def test_a_full_queue_drops_datagrams_and_holds_back_segments_whoever_filled_it() -> None:
    link = _shared(LinkShape(rate_bps=8000, queue_bytes=3000))
    tcp, udp = _flow(True), _flow(False)
    assert link.offer("t0", 1000, 0.0, tcp) is None and link.offer("t1", 1000, 0.0, tcp) is None
    assert link.offer("u0", 1000, 0.0, udp) is None
    assert link.room() == 0  # the TCP reader waits for room
    assert link.offer("u1", 1000, 0.0, udp) == "queue"
    assert udp.counters is not None and udp.counters.queue_drops == 1
    assert tcp.counters is not None and tcp.counters.queue_drops == 0


def test_a_lost_segment_delays_its_own_flow_and_no_other() -> None:
    link = _shared(LinkShape(delay_ms=10, loss=0.5, queue_bytes=None))
    tcp = _flow(True, _Draws([0.0, 0.9]))  # the first segment is "lost", the second is not
    udp = _flow(False, _Draws([0.9, 0.9]))
    for payload, flow in (("t0", tcp), ("u0", udp), ("t1", tcp), ("u1", udp)):
        link.offer(payload, 500, 0.0, flow)
    arrived = _run(link)
    assert [p for _, p in arrived] == ["u0", "u1", "t0", "t1"]
    times = dict((p, t) for t, p in arrived)
    assert times["u1"] == pytest.approx(0.010)  # not held back by the retransmission before it
    assert times["t0"] == times["t1"] == pytest.approx(0.010 + 0.2)  # t1 waits for t0


def test_an_outage_holds_segments_drops_datagrams_and_both_resume() -> None:
    # 1000 bytes: 0.1 s at 80 kbit/s; the link is down from 1.0 s to 1.5 s.
    link = _shared(LinkShape(rate_bps=80_000, queue_bytes=10_000, outages=((1.0, 0.5),)))
    tcp, udp = _flow(True), _flow(False)
    link.offer("t0", 1000, 0.95, tcp)  # departs at 1.05: held
    link.offer("u0", 1000, 0.95, udp)  # behind the held segment, departs at 1.15: dropped
    link.offer("t1", 1000, 0.95, tcp)  # departs at 1.25: held
    assert link.advance(1.3) == [] and link.room() == 8000  # held segments keep their room
    assert link.offer("u1", 1000, 1.3, udp) == "outage"
    link.offer("u2", 1000, 1.55, udp)  # behind the segments sent again from 1.5
    assert _run(link) == [
        pytest.approx((1.6, "t0")),
        pytest.approx((1.7, "t1")),
        pytest.approx((1.8, "u2")),
    ]
    assert tcp.counters is not None and udp.counters is not None
    assert tcp.counters.held == 2 and udp.counters.outage_drops == 2


def test_each_flow_keeps_its_order_through_jitter_and_flows_cross() -> None:
    link = _shared(LinkShape(delay_ms=50, jitter_ms=20, queue_bytes=None))
    flows = {"a": _flow(False, random.Random(1)), "b": _flow(True, random.Random(2))}
    for i in range(200):
        for name, flow in flows.items():
            link.offer(f"{name}{i:03}", 100, i * 0.002, flow)
    order = [p for _, p in _run(link)]
    for name in flows:
        mine = [p for p in order if p[0] == name]
        assert mine == sorted(mine) and len(mine) == 200
    assert order != sorted(order, key=lambda p: (p[1:], p[0]))  # not one order across flows


def test_a_flows_draws_are_its_own_whatever_shares_the_link() -> None:
    def lost(with_other: bool) -> list[int]:
        link = _shared(LinkShape(loss=0.3, jitter_ms=5, queue_bytes=None))
        mine = _flow(False, random.Random("seed/0/up"))
        other = _flow(False, random.Random("seed/1/up"))
        for i in range(300):
            link.offer(str(i), 100, i * 0.001, mine)
            if with_other and i % 3:
                link.offer("other", 100, i * 0.001, other)
        arrived = {p for _, p in _run(link)}
        return [i for i in range(300) if str(i) not in arrived]

    alone = lost(with_other=False)
    assert lost(with_other=True) == alone and 50 < len(alone) < 130


# --- on loopback sockets ---


@dataclass
class _Learner:
    """A WebSocket (a TCP proxy) and media (a UDP port map) on one bottleneck."""

    websocket: TcpImpairProxy
    media: UdpPortMap
    recorder: Recorder
    #: The media client's socket, connected to its proxy.
    client: asyncio.DatagramTransport

    @property
    def media_counters(self) -> LinkCounters:
        [proxy] = self.media.proxies.values()
        return proxy.up

    def send(self, sequence: int, size: int) -> None:
        """A datagram of ``size`` bytes up, stamped with its sequence and the time."""
        payload = HEADER.pack(sequence, asyncio.get_running_loop().time())
        self.client.sendto(payload.ljust(size, b"\0"))

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.websocket.port)


@contextlib.asynccontextmanager
async def _learner(
    bottleneck: Bottleneck, *, sink: asyncio.Future[float] | None = None, sink_bytes: int = 0
) -> AsyncIterator[_Learner]:
    """A learner on ``bottleneck`` in front of a TCP target (echoing, or sinking ``sink_bytes``)
    and a UDP recorder."""
    loop = asyncio.get_running_loop()
    target, recorder = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
    media = UdpPortMap([target.get_extra_info("sockname")[:2]], bottleneck=bottleneck)
    async with tcp_server(echo=sink is None, sink=sink, sink_bytes=sink_bytes) as tcp_target:
        websocket = TcpImpairProxy(target=tcp_target, bottleneck=bottleneck)
        await websocket.start()
        [address] = (await media.start()).values()
        client, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=address
        )
        try:
            yield _Learner(websocket, media, recorder, client)
        finally:
            client.close()
            await media.close()
            await websocket.close()
            target.close()


def _up(shape: LinkShape) -> Impairment:
    return Impairment(up=shape)


async def test_a_websocket_and_media_through_one_bottleneck_share_its_rate() -> None:
    size = 40_000
    done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    bottleneck = Bottleneck(_up(LinkShape(rate_bps=800_000, queue_bytes=None)))
    async with _learner(bottleneck, sink=done, sink_bytes=size) as learner:
        _, writer = await learner.connect()
        started = asyncio.get_running_loop().time()
        writer.write(b"x" * size)
        for i in range(size // 1000):
            learner.send(i, 1000)
        websocket_done = await asyncio.wait_for(done, 3.0)
        await until(lambda: len(learner.recorder.arrivals) == size // 1000, 2.0)
        media_done = learner.recorder.arrivals[-1][0]
        # 80 kB at 800 kbit/s: 0.8 s for the two, where links of their own take 0.4 s each.
        assert max(websocket_done, media_done) - started == pytest.approx(0.8, rel=0.15)
        assert learner.websocket.up.bytes_out == learner.media_counters.bytes_out == size
        assert bottleneck.up.bytes_out == 2 * size
        writer.close()


async def test_a_websocket_frame_waits_behind_the_media_queued_before_it() -> None:
    bottleneck = Bottleneck(_up(LinkShape(rate_bps=400_000, queue_bytes=16_000)))
    async with _learner(bottleneck) as learner:
        reader, writer = await learner.connect()
        writer.write(b"hello")
        assert await reader.readexactly(5) == b"hello"
        started = asyncio.get_running_loop().time()
        for i in range(12):  # 14.4 kB: 288 ms at 400 kbit/s
            learner.send(i, 1200)
        await until(lambda: learner.media_counters.chunks_in == 12, 0.5)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        elapsed = asyncio.get_running_loop().time() - started
        assert 0.288 <= elapsed <= 0.288 + LATE_S
        writer.close()


async def test_media_waits_behind_the_websocket_bytes_queued_before_it() -> None:
    bottleneck = Bottleneck(_up(LinkShape(rate_bps=400_000, queue_bytes=16_000)))
    async with _learner(bottleneck) as learner:
        _, writer = await learner.connect()
        started = asyncio.get_running_loop().time()
        writer.write(b"x" * 14_480)  # 10 segments: 290 ms at 400 kbit/s
        await until(lambda: learner.websocket.up.bytes_in == 14_480, 0.5)
        learner.send(0, 100)
        await until(lambda: len(learner.recorder.arrivals) == 1, 0.5)
        [(arrival, _, _)] = learner.recorder.arrivals
        assert 0.2896 <= arrival - started <= 0.2896 + LATE_S
        writer.close()


async def test_an_outage_of_the_bottleneck_stops_the_websocket_and_the_media() -> None:
    async with _learner(Bottleneck()) as learner:
        reader, writer = await learner.connect()
        writer.write(b"before")
        assert await reader.readexactly(6) == b"before"
        loop = asyncio.get_running_loop()
        started = loop.time()
        learner.websocket.outage(0.4)  # the bottleneck's: the media's too
        writer.write(b"during")
        for i in range(10):
            learner.send(i, 200)
            await asyncio.sleep(0.02)
        assert await reader.readexactly(6) == b"during"  # held, then delivered
        assert 0.4 <= loop.time() - started <= 0.4 + LATE_S
        assert not learner.recorder.arrivals and learner.media_counters.outage_drops == 10
        assert learner.websocket.up.held == 1
        learner.send(10, 200)
        await until(lambda: len(learner.recorder.arrivals) == 1, 0.5)
        assert [sequence for _, sequence, _ in learner.recorder.arrivals] == [10]
        writer.close()


async def test_reshaping_the_bottleneck_reshapes_the_websocket_and_the_media() -> None:
    async with _learner(Bottleneck()) as learner:
        reader, writer = await learner.connect()
        writer.write(b"open")
        assert await reader.readexactly(4) == b"open"
        learner.media.reshape(Impairment.symmetric(LinkShape(delay_ms=60)))
        assert learner.websocket.impairment.up.delay_ms == 60
        loop = asyncio.get_running_loop()
        started = loop.time()
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        assert 0.120 <= loop.time() - started <= 0.120 + LATE_S
        learner.send(0, 200)
        await until(lambda: len(learner.recorder.arrivals) == 1, 0.5)
        [(arrival, _, sent)] = learner.recorder.arrivals
        assert 0.060 <= arrival - sent <= 0.060 + LATE_S
        writer.close()


async def test_the_same_seed_loses_the_same_datagrams() -> None:
    async def received(seed: int) -> list[int]:
        async with _learner(Bottleneck(_up(LinkShape(loss=0.3)), seed=seed)) as learner:
            for i in range(60):
                learner.send(i, 200)
            counters = learner.media_counters
            await until(lambda: len(learner.recorder.arrivals) + counters.lost == 60, 1.0)
            return [sequence for _, sequence, _ in learner.recorder.arrivals]

    first = await received(3)
    assert await received(3) == first and 25 <= len(first) <= 55
    assert await received(4) != first


def test_a_proxy_takes_an_impairment_or_a_bottleneck_not_both() -> None:
    for make in (TcpImpairProxy, UdpImpairProxy):
        with pytest.raises(ValueError):
            make(impairment=Impairment(), bottleneck=Bottleneck())
    with pytest.raises(ValueError):
        UdpPortMap((), Impairment(), bottleneck=Bottleneck())
