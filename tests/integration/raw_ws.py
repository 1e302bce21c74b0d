"""WebSocket handshakes and frames written byte by byte, for request targets and frames that a
client library would normalize or refuse to send (absolute-form targets, ``//`` paths, frames
announcing 30 MB, unfinished fragments, a frame pipelined behind its handshake)."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass

WAIT_S = 5.0
#: RFC 6455 section 1.3's sample key; the server's accept value is not checked here.
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
BINARY = 0x2
CONTINUATION = 0x0
CLOSE = 0x8


def handshake(target: str, headers: dict[str, str] | None = None) -> bytes:
    """An HTTP/1.1 upgrade request for ``target``, written exactly as given."""
    lines = [
        f"GET {target} HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def frame_header(length: int, opcode: int = BINARY, *, fin: bool = True) -> bytes:
    """A masked client frame's header announcing ``length`` payload bytes. The mask is zero, so
    the payload goes as it is (RFC 6455 section 5.3: XOR with a zero key)."""
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        header = struct.pack("!BB", first, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, length)
    return header + b"\0\0\0\0"


def frame(payload: bytes, opcode: int = BINARY, *, fin: bool = True) -> bytes:
    return frame_header(len(payload), opcode, fin=fin) + payload


@dataclass
class Response:
    status: int
    headers: dict[str, str]


@dataclass
class RawConnection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    response: Response | None

    async def close_code(self, timeout: float = WAIT_S) -> int | None:
        """Read server frames until a close frame (its code) or the end of the stream (None).

        Raises:
            TimeoutError: the server neither closed nor sent a close frame in ``timeout``: it
                holds the connection.
        """
        async with asyncio.timeout(timeout):
            while True:
                try:
                    head = await self.reader.readexactly(2)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return None
                length = head[1] & 0x7F
                if length == 126:
                    length = struct.unpack("!H", await self.reader.readexactly(2))[0]
                elif length == 127:
                    length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
                try:
                    payload = await self.reader.readexactly(length)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return None
                if head[0] & 0x0F == CLOSE:
                    return int(struct.unpack("!H", payload[:2])[0]) if len(payload) >= 2 else None

    async def send(self, data: bytes) -> bool:
        """Write and drain; False once the server has closed the connection."""
        try:
            self.writer.write(data)
            await self.writer.drain()
        except ConnectionError:
            return False
        return not self.writer.is_closing()

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def open_raw(
    port: int, target: str, headers: dict[str, str] | None = None, *, pipelined: bytes = b""
) -> RawConnection:
    """Send the handshake (and ``pipelined`` bytes in the same write) and read the response
    head; ``response`` is None when the server closed without answering."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(handshake(target, headers) + pipelined)
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    try:
        async with asyncio.timeout(WAIT_S):
            head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return RawConnection(reader, writer, None)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    response = Response(int(status_line.split(" ")[1]), fields)
    if response.status != 101:
        body_length = int(fields.get("content-length", "0"))
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await reader.readexactly(body_length)
    return RawConnection(reader, writer, response)
