"""The impairment proxies (loadtest/impair.py) and their link model (loadtest/link.py).

The model is held to its formulas without I/O; the proxies are measured on real loopback
sockets, within tolerances that hold on a loaded 2-core machine: a timer may fire late, never
early, so lower bounds are exact and upper bounds get the slack (+30 ms, or +/-15 % of a rate).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import signal
import statistics
import subprocess
import sys
from collections.abc import AsyncIterator, Callable

import pytest
import websockets.asyncio.client
import websockets.asyncio.server

from loadtest.impair import (
    Impairment,
    LinkShape,
    TcpImpairProxy,
    UdpImpairProxy,
    UdpPortMap,
    rewrite_candidates,
)
from loadtest.link import Link, LinkCounters, Outages
from tests.unit.impair_peers import HEADER, LATE_S, Recorder, tcp_server, until


def _link(shape: LinkShape, *, reliable: bool, outages: Outages | None = None) -> Link[int]:
    return Link(
        shape,
        reliable=reliable,
        outages=outages or Outages(0.0, shape.outages),
        rng=random.Random(7),
        counters=LinkCounters(),
    )


# --- the model ---


def test_chunks_leave_the_bottleneck_one_after_another_at_its_rate() -> None:
    link = _link(LinkShape(rate_bps=8000, delay_ms=100), reliable=False)
    for i in range(3):
        assert link.offer(i, 1000, 0.0) is None  # 1 s each at 8 kbit/s
    assert link.advance(1.0) == [] and link.next_wakeup() == pytest.approx(1.1)
    assert link.advance(1.1) == [0]
    assert link.advance(3.1) == [1, 2]
    link.offer(3, 500, 10.0)  # an idle link sends at once
    assert link.advance(10.59) == [] and link.advance(10.6) == [3]


def test_a_datagram_finding_the_queue_full_is_tail_dropped() -> None:
    link = _link(LinkShape(rate_bps=8000, queue_bytes=2500), reliable=False)
    assert [link.offer(i, 1000, 0.0) for i in range(3)] == [None, None, "queue"]
    link.advance(1.0)  # the first has left: room for one more
    assert link.offer(3, 1000, 1.0) is None and link.offer(4, 1000, 1.0) == "queue"
    assert link.counters.queue_drops == 2


def test_a_lost_tcp_segment_is_held_for_a_retransmission_timeout_and_keeps_its_place() -> None:
    link = _link(LinkShape(delay_ms=150, loss=1.0), reliable=True)
    link.offer(0, 100, 0.0)
    assert link.advance(0.449) == [] and link.advance(0.45) == [0]  # 150 ms + max(200, 300) ms
    lossless = _link(LinkShape(delay_ms=20, loss=0.5), reliable=True)
    for i in range(200):
        lossless.offer(i, 100, i * 0.001)
    assert lossless.advance(60.0) == list(range(200))  # delayed, in order, nothing dropped
    assert 70 < lossless.counters.lost < 130 and lossless.counters.chunks_out == 200


def test_jitter_stays_within_its_bounds_and_reorders_only_when_allowed() -> None:
    for reorder in (False, True):
        link = _link(LinkShape(delay_ms=50, jitter_ms=20, reorder=reorder), reliable=False)
        for i in range(500):
            link.offer(i, 100, i * 0.002)
        arrived = []
        t = 0.0
        while (when := link.next_wakeup()) is not None:
            t = when
            arrived += [(t, i) for i in link.advance(t)]
        delays = [t - i * 0.002 for t, i in arrived]
        order = [i for _, i in arrived]
        assert (order == sorted(order)) is not reorder
        assert min(delays) >= 0.030 - 1e-9 and (max(delays) <= 0.070 + 1e-9 or not reorder)


def test_an_outage_holds_tcp_segments_and_drops_datagrams() -> None:
    shape = LinkShape(outages=((1.0, 0.5),))
    tcp, udp = _link(shape, reliable=True), _link(shape, reliable=False)
    for link in (tcp, udp):
        link.offer(0, 100, 0.5)
        link.offer(1, 100, 1.2)
    assert tcp.advance(1.49) == [0] and tcp.advance(1.5) == [1] and tcp.counters.held == 1
    assert udp.offer(2, 100, 1.3) == "outage"
    assert udp.advance(2.0) == [0] and udp.counters.outage_drops == 2


def test_shapes_out_of_range_are_refused() -> None:
    for bad in ({"loss": 1.5}, {"rate_bps": 0}, {"delay_ms": -1}, {"outages": ((0, 0),)}):
        with pytest.raises(ValueError):
            LinkShape(**bad)


# --- UDP on loopback ---


class _UdpPath:
    def __init__(self, proxy: UdpImpairProxy, target: Recorder, client: Recorder) -> None:
        self.proxy, self.target, self.client = proxy, target, client
        self._sequence = 0

    def send(self, size: int = 1000) -> None:
        assert self.client.transport is not None
        payload = HEADER.pack(self._sequence, asyncio.get_running_loop().time())
        self.client.transport.sendto(payload.ljust(size, b"\0"))
        self._sequence += 1

    def delays_ms(self) -> list[float]:
        return [(arrival - sent) * 1000 for arrival, _, sent in self.target.arrivals]

    async def settle(self, expected: int, within_s: float) -> None:
        """Wait until the target has ``expected`` datagrams (or ``within_s`` has passed)."""
        await until(lambda: len(self.target.arrivals) >= expected, within_s)


@contextlib.asynccontextmanager
async def _udp_path(impairment: Impairment, echo: bool = False) -> AsyncIterator[_UdpPath]:
    loop = asyncio.get_running_loop()
    target_transport, target = await loop.create_datagram_endpoint(
        lambda: Recorder(echo), local_addr=("127.0.0.1", 0)
    )
    proxy = UdpImpairProxy(
        target=target_transport.get_extra_info("sockname"), impairment=impairment
    )
    await proxy.start()
    client_transport, client = await loop.create_datagram_endpoint(
        Recorder, remote_addr=("127.0.0.1", proxy.port)
    )
    try:
        yield _UdpPath(proxy, target, client)
    finally:
        client_transport.close()
        await proxy.close()
        target_transport.close()


def _up(shape: LinkShape) -> Impairment:
    return Impairment(up=shape)


async def test_udp_is_delivered_at_the_rate_cap() -> None:
    async with _udp_path(_up(LinkShape(rate_bps=200_000))) as path:
        for _ in range(40):  # 320 kbit at once, far faster than 200 kbit/s: 1.6 s at the cap
            path.send(1000)
        await path.settle(40, within_s=2.5)
        arrivals = [arrival for arrival, _, _ in path.target.arrivals]
        assert len(arrivals) == 40
        rate_bps = 39 * 1000 * 8 / (arrivals[-1] - arrivals[0])
        assert rate_bps == pytest.approx(200_000, rel=0.15)


async def test_udp_arrives_after_the_one_way_delay() -> None:
    async with _udp_path(_up(LinkShape(delay_ms=100))) as path:
        for _ in range(15):
            path.send(200)
            await asyncio.sleep(0.02)
        await path.settle(15, within_s=1.0)
        assert len(path.target.arrivals) == 15
        assert 100 <= statistics.median(path.delays_ms()) <= 100 + LATE_S * 1000


@pytest.mark.parametrize("loss", [0.03, 0.2])
async def test_udp_loses_its_share_of_datagrams(loss: float) -> None:
    sent = 3000
    async with _udp_path(_up(LinkShape(loss=loss, queue_bytes=None))) as path:
        counters = path.proxy.up

        def accounted_for(n: int) -> Callable[[], bool]:
            return lambda: len(path.target.arrivals) + counters.lost == n

        for batch in range(1, sent // 50 + 1):  # in batches, so no socket buffer drops any
            for _ in range(50):
                path.send(64)
            await until(accounted_for(batch * 50), 0.5)
        # 4.5 standard deviations of Binomial(3000, loss); with the fixed seed it is one number.
        tolerance = 4.5 * math.sqrt(sent * loss * (1 - loss))
        assert abs(counters.lost - sent * loss) <= tolerance
        assert len(path.target.arrivals) == counters.chunks_out == sent - counters.lost


async def test_a_burst_into_a_full_queue_is_tail_dropped() -> None:
    async with _udp_path(_up(LinkShape(rate_bps=80_000, queue_bytes=5000))) as path:
        for _ in range(20):  # 100 ms each at 80 kbit/s: the first five fill the queue
            path.send(1000)
        await path.settle(5, within_s=1.0)
        await asyncio.sleep(0.15)
        assert [sequence for _, sequence, _ in path.target.arrivals] == [0, 1, 2, 3, 4]
        assert path.proxy.up.queue_drops == 15


async def test_udp_jitter_spreads_the_delay_within_its_bounds() -> None:
    async with _udp_path(_up(LinkShape(delay_ms=40, jitter_ms=20))) as path:
        for _ in range(30):  # 45 ms apart: more than the 40 ms jitter span, so order costs none
            path.send(200)
            await asyncio.sleep(0.045)
        await path.settle(30, within_s=0.5)
        delays = path.delays_ms()
        assert len(delays) == 30
        assert min(delays) >= 20 and max(delays) <= 60 + LATE_S * 1000
        assert max(delays) - min(delays) >= 15


async def test_nothing_passes_during_an_outage_and_the_flow_resumes_after() -> None:
    async with _udp_path(_up(LinkShape(outages=((0.3, 0.4),)))) as path:
        started = asyncio.get_running_loop().time()
        while asyncio.get_running_loop().time() - started < 1.0:
            path.send(200)
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        arrivals = [arrival - started for arrival, _, _ in path.target.arrivals]
        assert not [t for t in arrivals if 0.3 + 0.005 <= t < 0.7]
        assert [t for t in arrivals if t < 0.3] and [t for t in arrivals if t >= 0.7]
        assert path.proxy.up.outage_drops >= 15


async def test_replies_come_back_to_each_client_shaped_by_down() -> None:
    impairment = Impairment(down=LinkShape(delay_ms=50))
    async with _udp_path(impairment, echo=True) as path:
        path.send(100)
        await asyncio.sleep(0.1 + LATE_S)
        [(arrival, sequence, sent)] = path.client.arrivals
        assert sequence == 0 and 0.050 <= arrival - sent <= 0.050 + LATE_S
        assert path.proxy.down.chunks_out == 1


async def test_a_port_map_puts_one_proxy_in_front_of_each_target() -> None:
    loop = asyncio.get_running_loop()
    transport, target = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
    address = transport.get_extra_info("sockname")
    try:
        async with UdpPortMap([address, address], Impairment()) as mapping:
            [(host, port)] = mapping.values()
            client, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, remote_addr=(host, port)
            )
            client.sendto(HEADER.pack(0, 0.0))
            await asyncio.sleep(0.05)
            client.close()
        assert len(target.arrivals) == 1
    finally:
        transport.close()


# --- TCP on loopback ---


@contextlib.asynccontextmanager
async def _tcp_proxy(
    target: tuple[str, int], impairment: Impairment
) -> AsyncIterator[TcpImpairProxy]:
    proxy = TcpImpairProxy(target=target, impairment=impairment, seed=1)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


async def test_tcp_throughput_is_held_to_the_rate_cap() -> None:
    size = 100_000
    done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    async with (
        tcp_server(echo=False, sink=done, sink_bytes=size) as target,
        _tcp_proxy(target, _up(LinkShape(rate_bps=400_000))) as proxy,
    ):
        _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        started = asyncio.get_running_loop().time()
        writer.write(b"x" * size)
        elapsed = await asyncio.wait_for(done, 3.0) - started
        assert elapsed == pytest.approx(size * 8 / 400_000, rel=0.15)
        assert proxy.up.bytes_out == size
        writer.close()


async def test_a_tcp_round_trip_takes_twice_the_one_way_delay() -> None:
    async with (
        tcp_server() as target,
        _tcp_proxy(target, Impairment.symmetric(LinkShape(delay_ms=50))) as proxy,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        loop = asyncio.get_running_loop()
        round_trips = []
        for i in range(5):
            started = loop.time()
            writer.write(b"ping %d" % i)
            assert await reader.readexactly(6) == b"ping %d" % i
            round_trips.append((loop.time() - started) * 1000)
        assert 100 <= statistics.median(round_trips) <= 100 + LATE_S * 1000
        writer.close()


async def test_tcp_data_is_held_through_an_outage_and_delivered_after() -> None:
    async with tcp_server() as target, _tcp_proxy(target, Impairment()) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"before")
        assert await reader.readexactly(6) == b"before"
        loop = asyncio.get_running_loop()
        started = loop.time()
        proxy.outage(0.5)
        writer.write(b"during")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readexactly(6), 0.4)
        assert await reader.readexactly(6) == b"during"  # held, the connection kept
        assert 0.5 <= loop.time() - started <= 0.5 + LATE_S
        assert proxy.up.held == 1
        writer.write(b"after!")
        assert await asyncio.wait_for(reader.readexactly(6), 0.2) == b"after!"
        writer.close()


async def test_a_websocket_echo_works_through_the_proxy_and_close_leaves_no_task() -> None:
    async def echo(websocket: websockets.asyncio.server.ServerConnection) -> None:
        async for message in websocket:
            await websocket.send(message)

    shape = LinkShape(rate_bps=1_000_000, delay_ms=10, jitter_ms=5, loss=0.05)
    async with websockets.asyncio.server.serve(echo, "127.0.0.1", 0) as server:
        target = server.sockets[0].getsockname()[:2]
        async with _tcp_proxy(target, Impairment.symmetric(shape)) as proxy:
            url = f"ws://127.0.0.1:{proxy.port}/"
            async with websockets.asyncio.client.connect(url) as websocket:
                for message in ("hello", b"\x00" * 20_000):
                    await websocket.send(message)
                    assert await asyncio.wait_for(websocket.recv(), 2.0) == message
            # an idle connection left open: close() must end it too
            _, idle = await asyncio.open_connection("127.0.0.1", proxy.port)
            await asyncio.sleep(0.05)
    idle.close()
    assert asyncio.all_tasks() == {asyncio.current_task()}


# --- SDP ---

OFFER = (
    "v=0\r\n"
    "o=- 3921148225 3921148225 IN IP4 0.0.0.0\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0 1\r\n"
    "a=msid-semantic:WMS *\r\n"
    "m=audio 45213 UDP/TLS/RTP/SAVPF 96 0 8\r\n"
    "c=IN IP4 192.168.1.23\r\n"
    "a=sendrecv\r\n"
    "a=mid:0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:96 opus/48000/2\r\n"
    "a=candidate:5c4b1e8a3f0f0a9e3d9c1b2a4e6f7d8c 1 udp 2130706431 192.168.1.23 45213 typ host\r\n"
    "a=candidate:0b7e9a6c1d2f3e4a5b6c7d8e9f0a1b2c 1 udp 1694498815 198.51.100.4 45213 typ srflx"
    " raddr 192.168.1.23 rport 45213\r\n"
    "a=candidate:8f1e2d3c4b5a69788796a5b4c3d2e1f0 1 udp 16777215 203.0.113.9 49170 typ relay"
    " raddr 198.51.100.4 rport 45213\r\n"
    "a=candidate:1a2b3c4d5e6f708192a3b4c5d6e7f809 1 tcp 1518280447 192.168.1.23 45213 typ host"
    " tcptype passive\r\n"
    "a=end-of-candidates\r\n"
    "a=ice-ufrag:Xk3v\r\n"
    "a=ice-pwd:f0Y8BqAqH3lJvhVqWkM0xD\r\n"
    "a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CC:87:32:BE\r\n"
    "a=setup:actpass\r\n"
)


def test_candidates_are_rewritten_to_their_proxies_and_nothing_else_changes() -> None:
    mapping = {
        ("192.168.1.23", 45213): ("127.0.0.1", 50001),
        ("203.0.113.9", 49170): ("127.0.0.1", 50002),
    }
    rewritten = rewrite_candidates(OFFER, mapping)
    changed = [
        (old, new)
        for old, new in zip(OFFER.split("\r\n"), rewritten.split("\r\n"), strict=True)
        if old != new
    ]
    assert changed == [
        (
            "a=candidate:5c4b1e8a3f0f0a9e3d9c1b2a4e6f7d8c 1 udp 2130706431 192.168.1.23 45213"
            " typ host",
            "a=candidate:5c4b1e8a3f0f0a9e3d9c1b2a4e6f7d8c 1 udp 2130706431 127.0.0.1 50001"
            " typ host",
        ),
        (
            "a=candidate:8f1e2d3c4b5a69788796a5b4c3d2e1f0 1 udp 16777215 203.0.113.9 49170"
            " typ relay raddr 198.51.100.4 rport 45213",
            "a=candidate:8f1e2d3c4b5a69788796a5b4c3d2e1f0 1 udp 16777215 127.0.0.1 50002"
            " typ relay raddr 198.51.100.4 rport 45213",
        ),
    ]
    assert rewrite_candidates(OFFER.replace("\r\n", "\n"), mapping) == rewritten.replace(
        "\r\n", "\n"
    )


# --- the command line ---


async def test_the_command_line_runs_a_proxy_until_sigterm() -> None:
    async with tcp_server() as target:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "loadtest.impair",
            "tcp",
            "--target",
            f"{target[0]}:{target[1]}",
            "--rate-kbps",
            "400",
            "--delay-ms",
            "20",
            "--down-delay-ms",
            "0",
            "--loss",
            "0.03",
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None
        try:
            listening = await asyncio.wait_for(process.stdout.readline(), 2.5)
            port = json.loads(listening)["port"]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"hi")
            assert await asyncio.wait_for(reader.readexactly(2), 1.0) == b"hi"
            writer.close()
        finally:
            process.send_signal(signal.SIGTERM)
            closed = await asyncio.wait_for(process.stdout.read(), 2.0)
        assert await process.wait() == 0 and b'"closed"' in closed
