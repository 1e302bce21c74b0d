"""SFU workers as processes of their own, placed by load through the Redis Cluster.

A real 6-node Redis Cluster, real ``liveclass sfu`` worker processes and two real
``liveclass serve --redis-cluster`` nodes; real aiortc peers in this process that encode and
decode for real. Every ICE candidate stays on loopback (``--sfu-listen-ips 127.0.0.1`` on the
workers, :func:`sfu.ice.use_host_addresses` here).

What is checked: participants of one room on different nodes meet on one worker; rooms spread
over the workers by load; a worker SIGKILLed mid-class has its room placed on another and the
clients' media back (``media.reset``, then publishing and subscribing again by themselves) within
a bound, while the other room's media goes on; with no worker, ``media.publish`` is answered
``media_unavailable`` and the classroom goes on without media; a worker opens its RPC endpoint only
to a node's token signed with the cluster's secrets, for its own id, unexpired (else HTTP 401, and
nothing is created on it).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from clients import ClassroomClient, CommandFailed
from loadtest.media_bot import Publisher, Subscriber
from rooms import Role
from sfu import rpc
from sfu.remote import RemoteWorker, WorkerLost
from sfu.transport import MediaError
from signaling import ClusterRouter, Grants, Keyring, mint, parse_seeds
from signaling.auth import mint_worker_token
from signaling.sfu_registry import WorkerRegistry
from tests.integration.media_peers import joined, loopback_ice, until  # noqa: F401
from tests.metrics_scrape import scrape, value
from tests.otlp import CLIENT, SERVER, Collector
from tests.redis_cluster import RedisCluster
from tests.server import LiveclassServer
from tests.sfu_worker import SfuWorker

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(180)]

HEARTBEAT_TTL_MS = 1500
#: From the SIGKILL of a room's worker to the first video frame decoded again through another
#: worker: loss detection (at once: the RPC connection closes), the reconnect bound (0.5 s),
#: re-publish and re-subscribe, ICE and DTLS on loopback, a keyframe. The bound is generous for a
#: loaded 2-core machine; the measured time is printed.
RESUME_BOUND_S = 8.0


@pytest.fixture(scope="module")
def secret() -> str:
    """The cluster's secret (kid ``test``): every node and every worker holds it."""
    return secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def nodes(
    cluster: RedisCluster, secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[LiveclassServer]]:
    """Two signaling nodes sharing one secret; media goes to the registered workers."""
    directory = Path(tmp_path_factory.mktemp("nodes"))
    started: list[LiveclassServer] = []
    try:
        for i in (1, 2):
            node = LiveclassServer(
                directory / f"node{i}",
                [
                    *("--redis-cluster", cluster.seeds, "--node-id", f"node{i}"),
                    *("--rate-per-s", "200", "--sfu-reconnect-ms", "500"),
                ],
                secret=secret,
            )
            node.data_dir.mkdir(parents=True)
            started.append(node)
            node.start()
        yield started
    finally:
        for node in started:
            node.stop()


@pytest.fixture
def start_worker(
    cluster: RedisCluster, secret: str, tmp_path: Path
) -> Iterator[Callable[[], SfuWorker]]:
    """Start ``liveclass sfu`` workers with the nodes' secret; every one is stopped at teardown."""
    started: list[SfuWorker] = []

    def start() -> SfuWorker:
        worker = SfuWorker(
            tmp_path / "workers",
            cluster.seeds,
            f"w{len(started) + 1}-{secrets.token_hex(3)}",
            ["--heartbeat-ttl-ms", str(HEARTBEAT_TTL_MS)],
            secret=secret,
        )
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def workers(start_worker: Callable[[], SfuWorker]) -> list[SfuWorker]:
    return [start_worker(), start_worker()]


@pytest.fixture
async def bots() -> AsyncIterator[list[Publisher | Subscriber | ClassroomClient]]:
    """Bots and clients, closed at teardown (bots first)."""
    made: list[Publisher | Subscriber | ClassroomClient] = []
    yield made
    for thing in reversed(made):
        try:
            await thing.close()
        except Exception:
            pass


def placed_on(cluster: RedisCluster, room: str) -> str:
    """The worker id the registry records for ``room``."""
    return cluster.cli(cluster.ports[0], "-c", "get", f"{{sfu}}:room:{room}").strip()


def live_workers(cluster: RedisCluster) -> list[str]:
    script = (
        "local t = redis.call('TIME') "
        "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
        "return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')"
    )
    out = cluster.cli(cluster.ports[0], "-c", "eval", script, "1", "{sfu}:workers")
    return out.split()


def video(subscriber: Subscriber) -> int:
    return min(subscriber.frames("video") or [0])


