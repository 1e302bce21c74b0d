"""Fixtures the media tests share (pytest finds them here; no import, so no shadowed names)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from clients import ClassroomClient
from tests.server import LiveclassServer


@pytest.fixture
def sfu(make_server: Callable[..., LiveclassServer]) -> LiveclassServer:
    """An embedded server whose SFU listens on loopback only, with room for bursts of frames."""
    return make_server("--sfu-listen-ips", "127.0.0.1", "--rate-per-s", "200")


@pytest.fixture
async def clients() -> AsyncIterator[list[ClassroomClient]]:
    """Classroom clients a test makes; all closed at its end."""
    made: list[ClassroomClient] = []
    yield made
    await asyncio.gather(*(c.close() for c in made), return_exceptions=True)
