"""Whiteboard limits over a real server: what a connection that never reads may make the server
hold, awareness floods, board scope and board-only participants (issue 12, items 4-7)."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
from collections.abc import Callable

from pycrdt import Map

from tests.integration.yboard import YClient, board_url
from tests.server import LiveclassServer
from whiteboard.protocol import encode_update

MIB = 1024 * 1024


def metric(server: LiveclassServer, name: str) -> float:
    _, body, _ = server.get("/metrics")
    match = re.search(rf"^{name} ([0-9.e+]+)$", body.decode(), re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def rss_bytes(server: LiveclassServer) -> int:
    assert server.proc is not None
    with open(f"/proc/{server.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def never_reading_board_socket(server: LiveclassServer, token: str) -> socket.socket:
    """A WebSocket handshake on a raw socket that then never reads. Its receive buffer is made
    small before connecting, so the kernel absorbs little and the server's queue fills."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /whiteboard/class/main?token={token} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_a_board_connection_that_never_reads_is_closed_before_its_queue_passes_the_bound(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--board-send-queue-bytes", str(MIB))
    writer = await YClient.open(board_url(server, server.token("t", "teacher")))
    await writer.sync()
    stuck = never_reading_board_socket(server, server.token("stuck"))
    try:
        await writer.wait_until(
            lambda: metric(server, "liveclass_board_connections") == 2, "both connected"
        )
        before = rss_bytes(server)
        # 64 x 512 KiB: each overwrites one map entry, so the board itself stays small (the
        # old value is garbage-collected by Yjs) and what grows is what is queued for `stuck`.
        scratch = writer.doc.get("scratch", type=Map)
        captured: list[bytes] = []
        subscription = writer.doc.observe(lambda event: captured.append(event.update))
        for i in range(64):
            scratch["big"] = f"{i:04d}" + "x" * (512 * 1024)
            await writer.ws.send(encode_update(captured.pop()))
            await asyncio.sleep(0.01)
        writer.doc.unobserve(subscription)
        await writer.wait_until(
            lambda: metric(server, "liveclass_slow_consumers_total") == 1, "the slow consumer", 10
        )
        await writer.wait_until(
            lambda: metric(server, "liveclass_board_connections") == 1, "the close", 10
        )
        grown = rss_bytes(server) - before
        assert writer.close_code is None
        # 32 MiB went to the board; the server kept at most the 1 MiB queue, one message and
        # the transport's buffer for the reader that never read.
        assert grown < 16 * MIB, f"RSS grew {grown / MIB:.1f} MiB"
    finally:
        stuck.close()
        await writer.close()