def audio(subscriber: Subscriber) -> int:
    return min(subscriber.frames("audio") or [0])


@dataclass
class Room:
    """A class with a publishing teacher on one node and decoding students on the other."""

    name: str
    publisher: Publisher
    subscribers: list[Subscriber]

    def receiving(self, frames: int = 30) -> bool:
        return all(video(s) >= frames and audio(s) >= frames for s in self.subscribers)


async def start_room(
    name: str,
    teacher_node: LiveclassServer,
    students_node: LiveclassServer,
    bots: list[Publisher | Subscriber | ClassroomClient],
    students: int = 1,
) -> Room:
    subscribers = []
    for i in range(students):
        subscriber = Subscriber(await joined(students_node, bots, f"s{i}", name))
        bots.append(subscriber)
        await subscriber.start()
        subscribers.append(subscriber)
    publisher = Publisher(await joined(teacher_node, bots, "teacher", name, "teacher"))
    bots.append(publisher)
    await publisher.start()
    room = Room(name, publisher, subscribers)
    await until(room.receiving, 30, f"media in room {name}")
    for s in subscribers:
        assert {r.producer["identity"] for r in s.received.values()} == {"teacher"}
        assert s.decode_errors == 0
    return room


def by_id(workers: list[SfuWorker], worker_id: str) -> SfuWorker:
    return next(w for w in workers if w.worker_id == worker_id)


async def test_placement_keeps_a_live_worker_spreads_new_rooms_and_agrees_on_a_successor(
    cluster: RedisCluster,
) -> None:
    """The registry's scripts on the real cluster, without worker processes: workers registered
    by hand (any live worker of another test is passed as dead, so it is never chosen)."""
    router = ClusterRouter(parse_seeds(cluster.seeds))
    await router.start()
    registry = WorkerRegistry(router)
    tag = secrets.token_hex(3)
    a, b = f"{tag}-a", f"{tag}-b"
    others = [w for w in live_workers(cluster) if w not in (a, b)]
    try:
        await registry.heartbeat(a, "ws://a", 60_000, 0, [])
        await registry.heartbeat(b, "ws://b", 60_000, 0, [])
        first = await registry.place(f"{tag}-r1", others)
        assert first is not None and (first.worker_id, first.url, first.new) == (a, "ws://a", True)
        # The placement counts into a's load: the next new room goes to b.
        second = await registry.place(f"{tag}-r2", others)
        assert second is not None and second.worker_id == b
        again = await registry.place(f"{tag}-r1", others)
        assert again is not None and (again.worker_id, again.new) == (a, False)

        # Nodes that found a dead, all at once: one successor, the same for every one of them.
        successors = await asyncio.gather(
            *(registry.place(f"{tag}-r1", [*others, a]) for _ in range(8))
        )
        assert {p.worker_id for p in successors if p is not None} == {b}
        assert sum(1 for p in successors if p is not None and p.new) == 1
        # A node that has not noticed yet keeps the successor too.
        kept = await registry.place(f"{tag}-r1", others)
        assert kept is not None and kept.worker_id == b

        view = await registry.view([f"{tag}-r1", f"{tag}-r2", f"{tag}-none"])
        assert {a, b} <= set(view.live)
        assert view.rooms == {f"{tag}-r1": b, f"{tag}-r2": b, f"{tag}-none": None}

        # A registration that is not refreshed expires; with no live worker there is no placement.
        await registry.unregister(b, [f"{tag}-r1", f"{tag}-r2"])
        await registry.heartbeat(a, "ws://a", 300, 0, [])
        await asyncio.sleep(0.4)
        assert a not in (await registry.view([])).live
        assert await registry.place(f"{tag}-r3", others) is None
    finally:
        await registry.unregister(a, [])
        await registry.unregister(b, [])
        await router.close()


async def test_a_publisher_on_one_node_reaches_subscribers_on_another_through_one_worker(
    cluster: RedisCluster,
    nodes: list[LiveclassServer],
    workers: list[SfuWorker],
    bots: list[Publisher | Subscriber | ClassroomClient],
) -> None:
    room = await start_room("cross", nodes[0], nodes[1], bots, students=2)
    await until(lambda: room.receiving(60), 20, "2 s of media at both students")

    holder = by_id(workers, placed_on(cluster, "cross"))
    (other,) = [w for w in workers if w is not holder]
    assert holder.metric("liveclass_sfu_producers") == 2  # camera + microphone
    assert holder.metric("liveclass_sfu_consumers") == 2 * 2
    assert holder.metric("liveclass_sfu_rpc_connections") == 2  # both nodes
    assert holder.metric("liveclass_sfu_encode_refusals_total") == 0
    assert other.metric("liveclass_sfu_producers") == 0


