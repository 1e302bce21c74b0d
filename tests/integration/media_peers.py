"""What the media tests share: loopback-only ICE in this process, joining with media grants, and
bounded waits. Use ``pytestmark = pytest.mark.usefixtures("loopback_ice")`` and import the
fixture into the test module."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from clients import ClassroomClient
from rooms import Role
from sfu.ice import use_host_addresses
from signaling.auth import Grants, mint
from tests.server import LiveclassServer


@pytest.fixture
def loopback_ice() -> Iterator[None]:
    """Every aiortc peer of this process gathers ICE candidates on 127.0.0.1 only."""
    use_host_addresses(["127.0.0.1"])
    yield
    use_host_addresses(None)


async def joined(
    server: LiveclassServer,
    made: list[Any],
    identity: str,
    room: str = "class",
    role: str | None = None,
    **grants: bool,
) -> ClassroomClient:
    """A connected client of ``room`` (appended to ``made`` to be closed); the role is the
    teacher's for identity ``"teacher"``, else a student's; ``grants`` are the token's media
    grants (``can_publish``, ``can_subscribe``)."""
    role = role or ("teacher" if identity == "teacher" else "student")
    token = mint(
        server.keyring,
        identity=identity,
        name=identity,
        grants=Grants(room, Role(role), **grants),
        ttl_s=600,
    )
    client = ClassroomClient(server.ws_url, token, room)
    made.append(client)
    await client.connect()
    return client


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait (polling every 50 ms) until ``condition()`` holds; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
