"""Learners on bad networks: userspace asyncio proxies that shape traffic like a poor mobile link.

Put a :class:`TcpImpairProxy` in front of a node (HTTP and WebSocket pass through it unchanged) or
a :class:`UdpImpairProxy` in front of a media address, and each direction of the traffic crosses
its own bottleneck, described by a :class:`~loadtest.link.LinkShape`: rate, delay, jitter, loss,
queue and outages. ``up`` is client -> target, ``down`` is target -> client
(:class:`~loadtest.link.Impairment`). The model, and how TCP "loss" becomes a retransmission
delay, is :mod:`loadtest.link`; these classes feed it from sockets, one timer per link.

By default each connection (TCP) or client address (UDP) gets a queue and a rate of its own (the
proxy's outages stop them all). A learner has one bottleneck: give the proxies of their
WebSocket and of their media the same :class:`Bottleneck`, and all their chunks share one queue,
one rate and one outage schedule each way, control frames queueing behind media bytes as on a
real phone link.

TCP is shaped in segments of at most :data:`SEGMENT_BYTES`. Every random draw comes from a
``random.Random`` seeded from the proxy's (or the bottleneck's) ``seed``, one stream per
direction of each connection or client address in the order they appear, so the same traffic
draws the same losses and jitter.

:func:`rewrite_candidates` and :class:`UdpPortMap` put the UDP proxies on an aiortc peer's media
path: start one proxy per ICE candidate address of the remote side and rewrite the SDP's
``a=candidate`` lines (RFC 8839 section 5.1) to point at them.

The command line (``python -m loadtest.impair tcp|udp --listen ... --target ...``): :func:`main`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import random
import re
import signal
import socket
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict

from loadtest.link import Drop, Flow, Impairment, Link, LinkCounters, LinkShape, Outages

__all__ = [
    "Bottleneck",
    "Impairment",
    "LinkCounters",
    "LinkShape",
    "TcpImpairProxy",
    "UdpImpairProxy",
    "UdpPortMap",
    "main",
    "rewrite_candidates",
]

#: The largest TCP chunk shaped as one: a typical MSS (1500-byte MTU, IPv4, TCP timestamps).
SEGMENT_BYTES = 1448
#: Datagrams read from one relay socket per wake-up, so one busy client cannot starve the loop.
_READS_PER_WAKEUP = 64

Address = tuple[str, int]


#: What a wire carries: where the chunk is delivered on arrival, and its bytes.
_Chunk = tuple[Callable[[bytes], None], bytes]


class _Wire:
    """A :class:`Link` on the event loop, for the flows that cross it: one timer at its next
    wake-up, each chunk delivered to its own destination as it arrives, and the readers waiting
    for room in the queue (TCP's backpressure)."""

    def __init__(self, link: Link[_Chunk]) -> None:
        self.link = link
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        #: When the timer is due (uvloop's timer handles have no ``when()``).
        self._due = 0.0
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []

    def send(self, flow: Flow, deliver: Callable[[bytes], None], data: bytes) -> Drop | None:
        """Offer a chunk of ``flow`` now and deliver whatever that lets through; what dropped
        it, or None."""
        now = self._loop.time()
        verdict = self.link.offer((deliver, data), len(data), now, flow)
        self._run(now)
        return verdict

    async def wait_for_room(self, size: int) -> None:
        """Return once the queue has ``size`` free bytes."""
        room = self.link.room()
        if room is None or room >= size:
            return
        room_made = self._loop.create_future()
        self._waiting.append((size, room_made))
        await room_made

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        assert self._timer is not None
        # The loop runs a timer up to its clock resolution early: count it as on time.
        now = max(self._due, self._loop.time())
        self._timer = None
        self._run(now)

    def _run(self, now: float) -> None:
        for deliver, data in self.link.advance(now):
            deliver(data)
        if self._waiting:
            room = self.link.room()
            waiting = []
            for size, room_made in self._waiting:
                if room_made.done():
                    continue  # its reader was cancelled
                if room is None or room >= size:
                    room_made.set_result(None)
                else:
                    waiting.append((size, room_made))
            self._waiting = waiting
        when = self.link.next_wakeup()
        if self._timer is not None and self._due != when:
            self._timer.cancel()
            self._timer = None
        if when is not None and self._timer is None:
            self._timer = self._loop.call_at(when, self._fire)
            self._due = when


class _Path:
    """One flow's way across a wire: what a connection (TCP) or client (UDP) sends one way, and
    where it arrives. A path owns its wire (and closes it) unless the wire is shared."""

    def __init__(
        self, wire: _Wire, flow: Flow, deliver: Callable[[bytes], None], *, owned: bool
    ) -> None:
        self.wire = wire
        self._flow = flow
        self._deliver = deliver
        self._owned = owned

    @property
    def shape(self) -> LinkShape:
        return self.wire.link.shape

    def send(self, data: bytes) -> Drop | None:
        """Offer ``data`` (a datagram, a segment, or b"" for TCP's end of stream) now."""
        return self.wire.send(self._flow, self._deliver, data)

    async def wait_for_room(self, size: int) -> None:
        await self.wire.wait_for_room(size)

    def close(self) -> None:
        """Stop the wire's timer if it is this path's own; a shared wire goes on for the others
        (and delivers what is left of this flow to its closed socket, which drops it)."""
        if self._owned:
            self.wire.close()


class Bottleneck:
    """One bottleneck per direction, shared by every connection and client of the proxies given
    it (``bottleneck=``): a learner's one phone link, crossed by their WebSocket (a
    :class:`TcpImpairProxy`) and their media (a :class:`UdpPortMap`) alike. All their chunks go
    through the same up :class:`~loadtest.link.Link` and the same down one: one queue, one rate,
    one outage schedule (the model: :mod:`loadtest.link`), and each chunk is delivered to its own
    socket. Without a bottleneck, each connection or client gets links of its own.

    Each connection or client is a :class:`~loadtest.link.Flow` with its own random stream,
    seeded from ``seed`` and the order in which flows appear on the bottleneck (the proxies'
    seeds are not used). Counters :attr:`up` and :attr:`down` sum every flow; each proxy counts
    its own too. The outage windows of ``impairment`` count from the first proxy's ``start()``.

    Usage::

        link = Bottleneck(Impairment.symmetric(LinkShape(rate_bps=400_000, delay_ms=80)), seed=1)
        websocket = TcpImpairProxy(target=node, bottleneck=link)
        media = UdpPortMap((), bottleneck=link)
        await websocket.start()
        ...
        link.outage(2.0)  # the train enters a tunnel: both stop
    """

    def __init__(self, impairment: Impairment | None = None, seed: int | str = 0) -> None:
        self.impairment = impairment or Impairment()
        self.seed = seed
        self.up = LinkCounters()
        self.down = LinkCounters()
        self._wires: tuple[_Wire, _Wire] | None = None
        self._outages: tuple[Outages, Outages] = (Outages(0.0), Outages(0.0))
        self._flows = 0

    def start(self) -> None:
        """Start the clock, once (proxies call it from their ``start``): the outage windows
        count from the first call.

        Raises:
            RuntimeError: no event loop is running.
        """
        if self._wires is not None:
            return
        started = asyncio.get_running_loop().time()
        self._outages = (
            Outages(started, self.impairment.up.outages),
            Outages(started, self.impairment.down.outages),
        )
        self._wires = (
            _Wire(Link[_Chunk](self.impairment.up, outages=self._outages[0], counters=self.up)),
            _Wire(Link[_Chunk](self.impairment.down, outages=self._outages[1], counters=self.down)),
        )

    def reshape(self, impairment: Impairment) -> None:
        """Shape both directions as ``impairment`` from now on, for every flow
        (:meth:`loadtest.link.Link.reshape`)."""
        self.impairment = impairment
        if self._wires is not None:
            self._wires[0].link.reshape(impairment.up)
            self._wires[1].link.reshape(impairment.down)

    def outage(self, duration_s: float, *, up: bool = True, down: bool = True) -> None:
        """Pass nothing, from now for ``duration_s`` seconds, in the directions chosen: every
        flow stops (datagrams dropped, segments held).

        Raises:
            RuntimeError: no proxy on it is started.
        """
        self._started()
        now = asyncio.get_running_loop().time()
        for chosen, direction in zip((up, down), self._outages, strict=True):
            if chosen:
                direction.add(now, duration_s)

    def _paths(
        self,
        *,
        reliable: bool,
        counters: tuple[LinkCounters, LinkCounters],
        deliver: tuple[Callable[[bytes], None], Callable[[bytes], None]],
    ) -> tuple[_Path, _Path]:
        """The up and down paths of a new connection or client, one new flow each way."""
        wires = self._started()
        index, self._flows = self._flows, self._flows + 1
        up, down = (
            _Path(
                wires[i],
                Flow(reliable, random.Random(f"{self.seed}/{index}/{name}"), counters[i]),
                deliver[i],
                owned=False,
            )
            for i, name in enumerate(("up", "down"))
        )
        return up, down

    def _started(self) -> tuple[_Wire, _Wire]:
        if self._wires is None:
            raise RuntimeError("no proxy on the bottleneck is started")
        return self._wires


class _Proxy:
    """What both proxies share: the impairment, the seeded links (or the shared bottleneck),
    counters and outages."""

    def __init__(
        self,
        target: Address,
        impairment: Impairment | None,
        seed: int | str,
        bottleneck: Bottleneck | None,
    ) -> None:
        if impairment is not None and bottleneck is not None:
            raise ValueError("give a proxy an impairment or a bottleneck, not both")
        self.target = target
        self.seed = seed
        #: The bottleneck shared with other proxies, or None: each connection or client its own.
        self.bottleneck = bottleneck
        self._impairment = impairment or Impairment()
        #: Counters of each direction, summed over connections or clients.
        self.up = LinkCounters()
        self.down = LinkCounters()
        self._outages: tuple[Outages, Outages] | None = None
        self._links = 0
        #: The links of live connections or clients, up and down, for :meth:`reshape`.
        self._live: tuple[weakref.WeakSet[Link[_Chunk]], weakref.WeakSet[Link[_Chunk]]] = (
            weakref.WeakSet(),
            weakref.WeakSet(),
        )

    @property
    def impairment(self) -> Impairment:
        """The shape of both directions: the bottleneck's, if there is one."""
        return self._impairment if self.bottleneck is None else self.bottleneck.impairment

    def reshape(self, impairment: Impairment) -> None:
        """Shape every link, the live ones and those to come, as ``impairment`` from now on
        (:meth:`loadtest.link.Link.reshape`); with a bottleneck, the bottleneck, for every proxy
        on it (:meth:`Bottleneck.reshape`)."""
        if self.bottleneck is not None:
            self.bottleneck.reshape(impairment)
            return
        self._impairment = impairment
        for link in self._live[0]:
            link.reshape(impairment.up)
        for link in self._live[1]:
            link.reshape(impairment.down)

    def outage(self, duration_s: float, *, up: bool = True, down: bool = True) -> None:
        """Pass nothing, from now for ``duration_s`` seconds, in the directions chosen; with a
        bottleneck, for every proxy on it (:meth:`Bottleneck.outage`).

        Raises:
            RuntimeError: the proxy is not started.
        """
        if self.bottleneck is not None:
            self.bottleneck.outage(duration_s, up=up, down=down)
            return
        outages = self._started()
        now = asyncio.get_running_loop().time()
        for chosen, direction in zip((up, down), outages, strict=True):
            if chosen:
                direction.add(now, duration_s)

    def _start_clock(self) -> None:
        if self.bottleneck is not None:
            self.bottleneck.start()
            return
        started = asyncio.get_running_loop().time()
        self._outages = (
            Outages(started, self._impairment.up.outages),
            Outages(started, self._impairment.down.outages),
        )

    def _started(self) -> tuple[Outages, Outages]:
        if self._outages is None:
            raise RuntimeError("the proxy is not started")
        return self._outages

    def _new_paths(
        self,
        *,
        reliable: bool,
        to_target: Callable[[bytes], None],
        to_client: Callable[[bytes], None],
    ) -> tuple[_Path, _Path]:
        """The up and down paths of a new connection (TCP) or client (UDP): across the
        bottleneck, or across two links of its own, each with its own random stream, seeded from
        the proxy's seed and the order of arrival."""
        if self.bottleneck is not None:
            return self.bottleneck._paths(
                reliable=reliable, counters=(self.up, self.down), deliver=(to_target, to_client)
            )
        outages = self._started()
        index, self._links = self._links, self._links + 1
        shapes = (self._impairment.up, self._impairment.down)
        counters = (self.up, self.down)
        deliver = (to_target, to_client)
        paths = []
        for i, name in enumerate(("up", "down")):
            link = Link[_Chunk](
                shapes[i],
                reliable=reliable,
                outages=outages[i],
                rng=random.Random(f"{self.seed}/{index}/{name}"),
                counters=counters[i],
            )
            self._live[i].add(link)
            paths.append(_Path(_Wire(link), link.flow, deliver[i], owned=True))
        return paths[0], paths[1]


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _TcpConnection:
    """One proxied connection. Its up pump runs in the server's handler task, its down pump in a
    second task. The end of each stream passes through its link as an empty chunk, after the
    data; the connection ends once both have been delivered, or at once if either side fails."""

    def __init__(self, client: Stream, server: Stream, proxy: _Proxy) -> None:
        self._client = client
        self._server = server
        self._up, self._down = proxy._new_paths(
            reliable=True,
            to_target=lambda chunk: self._deliver(server[1], chunk),
            to_client=lambda chunk: self._deliver(client[1], chunk),
        )
        self._open = 2
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def run(self) -> None:
        """Pump both ways until the connection ends; on return, everything of it is closed.

        Raises:
            ConnectionResetError: a side failed.
        """
        down = asyncio.create_task(self._pump(self._server[0], self._down, self._client[1]))
        try:
            await self._pump(self._client[0], self._up, self._server[1])
            await self._done
        finally:
            down.cancel()
            await asyncio.gather(down, return_exceptions=True)
            self._up.close()
            self._down.close()
            for _, writer in (self._client, self._server):
                writer.close()
                if not (self._done.done() and self._done.exception() is None):
                    writer.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, path: _Path, dst: asyncio.StreamWriter
    ) -> None:
        queue_bytes = path.shape.queue_bytes
        most = SEGMENT_BYTES if queue_bytes is None else min(SEGMENT_BYTES, queue_bytes)
        try:
            while True:
                await path.wait_for_room(most)
                await dst.drain()
                chunk = await reader.read(most)
                path.send(chunk)
                if not chunk:
                    return
        except OSError:
            self._fail()

    def _deliver(self, writer: asyncio.StreamWriter, chunk: bytes) -> None:
        closing = writer.transport.is_closing()
        if chunk:
            if not closing:
                writer.write(chunk)
            return
        if not closing and writer.can_write_eof():
            writer.write_eof()
        self._open -= 1
        if self._open == 0 and not self._done.done():
            self._done.set_result(None)

    def _fail(self) -> None:
        if not self._done.done():
            self._done.set_exception(ConnectionResetError("a side of the connection failed"))
        for _, writer in (self._client, self._server):
            writer.transport.abort()


