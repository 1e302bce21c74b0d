"""What the impairment proxy tests share: a UDP target that records each datagram, a TCP target
that echoes or sinks, and a bounded wait. Timing tolerances: a timer may fire late, never early,
so lower bounds are exact and upper bounds get :data:`LATE_S` of slack."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable
from typing import cast

#: How late a timer may fire on a loaded 2-core machine, s.
LATE_S = 0.030
#: The head of each test datagram: sequence, send time (loop s).
HEADER = struct.Struct("!Id")


class Recorder(asyncio.DatagramProtocol):
    """The target: records (arrival, sequence, send time) of each datagram; echoes if asked."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.arrivals: list[tuple[float, int, float]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        sequence, sent = HEADER.unpack_from(data)
        self.arrivals.append((asyncio.get_running_loop().time(), sequence, sent))
        if self.echo and self.transport is not None:
            self.transport.sendto(data, addr)


async def until(condition: Callable[[], bool], within_s: float) -> None:
    """Poll ``condition`` every ms (it reads counters the proxy changes synchronously) for at most
    ``within_s`` seconds."""
    for _ in range(int(within_s * 1000)):
        if condition():
            return
        await asyncio.sleep(0.001)


@contextlib.asynccontextmanager
async def tcp_server(
    *,
    echo: bool = True,
    sink: asyncio.Future[float] | None = None,
    sink_bytes: int = 0,
) -> AsyncIterator[tuple[str, int]]:
    """A TCP target on loopback: echoes what it reads, or not; resolves ``sink`` with the loop
    time once it has read ``sink_bytes``."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received = 0
        while data := await reader.read(65536):
            received += len(data)
            if echo:
                writer.write(data)
            if sink is not None and received >= sink_bytes and not sink.done():
                sink.set_result(asyncio.get_running_loop().time())
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[:2]
    finally:
        server.close()
        await server.wait_closed()
