"""One room, one worker: nodes that place the same rooms at the same moment agree, even when
their views of which workers are dead differ.

The placement decision is one script on the cluster's ``{sfu}`` slot
(:data:`signaling.sfu_registry.PLACE_SCRIPT`), checked here on a real 6-node Redis Cluster with
workers registered by hand (two "nodes" are two callers with their own lists of workers found
dead), and end to end with two real nodes and two real ``liveclass sfu`` workers.

The split seen in a worker roll: a node that lost a worker's earlier process still held it dead
when the worker came back under the same id, so it moved rooms off it while the other node kept
placing rooms there. A finding now names the process (its registration epoch) and is shared by
every node.
"""

from __future__ import annotations

import asyncio
import secrets
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

ROOMS = 20


@pytest.fixture
async def registry(cluster: RedisCluster) -> AsyncIterator[WorkerRegistry]:
    router = ClusterRouter(parse_seeds(cluster.seeds))
    await router.start()
    try:
        yield WorkerRegistry(router)
    finally:
        await router.close()


async def register(registry: WorkerRegistry, *workers: tuple[str, str, int]) -> None:
    """(id, epoch, load) of each worker, registered for a minute."""
    for worker, epoch, load in workers:
        await registry.heartbeat(worker, f"ws://{worker}", 60_000, load, [], epoch)


async def test_a_node_that_lost_an_earlier_process_of_a_worker_agrees_with_the_others(
    registry: WorkerRegistry,
) -> None:
    tag = secrets.token_hex(3)
    x, y = f"x-{tag}", f"y-{tag}"
    try:
        await register(registry, (x, "one", 0), (y, "one", 0))
        # Node A lost x's process "one"; x came back under the same id as process "two".
        await register(registry, (x, "two", 0))
        node_a, node_b = {x: "one"}, {}
        rooms = [f"r{i}-{tag}" for i in range(ROOMS)]
        # Both nodes place every room at the same moment, twice.
        for _ in range(2):
            answers = await asyncio.gather(
                *(registry.place(room, dead) for room in rooms for dead in (node_a, node_b))
            )
            for i, room in enumerate(rooms):
                a, b = answers[2 * i], answers[2 * i + 1]
                assert a is not None and b is not None
                assert a.worker_id == b.worker_id, f"{room}: node A on {a}, node B on {b}"
        placed = await registry.view(rooms)
        assert set(placed.rooms.values()) == {x, y}  # both workers take rooms
        assert placed.epochs[x] == "two"
    finally:
        await registry.unregister(x, [])
        await registry.unregister(y, [])


async def test_a_worker_one_node_found_dead_is_placed_by_no_node(registry: WorkerRegistry) -> None:
    tag = secrets.token_hex(3)
    x, y = f"x-{tag}", f"y-{tag}"
    try:
        await register(registry, (x, "one", 0), (y, "one", 5))  # x is the less loaded
        first = await registry.place(f"old-{tag}")
        assert first is not None and first.worker_id == x
        # Node A lost x (process "one"): its room moves, once, to y.
        moved = await registry.place(f"old-{tag}", {x: "one"})
        assert moved is not None and (moved.worker_id, moved.new) == (y, True)
        # Node B has not noticed: it keeps the room on y and places no new room on x.
        kept = await registry.place(f"old-{tag}")
        assert kept is not None and kept.worker_id == y
        for i in range(3):
            new = await registry.place(f"new{i}-{tag}")
            assert new is not None and new.worker_id == y
        # x restarted (another process under the id): it is placed again.
        await register(registry, (x, "two", 0))
        again = await registry.place(f"later-{tag}")
        assert again is not None and again.worker_id == x
    finally:
        await registry.unregister(x, [])
        await registry.unregister(y, [])


async def test_a_placement_lost_in_a_failover_is_restored_by_the_worker_holding_the_room(
    registry: WorkerRegistry, cluster: RedisCluster
) -> None:
    tag = secrets.token_hex(3)
    x, y = f"x-{tag}", f"y-{tag}"
    room = f"r-{tag}"
    try:
        await register(registry, (x, "one", 0), (y, "one", 1))
        placed = await registry.place(room)
        assert placed is not None and placed.worker_id == x
        # The record is gone (a failover lost the last write), x still has the room's Router.
        cluster.cli(cluster.ports[0], "-c", "del", f"{{sfu}}:room:{room}")
        await registry.heartbeat(x, f"ws://{x}", 60_000, 0, [room], "one")
        # Every node placing it now finds it where its media is, although y is less loaded now.
        await register(registry, (y, "one", 0))
        await registry.heartbeat(x, f"ws://{x}", 60_000, 9, [room], "one")
        again = await registry.place(room)
        assert again is not None and (again.worker_id, again.new) == (x, False)
    finally:
        await registry.unregister(x, [room])
        await registry.unregister(y, [])


@pytest.fixture(scope="module")
def secret() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def nodes(
    cluster: RedisCluster, secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[LiveclassServer]]:
    started: list[LiveclassServer] = []
    try:
        for i in (1, 2):
            node = LiveclassServer(
                Path(tmp_path_factory.mktemp(f"node{i}")),
                ["--redis-cluster", cluster.seeds, "--node-id", f"agree{i}", "--rate-per-s", "200"],
                secret=secret,
            )
            started.append(node)
            node.start()
        yield started
    finally:
        for node in started:
            node.stop()


@pytest.fixture
def workers(cluster: RedisCluster, secret: str, tmp_path: Path) -> Iterator[list[SfuWorker]]:
    started: list[SfuWorker] = []
    try:
        for i in (1, 2):
            worker = SfuWorker(
                tmp_path / "workers", cluster.seeds, f"a{i}-{secrets.token_hex(3)}", secret=secret
            )
            started.append(worker)
            worker.start()
        yield started
    finally:
        for worker in started:
            worker.stop()


async def test_rooms_joined_on_two_nodes_at_once_each_have_their_media_on_one_worker(
    cluster: RedisCluster, nodes: list[LiveclassServer], workers: list[SfuWorker]
) -> None:
    tag = secrets.token_hex(3)
    rooms = [f"m{i}-{tag}" for i in range(ROOMS)]
    clients = [
        ClassroomClient(node.ws_url, node.token(f"s{n}", "student", room), room)
        for room in rooms
        for n, node in enumerate(nodes)
    ]
    try:
        await asyncio.gather(*(c.connect() for c in clients))
        await asyncio.gather(*(c.request("media.subscribe") for c in clients))
        routers = [int(w.metric("liveclass_sfu_routers")) for w in workers]
        # A room split over the two workers would have a Router on each.
        assert sum(routers) == ROOMS, routers
        assert all(r > 0 for r in routers), routers
        peers = [int(w.metric("liveclass_sfu_peers")) for w in workers]
        assert peers == [2 * r for r in routers], (peers, routers)
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
