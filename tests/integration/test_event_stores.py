"""The EventStore contract, against both adapters: SQLite (embedded) and a real Redis Cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from rooms import ChatMessageEvent, HandRaisedEvent, Role
from signaling import AppendConflict, EventStore, SqliteEventStore
from signaling.redis_log import RecordsWake, decode_wake
from signaling.redis_store import CONFLICT_RECORDS, RedisEventStore, wake_channel
from signaling.store import Snapshot
from tests.redis_cluster import RedisCluster

TS = 1_700_000_000_000


@pytest.fixture(params=["sqlite", "redis"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, cluster: RedisCluster
) -> AsyncIterator[EventStore]:
    made: EventStore
    if request.param == "sqlite":
        made = SqliteEventStore(tmp_path / "events.sqlite3")
    else:
        made = RedisEventStore.connect(cluster.seeds)
    yield made
    await made.close()


def chat(text: str) -> ChatMessageEvent:
    return ChatMessageEvent("s1", "Sam", Role.STUDENT, text, None)


async def test_an_empty_room_has_no_records(
    store: EventStore, request: pytest.FixtureRequest
) -> None:
    room = f"empty-{request.node.name}"
    assert await store.read(room, 0) == []
    assert await store.first_id(room) == 0


async def test_appends_number_events_from_one_and_read_returns_them_in_order(
    store: EventStore, request: pytest.FixtureRequest
) -> None:
    room = f"order-{request.node.name}"
    first = await store.append(room, [chat("a"), chat("b")], expected_last_id=0, ts=TS)
    second = await store.append(room, [HandRaisedEvent("s1", "Sam")], expected_last_id=2, ts=TS + 1)
    assert [r.id for r in first + second] == [1, 2, 3]
    records = await store.read(room, 0)
    assert records == first + second
    assert await store.read(room, 1, limit=1) == [first[1]]
    assert await store.read(room, 3) == []
    assert await store.first_id(room) == 1


async def test_an_append_at_a_stale_last_id_conflicts_and_writes_nothing(
    store: EventStore, request: pytest.FixtureRequest
) -> None:
    room = f"stale-{request.node.name}"
    await store.append(room, [chat("a")], expected_last_id=0, ts=TS)
    with pytest.raises(AppendConflict):
        await store.append(room, [chat("late")], expected_last_id=0, ts=TS)
    assert [r.event.text for r in await store.read(room, 0)] == ["a"]  # type: ignore[attr-defined]


async def test_a_redis_conflict_carries_the_records_the_caller_lacks(
    cluster: RedisCluster,
) -> None:
    """So a node that lost the race decides its batch again without another round trip."""
    store = RedisEventStore.connect(cluster.seeds)
    try:
        room = "conflict-carries"
        appended = await store.append(room, [chat("a"), chat("b")], expected_last_id=0, ts=TS)
        appended += await store.append(room, [chat("c")], expected_last_id=2, ts=TS + 1)
        with pytest.raises(AppendConflict) as refused:
            await store.append(room, [chat("late")], expected_last_id=1, ts=TS + 2)
        assert refused.value.records == tuple(appended[1:])
        assert refused.value.limit == CONFLICT_RECORDS
        with pytest.raises(AppendConflict) as ahead:  # a caller ahead of the log gets nothing
            await store.append(room, [chat("ahead")], expected_last_id=9, ts=TS + 3)
        assert ahead.value.records == ()
        assert [r.id for r in await store.read(room, 0)] == [1, 2, 3]
    finally:
        await store.close()


async def test_of_racing_appends_at_the_same_last_id_exactly_one_wins(
    store: EventStore, request: pytest.FixtureRequest
) -> None:
    room = f"race-{request.node.name}"
    results = await asyncio.gather(
        *(store.append(room, [chat(str(i))], expected_last_id=0, ts=TS) for i in range(8)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, list)]
    assert len(winners) == 1
    assert all(isinstance(r, AppendConflict) for r in results if not isinstance(r, list))
    assert await store.read(room, 0) == winners[0]


async def test_a_redis_append_wakes_the_rooms_sharded_channel(cluster: RedisCluster) -> None:
    store = RedisEventStore.connect(cluster.seeds)
    room = "wake-me"
    await store.router.start()  # the slot map
    owner = store.router.owner(wake_channel(room))
    assert owner is not None
    subscriber = Redis(host=owner[0], port=owner[1])
    pubsub = subscriber.pubsub()
    try:
        await pubsub.ssubscribe(wake_channel(room))
        await store.append(room, [chat("a"), chat("b")], expected_last_id=0, ts=TS)
        deadline = asyncio.get_running_loop().time() + 5
        message = None
        while message is None or message["type"] not in ("smessage", b"smessage"):
            assert asyncio.get_running_loop().time() < deadline, "no wake-up"
            message = await pubsub.get_message(timeout=0.5)
        wake = decode_wake(message["data"])
        assert isinstance(wake, RecordsWake)
        assert [(r.id, r.event) for r in wake.records] == [(1, chat("a")), (2, chat("b"))]
    finally:
        await pubsub.aclose()
        await subscriber.aclose()
        await store.close()


async def test_a_room_without_a_snapshot_has_none(
    store: EventStore, request: pytest.FixtureRequest
) -> None:
    assert await store.snapshot(f"nosnap-{request.node.name}") is None


async def test_a_snapshot_trims_the_log_behind_it_keeping_keep_records(
    store: EventStore, request: pytest.FixtureRequest
) -> None:
    room = f"trim-{request.node.name}"
    await store.append(room, [chat(str(n)) for n in range(1, 31)], expected_last_id=0, ts=TS)
    assert await store.save_snapshot(room, Snapshot(20, b"at-20"), keep=5) == 20
    assert await store.snapshot(room) == Snapshot(20, b"at-20")
    assert await store.first_id(room) == 16
    assert [r.id for r in await store.read(room, 0)] == list(range(16, 31))
    # Appends go on at the newest id; a trim never removes it.
    await store.append(room, [chat("31")], expected_last_id=30, ts=TS)
    assert await store.save_snapshot(room, Snapshot(31, b"at-31"), keep=1) == 31
    assert [r.id for r in await store.read(room, 0)] == [31]
    await store.append(room, [chat("32")], expected_last_id=31, ts=TS)
    assert [r.id for r in await store.read(room, 0)] == [31, 32]


async def test_an_older_snapshot_never_replaces_a_newer_one(
    store: EventStore, request: pytest.FixtureRequest
) -> None:
    room = f"older-{request.node.name}"
    await store.append(room, [chat(str(n)) for n in range(1, 21)], expected_last_id=0, ts=TS)
    assert await store.save_snapshot(room, Snapshot(15, b"at-15"), keep=10) == 15
    assert await store.save_snapshot(room, Snapshot(12, b"at-12"), keep=1) == 15
    assert await store.snapshot(room) == Snapshot(15, b"at-15")
    # The trim follows the stored snapshot (15 - 1), not the refused one.
    assert await store.first_id(room) == 15


async def test_keep_below_one_is_refused(store: EventStore, request: pytest.FixtureRequest) -> None:
    with pytest.raises(ValueError, match="keep"):
        await store.save_snapshot(f"keep-{request.node.name}", Snapshot(1, b"x"), keep=0)


async def test_saved_groups_are_kept_per_owner_replaced_by_name_and_bounded(
    store: EventStore, request: pytest.FixtureRequest
) -> None:
    owner = f"teacher-{request.node.name}"
    assert await store.groups(owner) == {}
    assert await store.save_groups(owner, "week 1", b"one", max_sets=2)
    assert await store.save_groups(owner, "week 2", b"two", max_sets=2)
    # A third set is refused; replacing one of the two is not.
    assert not await store.save_groups(owner, "week 3", b"three", max_sets=2)
    assert await store.save_groups(owner, "week 1", b"one again", max_sets=2)
    assert await store.groups(owner) == {"week 1": b"one again", "week 2": b"two"}
    assert await store.groups(f"other-{owner}") == {}
    assert await store.delete_groups(owner, "week 2")
    assert not await store.delete_groups(owner, "week 2")
    assert await store.groups(owner) == {"week 1": b"one again"}