async def test_b_rooms_are_placed_on_different_workers_by_load(
    cluster: RedisCluster,
    nodes: list[LiveclassServer],
    workers: list[SfuWorker],
    bots: list[Publisher | Subscriber | ClassroomClient],
) -> None:
    await start_room("alpha", nodes[0], nodes[1], bots)
    # Placement reads the load the worker reported (its peers) plus the rooms placed since.
    await start_room("beta", nodes[1], nodes[0], bots)
    alpha, beta = placed_on(cluster, "alpha"), placed_on(cluster, "beta")
    assert {alpha, beta} == {w.worker_id for w in workers}
    for worker in workers:
        assert worker.metric("liveclass_sfu_producers") == 2
        assert worker.metric("liveclass_sfu_routers") == 1


async def test_c_a_worker_killed_mid_class_has_its_room_replaced_and_media_resumes(
    cluster: RedisCluster,
    nodes: list[LiveclassServer],
    workers: list[SfuWorker],
    bots: list[Publisher | Subscriber | ClassroomClient],
) -> None:
    lost = await start_room("gamma", nodes[0], nodes[1], bots, students=2)
    kept = await start_room("delta", nodes[1], nodes[0], bots)
    victim = by_id(workers, placed_on(cluster, "gamma"))
    (survivor,) = [w for w in workers if w is not victim]
    assert placed_on(cluster, "delta") == survivor.worker_id

    # The other room's video, sampled every 50 ms through the kill and the recovery.
    watched = kept.subscribers[0]
    samples: list[tuple[float, int]] = []

    async def sample() -> None:
        while True:
            samples.append((time.monotonic(), video(watched)))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    await asyncio.sleep(0.5)
    killed_at = time.monotonic()
    victim.kill()
    try:
        await until(
            lambda: lost.publisher.resets == 1 and all(s.resets == 1 for s in lost.subscribers),
            5,
            "media.reset at every client of the room",
        )
        await until(lambda: lost.receiving(30), 20, "media again in the room")
        resumed = [
            s.started + r.first_frame_s - killed_at
            for s in lost.subscribers
            for r in s.received.values()
            if r.producer["kind"] == "video" and r.first_frame_s is not None
        ]
        await asyncio.sleep(0.5)
    finally:
        sampler.cancel()
    print(
        f"\nworker SIGKILLed -> video decoded again through the other worker: "
        f"max {max(resumed) * 1000:.0f} ms (min {min(resumed) * 1000:.0f} ms) "
        f"over {len(resumed)} subscribers"
    )
    assert max(resumed) < RESUME_BOUND_S
    assert placed_on(cluster, "gamma") == survivor.worker_id
    assert survivor.metric("liveclass_sfu_routers") == 2
    # Both nodes of the room lost the worker; between them they reset its 3 clients' media.
    scraped = [scrape(node.http_url) for node in nodes[:2]]
    assert all(value(f, "liveclass_sfu_workers_lost_total") >= 1 for f in scraped)
    assert sum(value(f, "liveclass_media_resets_total") for f in scraped) >= 3
    for s in lost.subscribers:
        assert s.decode_errors == 0
        assert {r.producer["identity"] for r in s.received.values()} == {"teacher"}

    # The other room never noticed: no reset, and its video never stalled.
    assert kept.publisher.resets == 0 and watched.resets == 0
    longest = 0.0
    since = samples[0][0]
    for (t, frames), (_, before) in zip(samples[1:], samples, strict=False):
        if frames != before:
            since = t
        longest = max(longest, t - since)
    frames = samples[-1][1] - samples[0][1]
    print(f"other room: {frames} frames meanwhile, longest stall {longest * 1000:.0f} ms")
    assert longest < 1.0
    assert frames >= 15 * (samples[-1][0] - samples[0][0])


async def test_d_without_a_live_worker_media_is_unavailable_and_the_class_goes_on(
    cluster: RedisCluster,
    nodes: list[LiveclassServer],
    start_worker: Callable[[], SfuWorker],
    bots: list[Publisher | Subscriber | ClassroomClient],
) -> None:
    only = start_worker()
    room = await start_room("epsilon", nodes[0], nodes[1], bots)
    only.kill()
    await until(lambda: only.worker_id not in live_workers(cluster), 5, "registration expiry")
    await until(lambda: room.publisher.resets == 1, 5, "media.reset at the teacher")

    late = Publisher(await joined(nodes[1], bots, "late", "epsilon"))
    bots.append(late)
    with pytest.raises(CommandFailed) as refused:
        await late.start()
    assert refused.value.code == "media_unavailable"

    # The classroom goes on across both nodes.
    teacher, student = room.publisher.client, room.subscribers[0].client
    await student.chat("can you hear me?")
    await teacher.wait_for(lambda e: e.type == "chat.message", timeout=5)
    await student.raise_hand()
    await teacher.wait_for(lambda e: e.type == "hand.raised", timeout=5)

    # A worker registers again: the bots, still retrying, get their media back by themselves.
    start_worker()
    await until(lambda: room.receiving(30), 30, "media back on the new worker")