class TcpImpairProxy(_Proxy):
    """Accepts TCP connections on ``listen``, connects each to ``target`` and shapes both
    directions (:class:`Impairment`; or across a :class:`Bottleneck` shared with other proxies:
    then give no impairment). Bytes are never changed, so HTTP and WebSocket work through it.
    Counters: :attr:`up`, :attr:`down`.

    Raises:
        ValueError: both an impairment and a bottleneck given.

    Usage: ``proxy = TcpImpairProxy(target=(host, port), impairment=...); await proxy.start()``,
    then connect to ``127.0.0.1:proxy.port``; ``await proxy.close()``.
    """

    def __init__(
        self,
        listen: Address = ("127.0.0.1", 0),
        target: Address = ("127.0.0.1", 0),
        impairment: Impairment | None = None,
        seed: int | str = 0,
        *,
        bottleneck: Bottleneck | None = None,
    ) -> None:
        super().__init__(target, impairment, seed, bottleneck)
        self.listen = listen
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    async def start(self) -> None:
        """Listen; the outage windows count from now.

        Raises:
            OSError: the listening address cannot be bound.
        """
        self._start_clock()
        self._server = await asyncio.start_server(self._accepted, *self.listen)

    @property
    def port(self) -> int:
        """The port listened on (useful with port 0).

        Raises:
            RuntimeError: the proxy is not started.
        """
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and abort every connection; returns once no task of it is left."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The server's handler: one connection, from connecting to the target to the end.
        Cancelled by :meth:`close`, it returns quietly (asyncio 3.11 logs a cancelled handler)."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if self._closing:
                return
            server = await asyncio.open_connection(*self.target)
            connection = _TcpConnection((reader, writer), server, self)
            await connection.run()
        except OSError:
            pass  # the target refused, or a side reset: the connection is over
        except asyncio.CancelledError:
            if not self._closing:
                raise
        finally:
            self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.transport.abort()


