"""The send queue of one connection is bounded in frames and in bytes (signaling/outbox.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from websockets.protocol import State

from signaling.outbox import Outbox


class FakeConnection:
    """What Outbox uses of a websockets ServerConnection; ``paused`` is a peer that stopped
    reading (the transport's buffer is above its high-water mark)."""

    def __init__(self) -> None:
        self.paused = True
        self.sent: list[bytes] = []
        self.closed_with: int | None = None
        self.protocol = SimpleNamespace(
            extensions=[], state=State.OPEN, send_binary=self.sent.append
        )
        self.transport = SimpleNamespace(write=self.sent.append, abort=lambda: None)

    def send_data(self) -> None:
        pass

    async def drain(self) -> None:
        await asyncio.Event().wait()  # never drains: the peer does not read

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = code


def outbox(ws: Any, frames: int, limit_bytes: int, overflows: list[int]) -> Outbox:
    return Outbox(
        ws,
        frames,
        lambda: overflows.append(1),
        overflow_close=(1013, None),
        limit_bytes=limit_bytes,
    )


async def test_a_queue_is_a_slow_consumer_before_its_bytes_pass_the_bound() -> None:
    ws, overflows = FakeConnection(), []
    box = outbox(ws, 4096, 1000, overflows)
    for _ in range(10):
        assert box.put(b"x" * 100)
    assert box.queued_bytes == 1000
    assert not box.put(b"x")  # one byte more would pass the bound
    assert overflows == [1] and box.closed and box.queued_bytes == 0
    await asyncio.sleep(0)
    assert ws.closed_with == 1013


async def test_one_message_larger_than_the_bound_is_queued_when_nothing_else_is() -> None:
    ws, overflows = FakeConnection(), []
    box = outbox(ws, 4096, 1000, overflows)
    assert box.put(b"x" * 5000)  # a big board's sync step 2 still reaches a slow reader
    assert box.queued_bytes == 5000 and not overflows
    assert not box.put(b"x")
    assert overflows == [1]


async def test_the_frame_bound_still_applies_to_small_frames() -> None:
    ws, overflows = FakeConnection(), []
    box = outbox(ws, 3, 1_000_000, overflows)
    assert all(box.put(b"x") for _ in range(3))
    assert not box.put(b"x")
    assert overflows == [1]


async def test_a_connection_that_keeps_up_queues_nothing() -> None:
    ws, overflows = FakeConnection(), []
    ws.paused = False
    box = outbox(ws, 1, 10, overflows)
    for _ in range(100):
        assert box.put(b"x" * 100)
    assert box.queued_bytes == 0 and not overflows and len(ws.sent) == 100
