"""A command's store failure is logged with its room (an operator sees which room failed)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from signaling.node import _if_unavailable
from signaling.store import StoreUnavailable


class _Outbox:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def put(self, frame: bytes) -> None:
        self.frames.append(frame)


async def test_a_commands_store_failure_names_its_room(caplog: pytest.LogCaptureFixture) -> None:
    done: asyncio.Future[tuple[()]] = asyncio.get_running_loop().create_future()
    done.set_exception(StoreUnavailable("cluster down"))
    outbox = _Outbox()
    with caplog.at_level(logging.ERROR, logger="signaling.node"):
        _if_unavailable("math-101", outbox, 7, done)  # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records] == [
        "room math-101: store unavailable: cluster down"
    ]
    assert len(outbox.frames) == 1  # and the sender is answered unavailable