class _UdpClient:
    """One client address of a :class:`UdpImpairProxy`: its own socket connected to the target
    (replies come back to it, as through a NAT), and its two paths."""

    def __init__(self, proxy: UdpImpairProxy, address: Address) -> None:
        target_host = proxy.target[0]
        family = socket.AF_INET6 if ":" in target_host else socket.AF_INET
        bind_host = proxy.listen[0]
        if (":" in bind_host) != (family == socket.AF_INET6):
            bind_host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        self.socket = socket.socket(family, socket.SOCK_DGRAM)
        self.socket.setblocking(False)
        self.socket.bind((bind_host, 0))
        self.socket.connect(proxy.target)
        self.up, self.down = proxy._new_paths(
            reliable=False,
            to_target=self._to_target,
            to_client=lambda data: proxy._to_client(data, address),
        )
        asyncio.get_running_loop().add_reader(self.socket.fileno(), self._readable)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.socket.fileno())
        self.socket.close()
        self.up.close()
        self.down.close()

    def _to_target(self, data: bytes) -> None:
        # A full send buffer or an ICMP "port unreachable" is a loss, as on a real path.
        with contextlib.suppress(OSError):
            self.socket.send(data)

    def _readable(self) -> None:
        for _ in range(_READS_PER_WAKEUP):
            try:
                data = self.socket.recv(65535)
            except BlockingIOError:
                return
            except OSError:
                continue
            self.down.send(data)


