"""The BoardStore contract, against both adapters: SQLite (embedded) and a real Redis Cluster
through signaling's ClusterRouter; then what only the Redis adapter does (concurrent nodes,
wake-ups, the compaction lease, WAIT for a replica before the ack, an unreachable cluster)."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pycrdt import Array, Doc, merge_updates
from redis.asyncio import Redis

from signaling.redis_cluster import ClusterRouter, ClusterUnavailable, parse_seeds
from signaling.redis_log import BoardWake, ReplicaWait, decode_wake
from tests.redis_cluster import RedisCluster, free_cluster_ports
from whiteboard import BoardStore, BoardStoreUnavailable, RedisBoardStore, SqliteBoardStore
from whiteboard.redis_store import board_key, wake_channel

TS = 1_700_000_000_000

Routers = Callable[[], ClusterRouter]


@pytest.fixture
async def routers(cluster: RedisCluster) -> AsyncIterator[Routers]:
    """Makes routers on the cluster, one per simulated node; closes them after the test (the
    store does not: the composition root owns its router)."""
    made: list[ClusterRouter] = []

    def router() -> ClusterRouter:
        made.append(ClusterRouter(parse_seeds(cluster.seeds)))
        return made[-1]

    yield router
    for router_ in made:
        await router_.close()


def redis_store(router: ClusterRouter, replica_wait_ms: int = 100) -> RedisBoardStore:
    """The store as the composition root wires it (one replica, as the default config)."""
    return RedisBoardStore(
        router,
        unavailable=(ClusterUnavailable,),
        replica_wait=ReplicaWait(1, replica_wait_ms),
        covered=lambda: router.covered,
    )


def unconfirmed(store: RedisBoardStore) -> int:
    """The store's writes acknowledged before a replica confirmed them."""
    assert isinstance(store.replica_wait, ReplicaWait)
    return store.replica_wait.unconfirmed


