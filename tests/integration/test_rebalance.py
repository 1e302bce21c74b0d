"""Rebalancing after a rolling restart: three ``liveclass serve --redis-cluster`` nodes behind the
shipped HAProxy config (``balance leastconn``), 60 SDK clients in three rooms.

Each node is restarted in turn (SIGTERM, then started again on its port), the way an operator
rolls an upgrade; the clients of the stopping node reconnect through HAProxy and resume. Left
alone, the last node restarted would hold nobody. Nodes over their share ask some clients to
reconnect (``reconnect{reason: "rebalance"}``, close 1012), so within a bounded time every node
holds 25-45 % of the clients, and every client resumed exactly: it saw every acknowledged chat
line of its room, in the room's order, and was never given a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from clients import ClassroomClient, CommandFailed, ConnectionLost
from tests.haproxy import HAProxy
from tests.metrics_scrape import scrape, value
from tests.redis_cluster import RedisCluster
from tests.server import LiveclassServer

NODES = 3
ROOMS = 3
CLIENTS = 60
#: Quick timings for the test (the defaults: 2 s reports, 30 s quiet, 5 s spread).
FAST = (
    "--rebalance-interval-s",
    "0.3",
    "--rebalance-quiet-s",
    "1",
    "--rebalance-spread-s",
    "1",
)
BALANCED_WITHIN_S = 30.0
#: Every node ends between these shares of the clients (the acceptance line of issue 17).
SHARE = (0.25, 0.45)


@pytest.fixture(scope="module")
def tier(
    cluster: RedisCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[LiveclassServer], HAProxy]]:
    secret = secrets.token_urlsafe(32)
    nodes: list[LiveclassServer] = []
    balancer: HAProxy | None = None
    try:
        for i in range(1, NODES + 1):
            args = ["--redis-cluster", cluster.seeds, "--node-id", f"node{i}", "--no-media"]
            node = LiveclassServer(
                tmp_path_factory.mktemp(f"node{i}"), [*args, *FAST], secret=secret
            )
            nodes.append(node.start())
        balancer = HAProxy(
            tmp_path_factory.mktemp("haproxy"), [("127.0.0.1", n.port) for n in nodes]
        ).start()
        yield nodes, balancer
    finally:
        if balancer is not None:
            balancer.stop()
        for node in nodes:
            node.stop()


def held(balancer: HAProxy) -> dict[str, int]:
    """Server name -> connections open to it now (``scur``)."""
    return {row["svname"]: int(row["scur"] or 0) for row in balancer.servers()}


@pytest.fixture
async def classes(
    tier: tuple[list[LiveclassServer], HAProxy],
) -> AsyncIterator[list[list[ClassroomClient]]]:
    nodes, balancer = tier
    suffix = secrets.token_hex(3)
    rooms: list[list[ClassroomClient]] = [[] for _ in range(ROOMS)]
    for i in range(CLIENTS):
        room, seat = f"class-{i % ROOMS}-{suffix}", i // ROOMS
        role = "teacher" if seat == 0 else "student"
        rooms[i % ROOMS].append(
            ClassroomClient(
                balancer.ws_url,
                nodes[0].token(f"{role}-{seat}", role, room),
                room,
                backoff=(0.05, 0.5),
            )
        )
    everyone = [c for room in rooms for c in room]
    try:
        for start in range(0, CLIENTS, 10):
            await asyncio.gather(*(c.connect() for c in everyone[start : start + 10]))
        yield rooms
    finally:
        await asyncio.gather(*(c.close() for c in everyone), return_exceptions=True)


async def lecture(teacher: ClassroomClient, stop: asyncio.Event) -> list[str]:
    """Chat lines every 50 ms until ``stop``; returns those acknowledged."""
    acked: list[str] = []
    n = 0
    while not stop.is_set():
        n += 1
        text = f"line {n}"
        with contextlib.suppress(ConnectionLost, CommandFailed, TimeoutError):
            await teacher.chat(text)
            acked.append(text)
        await asyncio.sleep(0.05)
    return acked


def chat_lines(client: ClassroomClient) -> list[tuple[int, str]]:
    return [(e.id, e.data["text"]) for e in client.session.events if e.type == "chat.message"]


async def test_a_rolling_restart_ends_balanced_and_every_client_resumed_exactly(
    tier: tuple[list[LiveclassServer], HAProxy], classes: list[list[ClassroomClient]]
) -> None:
    nodes, balancer = tier
    everyone = [c for room in classes for c in room]
    stop = asyncio.Event()
    lectures = [asyncio.create_task(lecture(room[0], stop)) for room in classes]

    for node, name in zip(nodes, balancer.names, strict=True):
        assert node.proc is not None
        await asyncio.to_thread(node.terminate)
        await asyncio.to_thread(balancer.wait_state, name, "DOWN", 5.0)
        await asyncio.to_thread(node.start)
        await asyncio.to_thread(balancer.wait_state, name, "UP", 5.0)
        await asyncio.gather(*(c.wait_until(lambda c=c: c.connected, 15) for c in everyone))
    print(f"after the roll: {held(balancer)}")

    started = time.monotonic()
    low, high = (int(CLIENTS * share) for share in SHARE)
    while True:
        counts = held(balancer)
        if all(low <= n <= high for n in counts.values()) and sum(counts.values()) == CLIENTS:
            break
        assert time.monotonic() - started < BALANCED_WITHIN_S, counts
        await asyncio.sleep(0.1)
    print(f"balanced after {time.monotonic() - started:.1f}s: {counts}")
    # Every client the last node restarted holds now came to it by a rebalance ask.
    asks = sum(value(scrape(node.http_url), "liveclass_rebalance_asks_total") for node in nodes)
    assert asks >= low, asks
    await asyncio.gather(*(c.wait_until(lambda c=c: c.connected, 15) for c in everyone))

    stop.set()
    sent = await asyncio.gather(*lectures)
    for room, acked in zip(classes, sent, strict=True):
        assert len(acked) > 20, acked
        teacher = room[0]
        await teacher.chat("end")
        for client in room:
            await client.wait_for(lambda e: e.type == "chat.message" and e.data["text"] == "end")
        # One order for the room, and every acknowledged line in it, seen by everyone.
        order = chat_lines(teacher)
        assert set(acked) <= {text for _, text in order}
        for client in room:
            assert chat_lines(client) == order
            assert client.session.welcomes == 1, "a reconnect got a snapshot, not a resume"
    asked = sum(c.session.reconnect_reasons.count("rebalance") for c in everyone)
    assert asked >= 1
    print(f"clients asked to rebalance: {asked}")