class UdpImpairProxy(_Proxy, asyncio.DatagramProtocol):
    """A NAT-like UDP relay: a datagram from any client address on ``listen`` is shaped with
    ``up`` and sent to ``target`` from a socket of that client's own, whose replies are shaped
    with ``down`` and sent back to the client; or both across a :class:`Bottleneck` shared with
    other proxies (then give no impairment). Mappings last until :meth:`close`. Counters:
    :attr:`up`, :attr:`down` (``queue_drops``, ``outage_drops``, ``lost`` are datagrams dropped).

    Raises:
        ValueError: both an impairment and a bottleneck given.
    """

    def __init__(
        self,
        listen: Address = ("127.0.0.1", 0),
        target: Address = ("127.0.0.1", 0),
        impairment: Impairment | None = None,
        seed: int | str = 0,
        *,
        bottleneck: Bottleneck | None = None,
    ) -> None:
        super().__init__(target, impairment, seed, bottleneck)
        self.listen = listen
        self._transport: asyncio.DatagramTransport | None = None
        self._clients: dict[Address, _UdpClient] = {}

    async def start(self) -> None:
        """Bind; the outage windows count from now.

        Raises:
            OSError: the listening address cannot be bound.
        """
        self._start_clock()
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=self.listen
        )

    @property
    def port(self) -> int:
        """The port bound (useful with port 0).

        Raises:
            RuntimeError: the proxy is not started.
        """
        if self._transport is None:
            raise RuntimeError("the proxy is not started")
        return int(self._transport.get_extra_info("sockname")[1])

    async def close(self) -> None:
        """Close the listening socket and every client's socket; nothing is left scheduled."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            await asyncio.sleep(0)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        address = (str(addr[0]), int(addr[1]))
        client = self._clients.get(address)
        if client is None:
            client = self._clients[address] = _UdpClient(self, address)
        client.up.send(data)

    def _to_client(self, data: bytes, address: Address) -> None:
        if self._transport is not None:
            self._transport.sendto(data, address)


class UdpPortMap:
    """One :class:`UdpImpairProxy` per target address, all with the same impairment, or all on
    the same :class:`Bottleneck`: the media path of an aiortc peer, once its remote SDP goes
    through :func:`rewrite_candidates` with :attr:`mapping`.
    ``async with UdpPortMap(targets, impairment) as ports: ...``.

    Raises:
        ValueError: both an impairment and a bottleneck given.
    """

    def __init__(
        self,
        targets: Iterable[Address],
        impairment: Impairment | None = None,
        seed: int | str = 0,
        host: str = "127.0.0.1",
        *,
        bottleneck: Bottleneck | None = None,
    ) -> None:
        if impairment is not None and bottleneck is not None:
            raise ValueError("give a port map an impairment or a bottleneck, not both")
        self.seed = seed
        self.host = host
        self.bottleneck = bottleneck
        self._impairment = impairment or Impairment()
        self.proxies = {
            target: self._proxy(target, i) for i, target in enumerate(dict.fromkeys(targets))
        }

    @property
    def impairment(self) -> Impairment:
        """The shape of both directions: the bottleneck's, if there is one."""
        return self._impairment if self.bottleneck is None else self.bottleneck.impairment

    async def cover(self, sdp: str) -> dict[Address, Address]:
        """Start a proxy for each UDP candidate address of ``sdp`` that has none yet (a peer's
        renegotiated offers name the same addresses, or new ones); :attr:`mapping`.

        Raises:
            OSError: a proxy cannot bind.
        """
        for line in sdp.splitlines():
            match = _CANDIDATE.match(line)
            if match is None or match["transport"].lower() != "udp":
                continue
            target = (_canonical(match["address"]), int(match["port"]))
            if target not in self.proxies:
                proxy = self._proxy(target, len(self.proxies))
                await proxy.start()
                self.proxies[target] = proxy
        return self.mapping

    def reshape(self, impairment: Impairment) -> None:
        """Every proxy's link as ``impairment`` from now on (:meth:`UdpImpairProxy.reshape`); with
        a bottleneck, the bottleneck, for every proxy on it (:meth:`Bottleneck.reshape`)."""
        if self.bottleneck is not None:
            self.bottleneck.reshape(impairment)
            return
        self._impairment = impairment
        for proxy in self.proxies.values():
            proxy.reshape(impairment)

    async def start(self) -> dict[Address, Address]:
        """Start every proxy; :attr:`mapping`.

        Raises:
            OSError: a proxy cannot bind.
        """
        for proxy in self.proxies.values():
            await proxy.start()
        return self.mapping

    @property
    def mapping(self) -> dict[Address, Address]:
        """target (host, port) -> the (host, port) of its proxy."""
        return {target: (self.host, proxy.port) for target, proxy in self.proxies.items()}

    async def close(self) -> None:
        for proxy in self.proxies.values():
            await proxy.close()

    def _proxy(self, target: Address, index: int) -> UdpImpairProxy:
        if self.bottleneck is not None:
            return UdpImpairProxy((self.host, 0), target, bottleneck=self.bottleneck)
        return UdpImpairProxy((self.host, 0), target, self._impairment, f"{self.seed}/{index}")

    async def __aenter__(self) -> dict[Address, Address]:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


