"""Deadlines a connection meets on a real server: a ``/ws`` connection that never joins is closed
(4401, ``--join-timeout-s``), and a peer that stops answering WebSocket pings is closed with 1011
(``--ping-interval-s``, ``--ping-timeout-s``; docs/protocol.md, "Transport" and "Close codes")."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

import msgpack
import pytest

from tests.integration.rawsocket import raw_websocket
from tests.server import LiveclassServer

pytestmark = pytest.mark.timeout(60)

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING = 0x1, 0x2, 0x8, 0x9


def read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed before a whole frame arrived")
        data += chunk
    return data


def frames_until_close(sock: socket.socket) -> tuple[list[tuple[int, bytes]], int]:
    """The server's frames (opcode, payload; RFC 6455 section 5.2, unmasked) up to its close
    frame, and the close code in it."""
    seen: list[tuple[int, bytes]] = []
    while True:
        first, second = read_exactly(sock, 2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", read_exactly(sock, 2))
        elif length == 127:
            (length,) = struct.unpack("!Q", read_exactly(sock, 8))
        payload = read_exactly(sock, length)
        opcode = first & 0x0F
        if opcode == OP_CLOSE:
            (code,) = struct.unpack("!H", payload[:2])
            return seen, code
        seen.append((opcode, payload))


def test_a_connection_that_never_joins_is_closed_4401_after_the_join_timeout(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--join-timeout-s", "1")
    sock = raw_websocket(server, "/ws")
    opened = time.monotonic()
    with sock:
        frames, code = frames_until_close(sock)
    waited = time.monotonic() - opened
    assert code == 4401
    assert 0.8 <= waited < 5, waited
    errors = [msgpack.unpackb(p) for op, p in frames if op == OP_BINARY]
    assert [e["code"] for e in errors] == ["token_invalid"], errors


def test_a_peer_that_answers_no_ping_is_closed_1011(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server(
        "--ping-interval-s", "0.3", "--ping-timeout-s", "0.5", "--join-timeout-s", "30"
    )
    sock = raw_websocket(server, "/ws")
    with sock:
        frames, code = frames_until_close(sock)
    assert code == 1011
    assert any(op == OP_PING for op, _ in frames)
