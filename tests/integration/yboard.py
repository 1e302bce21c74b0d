"""A minimal y-websocket client on pycrdt for tests that need byte-level control of what is sent.

It answers the server's sync step 1 with step 2, applies every step 2 and update it receives, and
keeps every message (parsed) and the close code. Interop with real Yjs clients is tested with
Node (tests/yjs); this client is for bad input, permissions and counting messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Array, Doc
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.server import LiveclassServer
from whiteboard.protocol import (
    AwarenessEntry,
    Message,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    encode_awareness,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
    parse,
)

WAIT_S = 5.0


def board_url(server: LiveclassServer, token: str, room: str = "class", board: str = "main") -> str:
    return f"ws://127.0.0.1:{server.port}/whiteboard/{room}/{board}?token={token}"


@dataclass
class YClient:
    """One connection with its own document (``records`` is the board's root array)."""

    ws: ClientConnection
    doc: Doc = field(default_factory=Doc)
    received: list[Message | bytes] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, *, read: bool = True, **kwargs: Any) -> YClient:
        ws = await connect(url, max_size=None, open_timeout=WAIT_S, **kwargs)
        client = cls(ws)
        if read:
            client._reader = asyncio.get_running_loop().create_task(client._read())
        return client

    @property
    def records(self) -> Array[Any]:
        return self.doc.get("records", type=Array)

    def contents(self) -> list[Any]:
        return self.records.to_py() or []

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                assert isinstance(data, bytes)
                try:
                    message: Message | bytes = parse(data)
                except ValueError:
                    message = data
                self.received.append(message)
                if isinstance(message, SyncStep1):
                    await self.ws.send(encode_sync_step2(self.doc.get_update(message.state_vector)))
                elif isinstance(message, SyncStep2 | SyncUpdate):
                    self.doc.apply_update(message.update)
        except ConnectionClosed:
            pass
        finally:
            if self.ws.protocol.close_rcvd is not None:
                self.close_code = self.ws.protocol.close_rcvd.code
                self.close_reason = self.ws.protocol.close_rcvd.reason

    async def sync(self) -> None:
        """Ask for the board (step 1) and wait for the step 2 answer."""
        seen = self.count(SyncStep2)
        await self.ws.send(encode_sync_step1(self.doc.get_state()))
        await self.wait_until(lambda: self.count(SyncStep2) > seen, "sync step 2")

    def count(self, kind: type) -> int:
        return sum(isinstance(m, kind) for m in self.received)

    async def draw(self, key: str, **val: Any) -> bytes:
        """Append one record locally and send the update; returns the update."""
        captured: list[bytes] = []
        subscription = self.doc.observe(lambda event: captured.append(event.update))
        try:
            self.records.append({"key": key, "val": val})
        finally:
            self.doc.unobserve(subscription)
        await self.ws.send(encode_update(captured[0]))
        return captured[0]

    async def send_awareness(self, client_id: int, clock: int, state: str) -> None:
        await self.ws.send(encode_awareness([AwarenessEntry(client_id, clock, state)]))

    async def wait_until(self, condition: Any, what: str, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.01)

    async def wait_closed(self, timeout: float = WAIT_S) -> int | None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ws.wait_closed(), timeout)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout)
        if self.ws.protocol.close_rcvd is not None:
            self.close_code = self.ws.protocol.close_rcvd.code
            self.close_reason = self.ws.protocol.close_rcvd.reason
        return self.close_code

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, WAIT_S)


async def fresh_contents(
    server: LiveclassServer, token: str, board: str = "main", room: str = "class"
) -> list[Any]:
    """What a client joining now sees on the board."""
    client = await YClient.open(board_url(server, token, room, board))
    try:
        await client.sync()
        return client.contents()
    finally:
        await client.close()