# RFC 8839 section 5.1: candidate-attribute = "candidate" ":" foundation SP component-id SP
# transport SP priority SP connection-address SP port SP "typ" SP cand-type [SP rel-addr]
# [SP rel-port] *(SP extension-att-name SP extension-att-value); ABNF literals ignore case.
_CANDIDATE = re.compile(
    r"^(a=candidate:\S+ \d{1,3} (?P<transport>\S+) \d{1,10} )(?P<address>\S+) (?P<port>\d+)"
    r"(?P<rest> typ \S+.*)$",
    re.IGNORECASE,
)


def rewrite_candidates(sdp: str, mapping: dict[Address, Address]) -> str:
    """``sdp`` with the connection-address and port of each UDP ``a=candidate`` line found in
    ``mapping`` (``(address, port) -> (address, port)``) replaced, per the candidate-attribute
    grammar of RFC 8839 section 5.1. Foundation, component, priority, ``typ`` and the related
    address (``raddr``/``rport``) are kept, as are every other line and the line endings.
    Addresses compare as IP addresses (``::1`` matches ``0:0::1``); TCP candidates are left
    alone (the proxies are UDP).
    """
    wanted = {(_canonical(host), port): new for (host, port), new in mapping.items()}
    lines = sdp.splitlines(keepends=True)
    for i, line in enumerate(lines):
        body = line.rstrip("\r\n")
        match = _CANDIDATE.match(body)
        if match is None or match["transport"].lower() != "udp":
            continue
        new = wanted.get((_canonical(match["address"]), int(match["port"])))
        if new is not None:
            lines[i] = f"{match[1]}{new[0]} {new[1]}{match['rest']}{line[len(body) :]}"
    return "".join(lines)


