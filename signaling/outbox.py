"""A bounded send queue for one WebSocket connection.

Fan-out calls :meth:`Outbox.put` for each recipient with the same frame bytes. While the socket
keeps up, the frame is written at once (no task, no await); when the transport's write buffer is
above its high-water mark, frames wait in a queue drained by one task, bounded in frames and in
bytes. A connection whose queue would pass either bound is a slow consumer: its queue is dropped,
it is sent ``reconnect{slow_consumer}`` and closed with 4008, and it resumes later from its last
event id (invariant 3: one slow client never slows a room). See
docs/decisions/0001-outbox-fast-path.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from rooms import CloseCode

from .codec import encode_reconnect
from .metrics import FrameTally

log = logging.getLogger(__name__)

#: Sent to a slow consumer before the close; resume is its own business (it knows its last id).
SLOW_CONSUMER_FRAME = encode_reconnect("slow_consumer", 0)
#: Payload bytes a queue holds at most unless told otherwise (``--send-queue-bytes``).
DEFAULT_LIMIT_BYTES = 1024 * 1024


def wire_frame(payload: bytes) -> bytes:
    """The RFC 6455 binary frame a server sends for ``payload``.

    Server frames are unmasked (RFC 6455 section 5.1) and, with no extension negotiated, the same
    bytes for every recipient: fan-out builds this once per event, not once per connection.
    """
    return Frame(Opcode.BINARY, payload).serialize(mask=False)


class Outbox:
    """The send side of one connection.

    Args:
        ws: the connection.
        limit: most frames queued while the socket is behind; one more makes a slow consumer.
        limit_bytes: most payload bytes queued while the socket is behind; a frame that would
            take the queue past it makes a slow consumer, except into an empty queue (one message
            larger than the bound, such as a big board's sync step 2, is still delivered). What a
            connection holds is then at most ``limit_bytes`` or one message, plus the transport's
            write buffer (its high-water mark plus the one message written past it).
        on_overflow: called once when the queue overflows, before the connection is closed.
        tally: counts the frames accepted (``liveclass_frames_sent_total``).
        overflow_close: the close code and last frame (None: no frame) for a slow consumer;
            ``/ws`` sends ``reconnect{slow_consumer}`` then 4008, a whiteboard closes with 1013.
    """

    __slots__ = (
        "_drainer",
        "_pending",
        "_pending_bytes",
        "_raw",
        "closed",
        "limit",
        "limit_bytes",
        "on_overflow",
        "overflow_close",
        "tally",
        "ws",
    )

    def __init__(
        self,
        ws: ServerConnection,
        limit: int,
        on_overflow: Callable[[], None] | None = None,
        tally: FrameTally | None = None,
        overflow_close: tuple[int, bytes | None] = (CloseCode.SLOW_CONSUMER, SLOW_CONSUMER_FRAME),
        *,
        limit_bytes: int = DEFAULT_LIMIT_BYTES,
    ) -> None:
        self.ws = ws
        self.overflow_close = overflow_close
        self.limit = limit
        self.limit_bytes = limit_bytes
        self.on_overflow = on_overflow
        self.tally = tally or FrameTally()
        # Pre-built frames are valid only without extensions (compression is off on the server).
        self._raw = not ws.protocol.extensions
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._drainer: asyncio.Task[None] | None = None
        self.closed = False

    def put(self, frame: bytes, wire: bytes | None = None) -> bool:
        """Send or queue one message; False when the connection is closed or just overflowed.

        Args:
            frame: the message payload (one MessagePack map).
            wire: optionally, ``wire_frame(frame)`` built once for many recipients; written to
                the socket as is while the connection is open, caught up and uncompressed.
        """
        if self.closed:
            return False
        ws = self.ws
        if self._pending or ws.paused:
            if len(self._pending) >= self.limit or (
                self._pending and self._pending_bytes + len(frame) > self.limit_bytes
            ):
                self._overflow()
                return False
            self._pending.append(frame)
            self._pending_bytes += len(frame)
            self.tally.frames += 1
            if self._drainer is None:
                self._drainer = asyncio.get_running_loop().create_task(self._drain())
            return True
        if ws.protocol.state is not State.OPEN:
            self.closed = True
            return False
        if wire is not None and self._raw:
            ws.transport.write(wire)
        else:
            ws.protocol.send_binary(frame)
            ws.send_data()
        self.tally.frames += 1
        return True

    def put_many(self, frames: list[bytes], wire: bytes) -> bool:
        """Send several messages at once; ``wire`` is their pre-built frames joined, written in
        one call while the connection is caught up (fewer syscalls and reads at both ends)."""
        ws = self.ws
        if (
            self.closed
            or self._pending
            or ws.paused
            or not self._raw
            or ws.protocol.state is not State.OPEN
        ):
            return all([self.put(frame) for frame in frames])
        ws.transport.write(wire)
        self.tally.frames += len(frames)
        return True

    async def _drain(self) -> None:
        ws = self.ws
        try:
            while self._pending and not self.closed:
                await ws.drain()
                while self._pending and not ws.paused:
                    if ws.protocol.state is not State.OPEN:
                        self.closed = True
                        return
                    frame = self._pending.popleft()
                    self._pending_bytes -= len(frame)
                    ws.protocol.send_binary(frame)
                    ws.send_data()
        except (ConnectionClosed, OSError):
            self.closed = True
        finally:
            self._drainer = None

    @property
    def queued_bytes(self) -> int:
        """Payload bytes waiting in the queue (not yet handed to the transport)."""
        return self._pending_bytes

    def _overflow(self) -> None:
        self._pending.clear()
        self._pending_bytes = 0
        self.closed = True
        if self.on_overflow is not None:
            self.on_overflow()
        code, final_frame = self.overflow_close
        asyncio.get_running_loop().create_task(
            self.close(code, "slow consumer", final_frame=final_frame)
        )

    async def flush(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for queued frames to reach the socket."""
        drainer = self._drainer
        if drainer is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(drainer), timeout)

    async def close(
        self, code: int, reason: str, *, final_frame: bytes | None, timeout: float = 2.0
    ) -> None:
        """Let queued frames go (unless overflowed), send ``final_frame``, close with ``code``.

        A peer that does not take the close within ``timeout`` seconds is aborted.
        """
        if not self.closed:
            await self.flush(timeout)
        self.closed = True
        self._pending.clear()
        self._pending_bytes = 0
        ws = self.ws
        if final_frame is not None and ws.protocol.state is State.OPEN:
            ws.protocol.send_binary(final_frame)
            ws.send_data()
        try:
            async with asyncio.timeout(timeout):
                await self.ws.close(code, reason)
        except (TimeoutError, ConnectionClosed, OSError):
            self.ws.transport.abort()