async def test_e_a_worker_opens_rpc_only_to_a_token_of_the_cluster_for_itself(
    start_worker: Callable[[], SfuWorker], secret: str
) -> None:
    """No token, another secret, expired, for another worker, or a classroom access token:
    HTTP 401 before any connection exists, so nothing can be called and no peer is made. The
    node's own path (:class:`RemoteWorker` with the cluster's keyring) still connects and calls."""
    worker = start_worker()
    keyring = worker.keyring
    stranger = Keyring({"test": secrets.token_urlsafe(32).encode()}, "test")  # same kid, not ours
    url = worker.http_url.replace("http://", "ws://")
    refused: dict[str, str | None] = {
        "no token": None,
        "another secret": mint_worker_token(stranger, worker.worker_id),
        "expired": mint_worker_token(keyring, worker.worker_id, now=time.time() - 120),
        "another worker": mint_worker_token(keyring, "w-someone-else"),
        "an access token": mint(
            keyring,
            identity=worker.worker_id,
            name="x",
            grants=Grants("class", Role.TEACHER),
            ttl_s=600,
        ),
    }
    for what, token in refused.items():
        headers = {} if token is None else {"Authorization": rpc.bearer(token)}
        with pytest.raises(InvalidStatus) as answer:
            async with connect(url + rpc.PATH + worker.worker_id, additional_headers=headers):
                pass
        assert answer.value.response.status_code == 401, what

    lost: list[str] = []
    impostor = RemoteWorker(
        worker.worker_id, url, lambda _, why: lost.append(why), token=lambda _: refused["expired"]
    )
    with pytest.raises(WorkerLost, match="HTTP 401"):
        await impostor.connect()
    assert worker.metric("liveclass_sfu_rpc_refusals_total") == len(refused) + 1
    assert worker.metric("liveclass_sfu_rpc_connections") == 0
    assert worker.metric("liveclass_sfu_peers") == 0
    assert "HTTP 401" in worker.log()
    assert secret not in worker.metrics()

    node = RemoteWorker(
        worker.worker_id,
        url,
        lambda _, why: lost.append(why),
        token=lambda worker_id: mint_worker_token(keyring, worker_id),
    )
    await node.connect()
    try:
        assert await node.call("close_peer", peer_id="nobody") is None
        # media.unpublish reaches a worker process too.
        with pytest.raises(MediaError) as refused_call:
            await node.call("unpublish", peer_id="nobody", source="camera")
        assert refused_call.value.code == "no_transport"
        assert worker.metric("liveclass_sfu_rpc_connections") == 1
    finally:
        await node.close()
    assert lost == []


async def test_f_a_traced_nodes_media_frame_has_a_client_span_for_each_call_to_its_worker(
    cluster: RedisCluster,
    secret: str,
    start_worker: Callable[[], SfuWorker],
    bots: list[Publisher | Subscriber | ClassroomClient],
    tmp_path: Path,
) -> None:
    worker = start_worker()
    collector = Collector()
    node = LiveclassServer(
        tmp_path / "traced",
        ["--redis-cluster", cluster.seeds, "--node-id", "traced", "--otlp-endpoint", collector.url],
        secret=secret,
        env={"OTEL_BSP_SCHEDULE_DELAY": "100"},  # export every 100 ms
    )
    node.data_dir.mkdir()
    try:
        node.start()
        student = await joined(node, bots, "s1", "traced-room")
        await student.subscribe_media()

        def called() -> bool:
            return any(s.name == "liveclass.sfu.call" for s in collector.spans)

        await asyncio.to_thread(collector.wait_until, called, "the worker call's span")
        [media] = collector.named("liveclass.media")
        calls = collector.named("liveclass.sfu.call")
        assert media.attributes["liveclass.media.type"] == "media.subscribe"
        assert media.parent == b"" and media.kind == SERVER
        assert [c.attributes["rpc.method"] for c in calls] == ["subscribe"]
        assert calls[0].attributes["liveclass.worker"] == worker.worker_id
        assert calls[0].parent == media.span_id and calls[0].trace_id == media.trace_id
        assert calls[0].kind == CLIENT
        assert {r.get("service.instance.id") for r in collector.resources} == {"traced"}
        await student.close()
    finally:
        node.stop()
        collector.close()