@pytest.fixture(params=["sqlite", "redis"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, routers: Routers
) -> AsyncIterator[BoardStore]:
    made: BoardStore
    if request.param == "sqlite":
        made = SqliteBoardStore(tmp_path / "whiteboards.sqlite3")
    else:
        made = redis_store(routers())
    yield made
    await made.close()


@pytest.fixture
def room(request: pytest.FixtureRequest) -> str:
    return f"room-{request.node.name}"


class Pen:
    """One Yjs client drawing records into the board's ``records`` array, an update per record."""

    def __init__(self) -> None:
        self.doc: Doc = Doc()
        self.records = self.doc.get("records", type=Array)

    def draw(self, record: str) -> bytes:
        before = self.doc.get_state()
        self.records.append(record)
        return self.doc.get_update(before)


def records(updates: list[bytes]) -> list[str]:
    doc: Doc = Doc()
    for update in updates:
        doc.apply_update(update)
    return sorted(doc.get("records", type=Array))


async def test_a_board_never_written_loads_empty(store: BoardStore, room: str) -> None:
    board = await store.load(room, "main")
    assert (board.updates, board.last_seq, board.size, board.marks) == ([], 0, 0, {})


async def test_appends_number_updates_from_one_and_load_returns_them_in_order(
    store: BoardStore, room: str
) -> None:
    pen = Pen()
    first, second, third = pen.draw("a"), pen.draw("b"), pen.draw("c")
    assert await store.append(room, "main", [first, second]) == 2
    assert await store.append(room, "main", [third]) == 3
    board = await store.load(room, "main")
    assert board.updates == [first, second, third]
    assert board.last_seq == 3
    assert board.size == len(first) + len(second) + len(third)
    assert (await store.load(room, "other")).last_seq == 0  # boards are numbered apart


async def test_marks_are_set_with_an_append_or_alone_and_overwritten(
    store: BoardStore, room: str
) -> None:
    assert await store.append(room, "main", [], {"cleared_through": 4}) == 0
    assert await store.append(room, "main", [Pen().draw("a")], {"cleared_through": 9}) == 1
    await store.set_marks(room, "main", {"snapshot_through": 5})
    board = await store.load(room, "main")
    assert board.marks == {"cleared_through": 9, "snapshot_through": 5}
    assert board.last_seq == 1


async def test_compaction_replaces_the_updates_through_a_seq_by_their_merge_and_keeps_later_ones(
    store: BoardStore, room: str
) -> None:
    pen = Pen()
    early = [pen.draw(r) for r in "abc"]
    await store.append(room, "main", early)
    late = [pen.draw(r) for r in "de"]
    await store.append(room, "main", late)
    merged = merge_updates(*early)
    await store.compact(room, "main", merged, 3)
    board = await store.load(room, "main")
    assert board.updates == [merged, *late]
    assert board.last_seq == 5
    assert board.size == len(merged) + sum(map(len, late))
    assert records(board.updates) == list("abcde")
    assert await store.append(room, "main", [pen.draw("f")]) == 6
    assert records((await store.load(room, "main")).updates) == list("abcdef")
    whole = pen.doc.get_update()
    await store.compact(room, "main", whole, 6)  # through the last update: numbering goes on
    last = pen.draw("g")
    assert await store.append(room, "main", [last]) == 7
    board = await store.load(room, "main")
    assert (board.updates, board.last_seq, board.size) == ([whole, last], 7, len(whole + last))


async def test_a_compaction_older_than_the_base_changes_nothing(
    store: BoardStore, room: str
) -> None:
    pen = Pen()
    updates = [pen.draw(r) for r in "abcdef"]
    await store.append(room, "main", updates)
    newer = merge_updates(*updates[:5])
    await store.compact(room, "main", newer, 5)
    await store.compact(room, "main", merge_updates(*updates[:3]), 3)  # a slower compactor
    assert (await store.load(room, "main")).updates == [newer, updates[5]]
    await store.compact(room, "main", merge_updates(*updates[:2], updates[4]), 5)  # as slow
    board = await store.load(room, "main")
    assert board.updates == [newer, updates[5]]
    assert board.size == len(newer) + len(updates[5])
    assert await store.read(room, "main", 5) == [(6, updates[5])]


async def test_a_compaction_past_the_last_update_is_refused_and_changes_nothing(
    store: BoardStore, room: str
) -> None:
    pen = Pen()
    updates = [pen.draw(r) for r in "abc"]
    await store.append(room, "main", updates)
    with pytest.raises(ValueError):
        await store.compact(room, "main", pen.doc.get_update(), 4)  # no update 4 yet
    board = await store.load(room, "main")
    assert (board.updates, board.last_seq) == (updates, 3)
    assert await store.read(room, "main", 0) == list(enumerate(updates, start=1))


async def test_read_gives_the_updates_after_a_seq_or_none_once_compaction_merged_some(
    store: BoardStore, room: str
) -> None:
    assert await store.read(room, "main", 0) == []  # never written
    pen = Pen()
    updates = [pen.draw(r) for r in "abcde"]
    await store.append(room, "main", updates)
    assert await store.read(room, "main", 0) == list(enumerate(updates, start=1))
    assert await store.read(room, "main", 3) == [(4, updates[3]), (5, updates[4])]
    assert await store.read(room, "main", 5) == []
    assert await store.read(room, "main", 9) == []  # ahead of the store: nothing yet
    merged = merge_updates(*updates[:3])
    await store.compact(room, "main", merged, 3)
    assert await store.read(room, "main", 3) == [(4, updates[3]), (5, updates[4])]
    assert await store.read(room, "main", 4) == [(5, updates[4])]
    assert await store.read(room, "main", 2) is None  # update 3 is in the base: reload
    assert await store.read(room, "main", 0) is None
    assert (await store.load(room, "main")).updates == [merged, *updates[3:]]
    late = pen.draw("f")
    assert await store.append(room, "main", [late]) == 6
    assert await store.read(room, "main", 5) == [(6, late)]
    assert await store.read(room, "other", 0) == []  # boards are apart


async def test_a_snapshot_is_kept_by_id_and_sets_the_snapshot_through_mark(
    store: BoardStore, room: str
) -> None:
    pen = Pen()
    await store.append(room, "main", [pen.draw("a")])
    first = pen.doc.get_update()
    await store.save_snapshot(room, "main", 7, first, TS)
    pen.draw("b")
    assert await store.snapshot(room, "main", 7) == first
    assert await store.snapshot(room, "main", 8) is None
    assert await store.snapshot(room, "other", 7) is None
    assert (await store.load(room, "main")).marks == {"snapshot_through": 7}
    second = pen.doc.get_update()
    await store.save_snapshot(room, "main", 7, second, TS + 1)  # the same event again
    assert await store.snapshot(room, "main", 7) == second
    assert store.ready()


async def test_a_closed_store_is_not_ready_and_refuses_calls(store: BoardStore, room: str) -> None:
    await store.append(room, "main", [Pen().draw("a")])
    assert store.ready()
    await store.close()
    assert not store.ready()
    with pytest.raises(BoardStoreUnavailable):
        await store.append(room, "main", [Pen().draw("b")])
    await store.close()  # twice is fine


async def test_the_embedded_store_always_grants_the_compaction_lease(tmp_path: Path) -> None:
    store = SqliteBoardStore(tmp_path / "whiteboards.sqlite3")  # one process owns the file
    try:
        assert await store.claim_compaction("r", "main", "node-a", 10_000)
        assert await store.claim_compaction("r", "main", "node-b", 10_000)
        assert await store.release_compaction("r", "main", "node-a")
    finally:
        await store.close()


# -- Redis only --------------------------------------------------------------------------------


async def test_concurrent_appends_from_two_nodes_get_consecutive_seqs_and_wake_with_them(
    routers: Routers, room: str
) -> None:
    nodes = [redis_store(routers()), redis_store(routers())]
    await nodes[0].router.start()  # nodes[1] starts cold, with a burst
    owner = nodes[0].router.owner(wake_channel(room, "main"))
    assert owner is not None
    subscriber = Redis(host=owner[0], port=owner[1])
    pubsub = subscriber.pubsub()
    rng = random.Random(4)
    pens = [Pen(), Pen()]
    batches = [
        (i % 2, [pens[i % 2].draw(f"{i}.{k}") for k in range(rng.randint(1, 3))]) for i in range(40)
    ]
    try:
        await pubsub.ssubscribe(wake_channel(room, "main"))
        lasts = await asyncio.gather(
            *(nodes[node].append(room, "main", updates) for node, updates in batches)
        )
        by_seq: dict[int, bytes] = {}
        appended = set()
        for last, (_, updates) in zip(lasts, batches, strict=True):
            first = last - len(updates) + 1
            appended.add((first, tuple(updates)))
            for seq, update in enumerate(updates, start=first):
                assert seq not in by_seq, f"seq {seq} given twice"
                by_seq[seq] = update
        assert sorted(by_seq) == list(range(1, len(by_seq) + 1))
        board = await nodes[1].load(room, "main")
        assert board.updates == [by_seq[seq] for seq in sorted(by_seq)]
        assert board.last_seq == len(by_seq)
        assert records(board.updates) == sorted(r for p in pens for r in p.records)
        assert await nodes[0].read(room, "main", 0) == sorted(by_seq.items())

        woken = set()
        deadline = asyncio.get_running_loop().time() + 5
        while len(woken) < len(batches):
            assert asyncio.get_running_loop().time() < deadline, "wake-ups missing"
            message = await pubsub.get_message(timeout=0.5)
            if message is not None and message["type"] in ("smessage", b"smessage"):
                wake = decode_wake(message["data"])
                assert isinstance(wake, BoardWake)
                woken.add((wake.first_seq, tuple(wake.updates)))
        assert woken == appended
    finally:
        await pubsub.aclose()
        await subscriber.aclose()
        for node in nodes:
            await node.close()


async def test_the_compaction_lease_is_exclusive_and_released_only_by_its_holder(
    routers: Routers, room: str
) -> None:
    nodes = [redis_store(routers()), redis_store(routers())]
    assert await nodes[0].claim_compaction(room, "main", "node-a", 10_000)
    assert not await nodes[1].claim_compaction(room, "main", "node-b", 10_000)
    assert await nodes[1].claim_compaction(room, "other", "node-b", 10_000)  # per board
    assert not await nodes[1].release_compaction(room, "main", "node-b")
    assert not await nodes[1].claim_compaction(room, "main", "node-b", 10_000)
    assert await nodes[0].release_compaction(room, "main", "node-a")
    assert await nodes[1].claim_compaction(room, "main", "node-b", 10_000)

    assert await nodes[0].claim_compaction(room, "brief", "node-a", 50)
    await asyncio.sleep(0.15)  # the holder died: the lease expires
    assert await nodes[1].claim_compaction(room, "brief", "node-b", 10_000)
    assert not await nodes[0].release_compaction(room, "brief", "node-a")
    assert not await nodes[0].claim_compaction(room, "brief", "node-a", 10_000)


def replica_of_owner(cluster: RedisCluster, key: str) -> int:
    """The port of the replica of ``key``'s master, as the master lists it (the replica its
    WAIT counts)."""
    info = cluster.cli(cluster.owner_of(key), "info", "replication")
    line = next(line for line in info.splitlines() if line.startswith("slave0:"))
    fields = dict(item.split("=", 1) for item in line.partition(":")[2].split(","))
    return int(fields["port"])


async def replica_log(cluster: RedisCluster, room: str, board: str) -> list[tuple[bytes, bytes]]:
    """The board's stream as the replica of its slot's master holds it (READONLY)."""
    key = board_key(room, board, "log")
    replica = Redis(host="127.0.0.1", port=replica_of_owner(cluster, key))
    try:
        await replica.execute_command("READONLY")
        return [(entry_id, fields[b"u"]) for entry_id, fields in await replica.xrange(key)]
    finally:
        await replica.aclose()


async def test_an_acknowledged_append_is_already_on_the_replica(
    cluster: RedisCluster, routers: Routers, room: str
) -> None:
    store = redis_store(routers())
    pen = Pen()
    expected: list[tuple[bytes, bytes]] = []
    for i in range(5):
        update = pen.draw(str(i))
        seq = await store.append(room, "main", [update])
        expected.append((f"{seq}-0".encode(), update))
        assert await replica_log(cluster, room, "main") == expected  # no waiting after the ack
    assert unconfirmed(store) == 0


async def test_an_append_waits_for_the_replica_and_without_it_is_acknowledged_after_the_wait(
    cluster: RedisCluster, routers: Routers, room: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A stopped replica (SIGSTOP, shorter than the cluster's node timeout, so no failover) holds
    the ack back for ``replica_wait_ms``; then the append is acknowledged anyway, counted and
    logged, and the replica catches up once it runs again."""
    store = redis_store(routers(), replica_wait_ms=300)
    pen = Pen()
    await store.append(room, "main", [pen.draw("a")])
    replica_port = replica_of_owner(cluster, board_key(room, "main", "log"))
    replica_pid = int((cluster.directory / str(replica_port) / "redis.pid").read_text())
    late = pen.draw("b")
    os.kill(replica_pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="signaling.redis_log"):
            assert await store.append(room, "main", [late]) == 2
        waited = time.monotonic() - started
    finally:
        os.kill(replica_pid, signal.SIGCONT)
    assert waited >= 0.25
    assert unconfirmed(store) == 1
    assert f"board {room}/main: append acknowledged before a replica confirmed it (0 of 1)" in (
        caplog.text
    )
    deadline = time.monotonic() + 5
    while (await replica_log(cluster, room, "main"))[-1:] != [(b"2-0", late)]:
        assert time.monotonic() < deadline, "the replica never caught up"
        await asyncio.sleep(0.05)


async def test_an_unreachable_cluster_raises_board_store_unavailable() -> None:
    port = free_cluster_ports(1)[0]
    router = ClusterRouter([("127.0.0.1", port)], timeout_s=0.5, redirect_budget_s=0.2)
    store = redis_store(router)
    try:
        with pytest.raises(BoardStoreUnavailable):
            await store.load("r", "main")
        with pytest.raises(BoardStoreUnavailable):
            await store.append("r", "main", [Pen().draw("a")])
        with pytest.raises(BoardStoreUnavailable):
            await store.read("r", "main", 0)
        with pytest.raises(BoardStoreUnavailable):
            await store.claim_compaction("r", "main", "node-a", 1000)
        assert not store.ready()
    finally:
        await store.close()
        await router.close()
