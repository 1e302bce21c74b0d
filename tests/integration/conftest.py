"""Fixtures integration tests share (pytest finds them here; no import, so no shadowed names):
a Redis Cluster per module or per test, and the media tests' SFU server and clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from clients import ClassroomClient
from tests.redis_cluster import RedisCluster
from tests.server import LiveclassServer


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A real 6-node Redis Cluster shared by a test module's tests."""
    cluster = RedisCluster(Path(tmp_path_factory.mktemp("redis-cluster"))).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    """A cluster of its own, for a test that kills or restarts Redis nodes."""
    cluster = RedisCluster(tmp_path / "redis-cluster").start()
    yield cluster
    cluster.stop()


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
