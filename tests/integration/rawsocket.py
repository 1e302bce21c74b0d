"""A WebSocket handshake on a plain socket (RFC 6455 section 4.1), for tests that need a peer
which answers nothing by itself: no pong, no reading."""

from __future__ import annotations

import base64
import os
import socket

from tests.server import LiveclassServer


def raw_websocket(
    server: LiveclassServer, target: str, *, receive_buffer: int | None = None
) -> socket.socket:
    """Open ``target`` (``/ws``, ``/whiteboard/<room>/<board>?token=...``) and return the socket
    after the server's 101. ``receive_buffer`` (bytes) is set before connecting, so the kernel
    absorbs little of what the server sends."""
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock
