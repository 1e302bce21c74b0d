"""Health a balancer can trust, on a real Redis Cluster: a master SIGKILLed on one shard leaves
every node ready (its rooms on the other shards are served throughout), and once its replica is
promoted, with no replica of its own, acknowledgements do not wait for a replica that is not
there; the node says so once, not once per write."""

from __future__ import annotations

import contextlib
import secrets
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from clients import ClassroomClient
from clients.sdk import CommandFailed
from tests.integration.media_peers import until
from tests.metrics_scrape import scrape, value
from tests.redis_cluster import RedisCluster, room_on
from tests.server import LiveclassServer
from tests.sfu_worker import SfuWorker

pytestmark = pytest.mark.timeout(120)

#: Commands acknowledged after the promotion, one at a time (the acceptance line: p50 < 50 ms).
ACKS = 60


@pytest.fixture
def nodes(cluster: RedisCluster, tmp_path: Path) -> Iterator[list[LiveclassServer]]:
    secret = secrets.token_urlsafe(32)
    started: list[LiveclassServer] = []
    try:
        for i in (1, 2):
            node = LiveclassServer(
                tmp_path / f"node{i}",
                [
                    *("--redis-cluster", cluster.seeds, "--node-id", f"node{i}", "--no-media"),
                    *("--rate-per-s", "200", "--rate-burst", "200"),
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


class ReadyzPoller:
    """GET /readyz on each node every 50 ms in a thread; keeps every answer that was not 200."""

    def __init__(self, nodes: Sequence[LiveclassServer | SfuWorker]) -> None:
        self.nodes = nodes
        self.polls = 0
        self.unready: list[tuple[float, int, str]] = []  # (time, port, what)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ReadyzPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            for node in self.nodes:
                try:
                    with urllib.request.urlopen(f"{node.http_url}/readyz", timeout=2) as r:
                        status = str(r.status)
                except urllib.error.HTTPError as exc:
                    status = str(exc.code)
                    exc.close()
                except OSError as exc:
                    status = f"refused: {exc}"
                if status != "200":
                    self.unready.append((time.monotonic(), node.port, status))
            self.polls += 1
            self._stop.wait(0.05)


async def test_one_shards_failover_leaves_every_node_ready_and_acks_fast_without_a_replica(
    cluster: RedisCluster, nodes: list[LiveclassServer]
) -> None:
    masters = sorted(n.address[1] for n in cluster.nodes() if n.master and n.slots)
    victim = masters[0]
    replica = cluster.replica_of(victim)
    room = room_on(cluster, victim, "failing")
    elsewhere = room_on(cluster, masters[1], "steady")
    teacher = ClassroomClient(nodes[0].ws_url, nodes[0].token("t", "teacher", room), room)
    student = ClassroomClient(nodes[1].ws_url, nodes[1].token("s", "student", room), room)
    other = ClassroomClient(nodes[1].ws_url, nodes[1].token("o", "teacher", elsewhere), elsewhere)
    try:
        for client in (teacher, student, other):
            await client.connect()
        await teacher.chat("before")

        with ReadyzPoller(nodes) as poller:
            killed_at = time.monotonic()
            cluster.kill(victim)
            # A command in the failing room meets the dead master (liveclass_redis_errors).
            with contextlib.suppress(CommandFailed, TimeoutError):
                await teacher.request("chat.send", timeout=2, text="while the master is down")
            promoted_s = cluster.wait_master(replica)
            # The other shard's room is served while the failing one fails over.
            await other.chat("during the failover")
            # Both nodes' slot maps move on to the promoted master (heartbeat: every 1 s).
            await until(
                lambda: all("has no replica" in n.log(full=True) for n in nodes),
                10,
                "each node noticing the promoted master has no replica",
            )
        print(f"promoted after {promoted_s:.1f} s; {poller.polls} polls of both nodes")
        assert poller.polls > 20
        assert poller.unready == [], f"/readyz went red (kill at {killed_at}): {poller.unready}"

        # The promoted master has no replica: an ack waits for none.
        acks = []
        for i in range(ACKS):
            started = time.perf_counter()
            await teacher.chat(f"after {i}")
            acks.append(time.perf_counter() - started)
        p50 = statistics.median(acks)
        print(f"acks after the promotion: p50 {p50 * 1000:.1f} ms, max {max(acks) * 1000:.1f} ms")
        assert p50 < 0.050
        await until(
            lambda: sum(e.type == "chat.message" for e in student.session.events) >= ACKS + 1,
            10,
            "every line at the student on the other node",
        )
        for node in nodes:
            said = node.log(full=True).count("has no replica")
            assert said == 1, f"node {node.port} said it {said} times"
            assert "acknowledged before a replica confirmed it" not in node.log(full=True)
        # What the operator's metrics said of it: both nodes saw the failover, lost the room's
        # subscription on the dead master and read what they missed from the store; the first
        # node's command met the dead master.
        scraped = [scrape(node.http_url) for node in nodes]
        for families in scraped:
            assert value(families, "liveclass_redis_failovers_total") >= 1
            assert value(families, "liveclass_redis_reconnects_total") >= 1
            assert value(families, "liveclass_gap_fills_total") >= 1
            assert value(families, "liveclass_redis_masters_without_replica") == 1
            assert value(families, "liveclass_redis_cluster_covered") == 1
            assert value(families, "liveclass_ready") == 1
        assert value(scraped[0], "liveclass_redis_errors_total") >= 1

        # The old master back (as the promoted one's replica): writes wait for it again.
        cluster.restart(victim)
        cluster.wait_replica_of(victim, replica)
        await until(
            lambda: all("has a replica again" in n.log(full=True) for n in nodes),
            10,
            "each node noticing the replica is back",
        )
        for node in nodes:
            assert value(scrape(node.http_url), "liveclass_redis_masters_without_replica") == 0
    finally:
        for client in (teacher, student, other):
            await client.close()


async def test_the_registrys_failover_leaves_every_sfu_worker_ready(
    cluster: RedisCluster, tmp_path: Path
) -> None:
    """The ``{sfu}`` slot's master SIGKILLed: both workers' heartbeats fail until its replica is
    promoted, and their registrations lapse, yet neither ``/readyz`` goes red (they serve their
    rooms throughout and register again by themselves)."""
    secret = secrets.token_urlsafe(32)
    workers = [
        SfuWorker(tmp_path / "workers", cluster.seeds, f"w{i}", secret=secret) for i in (1, 2)
    ]
    try:
        for worker in workers:
            worker.start()
        victim = cluster.owner_of("{sfu}")
        replica = cluster.replica_of(victim)
        with ReadyzPoller(workers) as poller:
            cluster.kill(victim)
            promoted_s = cluster.wait_master(replica)
            await until(
                lambda: all("registered again after" in w.log() for w in workers),
                15,
                "each worker registered again on the promoted master",
            )
        print(f"registry master promoted after {promoted_s:.1f} s; {poller.polls} polls")
        assert poller.polls > 20
        assert poller.unready == [], f"a worker's /readyz went red: {poller.unready}"
        for worker in workers:
            assert "sfu heartbeat failed" in worker.log()  # the outage was real
            families = scrape(worker.http_url)
            assert value(families, "liveclass_sfu_registered") == 1
            assert value(families, "liveclass_ready") == 1
        cluster.restart(victim)
        cluster.wait_replica_of(victim, replica)
    finally:
        for worker in workers:
            worker.stop()
