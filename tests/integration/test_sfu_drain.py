"""Draining an SFU worker: ``liveclass sfu`` on SIGUSR1 takes no new room, keeps the rooms it
holds, and takes new rooms again on SIGUSR2.

A real 6-node Redis Cluster, two real ``liveclass sfu`` workers and one real
``liveclass serve --redis-cluster`` node. A room is placed when a participant first sends
``media.subscribe`` (the worker makes the subscribe connection and sends its offer; no media has
to flow for placement), so the SDK's plain request is enough here.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from clients import ClassroomClient
from signaling import ClusterRouter, parse_seeds
from signaling.sfu_registry import WorkerRegistry
from tests.redis_cluster import RedisCluster
from tests.server import LiveclassServer
from tests.sfu_worker import SfuWorker

pytestmark = pytest.mark.timeout(120)

NEW_ROOMS = 6


@pytest.fixture(scope="module")
def secret() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def node(
    cluster: RedisCluster, secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveclassServer]:
    server = LiveclassServer(
        Path(tmp_path_factory.mktemp("node")),
        ["--redis-cluster", cluster.seeds, "--node-id", "drain-node", "--rate-per-s", "200"],
        secret=secret,
    )
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def workers(cluster: RedisCluster, secret: str, tmp_path: Path) -> Iterator[list[SfuWorker]]:
    started: list[SfuWorker] = []
    try:
        for i in (1, 2):
            worker = SfuWorker(
                tmp_path / "workers",
                cluster.seeds,
                f"d{i}-{secrets.token_hex(3)}",
                ["--heartbeat-ttl-ms", "1500"],
                secret=secret,
            )
            started.append(worker)
            worker.start()
        yield started
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture
async def clients() -> AsyncIterator[list[ClassroomClient]]:
    made: list[ClassroomClient] = []
    yield made
    await asyncio.gather(*(c.close() for c in made), return_exceptions=True)


def placed_on(cluster: RedisCluster, room: str) -> str:
    return cluster.cli(cluster.ports[0], "-c", "get", f"{{sfu}}:room:{room}").strip()


async def subscribe(
    node: LiveclassServer, clients: list[ClassroomClient], room: str, identity: str
) -> None:
    """A participant of ``room`` sends ``media.subscribe``: the room is placed (if new)."""
    client = ClassroomClient(node.ws_url, node.token(identity, "student", room), room)
    clients.append(client)
    await client.connect()
    await client.request("media.subscribe")


async def until_metric(worker: SfuWorker, name: str, value: float, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while worker.metric(name) != value:
        assert time.monotonic() < deadline, f"{name} of {worker.worker_id} is not {value}"
        await asyncio.sleep(0.05)


async def test_a_drained_worker_takes_no_new_room_and_keeps_its_own(
    cluster: RedisCluster,
    node: LiveclassServer,
    workers: list[SfuWorker],
    clients: list[ClassroomClient],
) -> None:
    tag = secrets.token_hex(3)
    kept = f"kept-{tag}"
    await subscribe(node, clients, kept, "ada")
    drained = next(w for w in workers if w.worker_id == placed_on(cluster, kept))
    (other,) = [w for w in workers if w is not drained]
    assert drained.proc is not None
    assert drained.metric("liveclass_sfu_draining") == 0

    os.kill(drained.proc.pid, signal.SIGUSR1)
    await until_metric(drained, "liveclass_sfu_draining", 1)
    assert drained.proc.poll() is None

    # Every new room goes to the other worker, although the drained one is the less loaded.
    for i in range(NEW_ROOMS):
        await subscribe(node, clients, f"new{i}-{tag}", "bob")
    assert {placed_on(cluster, f"new{i}-{tag}") for i in range(NEW_ROOMS)} == {other.worker_id}
    assert other.metric("liveclass_sfu_routers") == NEW_ROOMS

    # The room it holds stays there, for a participant who comes later too.
    await subscribe(node, clients, kept, "cy")
    assert placed_on(cluster, kept) == drained.worker_id
    assert drained.metric("liveclass_sfu_routers") == 1
    assert drained.metric("liveclass_sfu_peers") == 2
    assert "is draining: no new room is placed here (1 rooms here)" in drained.log()

    # Undrained, it is the less loaded again and takes the next room.
    os.kill(drained.proc.pid, signal.SIGUSR2)
    await until_metric(drained, "liveclass_sfu_draining", 0)
    await subscribe(node, clients, f"after-{tag}", "dan")
    assert placed_on(cluster, f"after-{tag}") == drained.worker_id


async def test_draining_a_worker_not_registered_changes_nothing(cluster: RedisCluster) -> None:
    router = ClusterRouter(parse_seeds(cluster.seeds))
    await router.start()
    registry = WorkerRegistry(router)
    try:
        assert await registry.drain(f"nobody-{secrets.token_hex(3)}") is False
        worker = f"w-{secrets.token_hex(3)}"
        assert await registry.heartbeat(worker, "ws://w", 60_000, 0, []) is False
        assert await registry.drain(worker) is True
        assert worker in await registry.draining()
        assert await registry.heartbeat(worker, "ws://w", 60_000, 0, []) is True
        # Leaving the registry clears the mark: the same id registered again is placed again.
        await registry.unregister(worker, [])
        assert worker not in await registry.draining()
    finally:
        await router.close()