def _canonical(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


# --- the command line ---

#: The shaping flags (each also as --up-* and --down-*) and their help.
_SHAPE_FLAGS = (
    ("rate-kbps", "bottleneck rate, kbit/s (default: unlimited)"),
    ("delay-ms", "one-way base delay, ms"),
    ("jitter-ms", "uniform +/- jitter around the delay, ms"),
    ("loss", "loss probability 0..1 (TCP: a retransmission delay)"),
    ("queue-bytes", f"bottleneck buffer, bytes (default {LinkShape.queue_bytes})"),
)


def _address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


def _window(text: str) -> tuple[float, float]:
    start, _, duration = text.partition(":")
    try:
        return float(start), float(duration)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START_S:DURATION_S, not {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.impair",
        description="Shape a TCP or UDP link like a bad mobile network (loadtest/README.md). "
        "Each shaping flag sets both directions; its --up-* (client -> target) and --down-* "
        "(target -> client) forms override one direction.",
    )
    parser.add_argument("protocol", choices=("tcp", "udp"))
    parser.add_argument("--listen", type=_address, default=("127.0.0.1", 0), help="HOST:PORT")
    parser.add_argument("--target", type=_address, required=True, help="HOST:PORT")
    parser.add_argument("--seed", default="0", help="seed of every random draw")
    parser.add_argument(
        "--stats-every-s", type=float, default=0.0, help="print the counters this often, s"
    )
    for prefix, title in (("", "both directions"), ("up-", "up"), ("down-", "down")):
        group = parser.add_argument_group(title)
        for flag, help_text in _SHAPE_FLAGS:
            group.add_argument(f"--{prefix}{flag}", type=float, help=help_text)
        group.add_argument(
            f"--{prefix}outage",
            type=_window,
            action="append",
            metavar="START_S:DURATION_S",
            help="pass nothing during this window, s after the start (repeatable)",
        )
        group.add_argument(
            f"--{prefix}reorder", action="store_true", default=None, help="UDP: let jitter reorder"
        )
    return parser


def _shape(args: argparse.Namespace, direction: str) -> LinkShape:
    """The direction's shape: its own flags, else the shared ones, else the defaults.

    Raises:
        ValueError: a value out of its range.
    """

    def flag(name: str) -> object:
        own = getattr(args, f"{direction}_{name}")
        return own if own is not None else getattr(args, name)

    def number(name: str, default: float) -> float:
        value = flag(name)
        return value if isinstance(value, float) else default

    rate_kbps, queue_bytes = flag("rate_kbps"), flag("queue_bytes")
    outages = flag("outage")
    return LinkShape(
        rate_bps=rate_kbps * 1000 if isinstance(rate_kbps, float) else None,
        delay_ms=number("delay_ms", 0.0),
        jitter_ms=number("jitter_ms", 0.0),
        loss=number("loss", 0.0),
        queue_bytes=int(queue_bytes) if isinstance(queue_bytes, float) else LinkShape.queue_bytes,
        outages=tuple(outages) if isinstance(outages, list) else (),
        reorder=bool(flag("reorder")),
    )


async def _serve(args: argparse.Namespace, impairment: Impairment) -> None:
    proxy_type = TcpImpairProxy if args.protocol == "tcp" else UdpImpairProxy
    proxy = proxy_type(args.listen, args.target, impairment, args.seed)
    await proxy.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    def report(event: str) -> None:
        counters = {"up": asdict(proxy.up), "down": asdict(proxy.down)}
        print(json.dumps({"event": event, "port": proxy.port, **counters}), flush=True)

    report("listening")
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.stats_every_s or None)
            if not stop.is_set():
                report("stats")
    finally:
        report("closed")
        await proxy.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m loadtest.impair``: run one proxy until SIGINT or SIGTERM, printing JSON lines
    of its counters: ``listening`` (with the port), ``stats`` every ``--stats-every-s``,
    ``closed``. Exits 2 on a bad flag."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        impairment = Impairment(up=_shape(args, "up"), down=_shape(args, "down"))
    except ValueError as error:
        parser.error(str(error))
    asyncio.run(_serve(args, impairment))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
