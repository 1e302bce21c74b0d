"""Scale-out: several ``liveclass serve --redis-cluster`` nodes behind a real HAProxy, on a real
6-node Redis Cluster. Every simulated client has its own 127.x.y.z source address, so HAProxy's
``balance source`` spreads them over the nodes.

What is checked: one order of events for everyone whichever node they are on; commands whose
validity depends on room state give one outcome across nodes; and that no acknowledged event is
lost or repeated when a signaling node or a Redis master is SIGKILLed, or a room's slot migrates.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis import Redis
from redis.crc import key_slot

from clients import ClassroomClient, CommandFailed, ConnectionLost
from tests.haproxy import HAProxy, source_address
from tests.integration.classroom import close_all, public
from tests.integration.yjs import YjsClient, YjsClients, wait_converged, wait_for, wait_synced
from tests.redis_cluster import RedisCluster, room_on
from tests.server import LiveclassServer, free_port

PRESENCE_TTL_MS = 1500
#: A dead node's members leave rosters within its TTL, one heartbeat (TTL / 3) and one presence
#: flush (250 ms); the bound asserted adds a margin for a loaded 2-core machine.
GHOST_BOUND_S = PRESENCE_TTL_MS / 1000 * 4 / 3 + 0.25 + 1.0


@dataclass
class Deployment:
    """N signaling nodes sharing one secret and a cluster, behind one HAProxy."""

    cluster: RedisCluster
    directory: Path
    size: int
    args: tuple[str, ...] = ()
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    nodes: list[LiveclassServer] = field(default_factory=list)
    balancer: HAProxy | None = None
    clients: list[ClassroomClient] = field(default_factory=list)
    _sources: int = 0

    def start(self) -> Deployment:
        for i in range(self.size):
            node = LiveclassServer(
                self.directory / f"node{i + 1}",
                [
                    "--redis-cluster",
                    self.cluster.seeds,
                    "--node-id",
                    f"node{i + 1}",
                    "--presence-ttl-ms",
                    str(PRESENCE_TTL_MS),
                    *self.args,
                ],
                secret=self.secret,
            )
            node.data_dir.mkdir(parents=True)
            self.nodes.append(node)
            node.start()
        backends = [("127.0.0.1", node.port) for node in self.nodes]
        self.balancer = HAProxy(self.directory / "haproxy", backends).start()
        return self

    async def stop(self) -> None:
        await close_all(self.clients)
        if self.balancer is not None:
            self.balancer.stop()
        for node in self.nodes:
            node.stop()

    def take_source(self) -> int:
        self._sources += 1
        return self._sources - 1

    def client(self, identity: str, room: str, role: str = "student") -> ClassroomClient:
        """A client with the next unused source address, through HAProxy."""
        assert self.balancer is not None
        source = source_address(self.take_source())
        made = ClassroomClient(
            self.balancer.ws_url,
            self.nodes[0].token(identity, role, room),
            room,
            local_addr=(source, 0),
            backoff=(0.05, 0.5),
        )
        self.clients.append(made)
        return made

    async def connect(self, client: ClassroomClient) -> str:
        """Connect through HAProxy; returns the name of the node it landed on."""
        assert self.balancer is not None
        before = self.balancer.sessions_total()
        await client.connect()
        after = self.balancer.sessions_total()
        (name,) = [n for n in after if after[n] > before.get(n, 0)]
        return name

    def direct(
        self, node: int, identity: str, room: str, role: str = "student", **kw: object
    ) -> ClassroomClient:
        """A client of node ``node`` (0-based) itself, not through HAProxy."""
        made = ClassroomClient(
            self.nodes[node].ws_url,
            self.nodes[0].token(identity, role, room),
            room,
            backoff=(0.05, 0.5),
            **kw,  # type: ignore[arg-type]
        )
        self.clients.append(made)
        return made

    def node_named(self, name: str) -> LiveclassServer:
        assert self.balancer is not None
        return self.nodes[self.balancer.names.index(name)]


@pytest.fixture
async def deploy(tmp_path: Path) -> AsyncIterator[list[Deployment]]:
    made: list[Deployment] = []
    yield made
    for deployment in made:
        await deployment.stop()


def assert_exactly_once(clients: list[ClassroomClient], acked: set[int]) -> None:
    """Every client received each event once, in id order, and every acknowledged event."""
    for c in clients:
        ids = [e.id for e in c.session.events]
        assert ids == sorted(set(ids)), f"{c.session.you.get('identity')}: repeats or disorder"
        first = ids[0] if ids else 0
        assert ids == list(range(first, first + len(ids))), "a gap in the events delivered"
        missing = {i for i in acked if i >= first} - set(ids)
        assert not missing, f"{c.session.you.get('identity')} misses acked events {missing}"


@dataclass
class Traffic:
    """Chat lines from some clients until stopped, retried through drops and ``unavailable``;
    records the ids of acknowledged events and the errors seen."""

    senders: list[ClassroomClient]
    pause_s: float
    acked: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    _done: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> Traffic:
        self._tasks = [asyncio.create_task(self._send(c)) for c in self.senders]
        return self

    async def stop(self) -> None:
        self._done.set()
        await asyncio.gather(*self._tasks)

    async def _send(self, client: ClassroomClient) -> None:
        n = 0
        while not self._done.is_set():
            n += 1
            while not self._done.is_set():
                try:
                    ack = await client.chat(f"line {n}")
                    self.acked.update(ack["ids"])
                    break
                except CommandFailed as exc:
                    self.errors.append(exc.code)
                    await asyncio.sleep(0.05)
                except (ConnectionLost, TimeoutError):
                    self.errors.append("connection")
                    await asyncio.sleep(0.05)
            await asyncio.sleep(self.pause_s)


async def settle(clients: list[ClassroomClient], last_id: int, timeout: float = 15.0) -> None:
    await asyncio.gather(
        *(c.wait_until(lambda c=c: c.session.last_id >= last_id, timeout) for c in clients)
    )


# -- one room across nodes -------------------------------------------------------------------------


async def test_clients_on_three_nodes_see_one_order_and_count_votes_once(
    cluster: RedisCluster, deploy: list[Deployment], tmp_path: Path
) -> None:
    d = Deployment(cluster, tmp_path, 3).start()
    deploy.append(d)
    room = f"spread-{secrets.token_hex(4)}"
    teacher = d.client("teacher", room, "teacher")
    assistant = d.client("assistant", room, "assistant")
    # Each student twice: two connections of one identity, from two sources (usually two nodes).
    students = [(d.client(f"s{i}", room), d.client(f"s{i}", room)) for i in range(8)]
    everyone = [teacher, assistant, *(c for pair in students for c in pair)]
    landed = {await d.connect(c) for c in everyone}
    assert len(landed) >= 2, f"HAProxy sent every client to {landed}"

    await teacher.open_poll("Pick one", ["a", "b"])
    pid = (await teacher.wait_for(lambda e: e.type == "poll.opened")).data["poll_id"]
    await students[0][0].ask("What is a CRDT?")
    question = (await teacher.wait_for(lambda e: e.type == "question.asked")).data["question_id"]

    async def outcome(coro: object) -> str:
        try:
            await coro  # type: ignore[misc]
            return "ok"
        except CommandFailed as exc:
            return exc.code

    # The same identity upvotes from both connections at once: exactly one wins.
    votes = await asyncio.gather(*(outcome(c.upvote(question)) for pair in students for c in pair))
    assert sorted(votes) == ["already_voted"] * 8 + ["ok"] * 8
    # Every connection answers, then changes its answer; hands go up concurrently.
    await asyncio.gather(*(c.answer_poll(pid, [i % 2]) for i, (c, _) in enumerate(students)))
    await asyncio.gather(*(c.answer_poll(pid, [(i + 1) % 2]) for i, (_, c) in enumerate(students)))
    # Raising a raised hand changes nothing, so each identity's hand goes up once.
    await asyncio.gather(*(c.raise_hand() for pair in students for c in pair))
    # Two staff on (likely) two nodes close the poll at once: one closes it.
    closes = await asyncio.gather(
        outcome(teacher.close_poll(pid)), outcome(assistant.close_poll(pid))
    )
    assert sorted(closes) == ["ok", "poll_closed"]

    last = max(c.session.last_id for c in everyone)
    await settle(everyone, last)
    start = max(c.session.events[0].id for c in everyone if c.session.events) - 1
    orders = [[e for e in public(c.session.events) if e[0] > start] for c in everyone]
    assert all(order == orders[0] for order in orders), "clients saw different orders"
    assert len(orders[0]) >= 8 + 8 + 1  # upvotes, hands, the close
    closed = [e for e in teacher.session.events if e.type == "poll.closed"]
    assert len(closed) == 1 and sum(closed[0].data["tally"]) == 8
    assert closed[0].data["voters"] == 8
    assert closed[0].data["tally"] == [4, 4]  # the second answer of each student counts
    upvotes = [e for e in teacher.session.events if e.type == "question.upvoted"]
    assert sorted(e.data["identity"] for e in upvotes) == sorted(f"s{i}" for i in range(8))
    raised = [e.data["identity"] for e in teacher.session.events if e.type == "hand.raised"]
    assert sorted(raised) == sorted(f"s{i}" for i in range(8))  # once per identity

    # A fresh join on any node sees the same state.
    late = d.client("late", room)
    await d.connect(late)
    (q,) = [q for q in late.session.room["questions"] if q["question_id"] == question]
    assert q["votes"] == 8
    # Presence is coalesced per 250 ms on each node, then crosses to the others.
    await late.wait_until(lambda: late.session.online == 1 + 1 + 8 + 1, 2)
    await teacher.wait_until(lambda: len(teacher.session.roster) == 1 + 1 + 8 + 1, 2)


# -- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stop", ["sigkill", "sigterm"])
async def test_a_stopped_node_loses_no_acked_event_and_its_ghosts_leave(
    cluster: RedisCluster, deploy: list[Deployment], tmp_path: Path, stop: str
) -> None:
    """SIGKILL (a crash) or SIGTERM (a drain: clients told to reconnect, exit 0) of a node."""
    d = Deployment(cluster, tmp_path, 3).start()
    deploy.append(d)
    assert d.balancer is not None
    room = f"kill-node-{secrets.token_hex(4)}"
    teacher = d.client("teacher", room, "teacher")
    students = [d.client(f"s{i}", room) for i in range(9)]
    connected = [teacher, *students]
    where = {id(c): await d.connect(c) for c in connected}
    # The node to kill: one with students on it; a client there that will not come back is the
    # ghost the rosters must drop.
    victim = next(where[id(s)] for s in students)
    ghost = d.client("ghost", room)
    ghost.auto_reconnect = False
    while await d.connect(ghost) != victim:
        await ghost.close()
        ghost = d.client("ghost", room)
        ghost.auto_reconnect = False
    witness = next(c for c in connected if where[id(c)] != victim)
    await witness.wait_until(lambda: "ghost" in witness.session.roster, 5)

    traffic = Traffic([teacher, students[0], students[1]], 0.02).start()
    acked = traffic.acked
    await asyncio.sleep(0.5)
    node = d.node_named(victim)
    if stop == "sigkill":
        node.kill()
    else:
        assert await asyncio.to_thread(node.terminate) == 0
    killed_at = time.monotonic()
    await witness.wait_until(lambda: "ghost" not in witness.session.roster, GHOST_BOUND_S + 2)
    ghost_gone_s = time.monotonic() - killed_at
    await asyncio.sleep(max(0.0, 2.5 - (time.monotonic() - killed_at)))
    await traffic.stop()

    assert ghost_gone_s <= GHOST_BOUND_S, f"the ghost stayed {ghost_gone_s:.2f}s"
    await settle(connected, max(acked))
    assert_exactly_once(connected, acked)
    moved = [c for c in connected if where[id(c)] == victim]
    assert moved and all(c.session.resumes >= 1 for c in moved), "clients did not resume"
    if stop == "sigterm":
        assert all("shutdown" in c.session.reconnect_reasons for c in moved)
    assert "ghost" not in teacher.session.roster
    assert {p for p in witness.session.roster} == {"teacher", *(f"s{i}" for i in range(9))}


async def test_a_killed_redis_master_loses_no_acked_event(
    own_cluster: RedisCluster, deploy: list[Deployment], tmp_path: Path
) -> None:
    d = Deployment(own_cluster, tmp_path, 2).start()
    deploy.append(d)
    master = own_cluster.ports[0]
    room = room_on(own_cluster, master, "failover")
    replica = own_cluster.replica_of(master)
    teacher = d.client("teacher", room, "teacher")
    students = [d.client(f"s{i}", room) for i in range(5)]
    connected = [teacher, *students]
    for c in connected:
        await d.connect(c)

    traffic = Traffic([teacher, students[0]], 0.01).start()
    acked, errors = traffic.acked, traffic.errors
    await asyncio.sleep(0.5)
    before = len(acked)
    own_cluster.kill(master)
    killed_at = time.monotonic()
    promoted_s = await asyncio.to_thread(own_cluster.wait_master, replica, 20.0)
    promoted_at = killed_at + promoted_s
    # The first event appended after the promotion, and how long after it every client had it.
    during = len(acked)
    await teacher.wait_until(lambda: len(acked) > during, 10)
    first_ack_s = time.monotonic() - promoted_at
    await asyncio.sleep(1.0)
    await traffic.stop()
    await settle(connected, max(acked))
    print(
        f"\nfailover: promoted {promoted_s:.2f}s after the kill; first ack {first_ack_s:.2f}s "
        f"after promotion; {len(acked)} acked ({before} before the kill); errors {len(errors)}",
        file=sys.stderr,
    )
    assert "unavailable" in errors  # clients were told, not left hanging
    assert first_ack_s <= 3.0, f"appends resumed {first_ack_s:.2f}s after the promotion"
    assert_exactly_once(connected, acked)


async def test_a_migrating_slot_loses_no_event(
    cluster: RedisCluster, deploy: list[Deployment], tmp_path: Path
) -> None:
    d = Deployment(cluster, tmp_path, 2).start()
    deploy.append(d)
    room = f"migrate-{secrets.token_hex(4)}"
    teacher = d.client("teacher", room, "teacher")
    students = [d.client(f"s{i}", room) for i in range(5)]
    connected = [teacher, *students]
    for c in connected:
        await d.connect(c)
    traffic = Traffic([teacher, students[0]], 0.01).start()
    acked = traffic.acked
    await asyncio.sleep(0.5)
    slot = key_slot(f"room:{{{room}}}:log".encode())
    source = cluster.owner_of(f"room:{{{room}}}:log")
    target = next(n.address[1] for n in cluster.nodes() if n.master and n.address[1] != source)
    await asyncio.to_thread(cluster.migrate_slot, slot, source, target)
    assert cluster.owner_of(f"room:{{{room}}}:log") == target
    during = len(acked)
    await teacher.wait_until(lambda: len(acked) > during + 20, 10)
    await traffic.stop()
    await settle(connected, max(acked))
    assert_exactly_once(connected, acked)


# -- a long class: snapshots and a trimmed log -------------------------------------------------

SNAPSHOT_EVERY = 20
KEEP = 10  # --resume-max-events: the log keeps this many records behind the newest snapshot
#: The teacher sends faster than the default per-connection frame rate allows.
LONG_CLASS_ARGS = (
    *("--room-snapshot-every", str(SNAPSHOT_EVERY), "--resume-max-events", str(KEEP)),
    *("--rate-per-s", "1000", "--rate-burst", "1000"),
)


async def test_a_trimmed_log_loads_and_resumes_from_the_snapshot_on_any_node(
    cluster: RedisCluster, deploy: list[Deployment], tmp_path: Path
) -> None:
    d = Deployment(cluster, tmp_path, 3, LONG_CLASS_ARGS).start()
    deploy.append(d)
    room = f"long-{secrets.token_hex(4)}"
    log = f"room:{{{room}}}:log"
    teacher = d.direct(0, "teacher", room, "teacher")
    alice = d.direct(0, "alice", room, reconnect=False)
    bob = d.direct(1, "bob", room)
    for c in (teacher, alice, bob):
        await c.connect()
    await alice.ask("What is a snapshot?")
    await bob.upvote(1)
    await teacher.open_poll("Ready?", ["yes", "no"])
    await alice.answer_poll(1, [0])
    await bob.raise_hand()
    for i in range(60):
        await teacher.chat(f"line {i}")
    last = teacher.session.last_id
    await settle([teacher, alice, bob], last)

    # The log was trimmed behind the newest snapshot: at most KEEP + SNAPSHOT_EVERY records.
    with Redis(port=cluster.owner_of(log)) as master:
        stored = int(master.hget(f"room:{{{room}}}:snapshot", "id"))  # type: ignore[arg-type]
        ((entry_id, _),) = master.xrange(log, count=1)
        first = int(entry_id.split(b"-")[0])
        length = master.xlen(log)
    assert stored == last // SNAPSHOT_EVERY * SNAPSHOT_EVERY
    assert first == stored - KEEP + 1
    assert length == last - first + 1

    # Node 3 never had the room: it loads it from the snapshot plus the log after it, and shows
    # a newcomer what node 1, which folded the whole class, shows the same newcomer.
    there = d.direct(2, "dave", room, reconnect=False)
    await there.connect()
    await there.close()
    here = d.direct(0, "dave", room, reconnect=False)
    await here.connect()
    assert there.session.last_id == here.session.last_id == last + 1  # dave's join
    assert there.session.room == here.session.room
    view = there.session.room
    assert [m["text"] for m in view["chat"]][-1] == "line 59"
    assert view["questions"][0]["votes"] == 1 and view["polls"][0]["open"]
    assert [h["identity"] for h in view["hands"]] == ["bob"]

    # Alice left after `seen`; she comes back on node 3 and gets exactly the gap.
    seen = alice.session.last_id
    await alice.close()
    missed = [(await teacher.chat(f"while away {i}"))["ids"][0] for i in range(3)]
    back = d.direct(2, "alice", room, resume_from=seen, reconnect=False)
    greeting = await back.connect()
    assert greeting["t"] == "resumed"
    await back.wait_until(lambda: back.session.last_id >= missed[-1])
    assert public(back.session.events) == [e for e in public(teacher.session.events) if e[0] > seen]
    assert back.session.events[-1].id == missed[-1]
    # One whose last id the log no longer reaches gets a fresh snapshot instead.
    stale = d.direct(2, "erin", room, resume_from=first - 5, reconnect=False)
    assert (await stale.connect())["t"] == "welcome"
    assert stale.session.room["chat"][-1]["text"] == "while away 2"


async def test_a_node_behind_a_trimmed_log_reloads_and_its_clients_catch_up(
    cluster: RedisCluster, deploy: list[Deployment], tmp_path: Path
) -> None:
    """Node 2 is stopped and loses its subscription while the room runs past a trim: when it
    wakes it cannot gap-fill from the log, so it reloads the room from the snapshot and tells
    its clients to reconnect; they end up with the room as everyone else has it."""
    d = Deployment(cluster, tmp_path, 2, LONG_CLASS_ARGS).start()
    deploy.append(d)
    room = f"behind-{secrets.token_hex(4)}"
    teacher = d.direct(0, "teacher", room, "teacher")
    bob = d.direct(1, "bob", room)
    for c in (teacher, bob):
        await c.connect()
    await teacher.chat("before")
    await settle([bob], teacher.session.last_id)
    owner = cluster.owner_of(f"room:{{{room}}}:log")

    node2 = d.nodes[1]
    assert node2.proc is not None
    node2.proc.send_signal(signal.SIGSTOP)
    try:
        cluster.cli(owner, "CLIENT", "KILL", "TYPE", "pubsub")  # node 1 resubscribes at once
        for i in range(3 * SNAPSHOT_EVERY):
            await teacher.chat(f"line {i}")
    finally:
        node2.proc.send_signal(signal.SIGCONT)
    last = teacher.session.last_id
    await settle([bob], last)
    assert bob.session.room["chat"][-1]["text"] == "line 59"
    assert bob.session.welcomes >= 2, "bob was not sent a fresh snapshot"
    assert "reloading from the snapshot" in node2.log()
    await teacher.chat("after")
    await settle([bob], last + 1)
    assert bob.session.events[-1].data["text"] == "after"


# -- bad input -----------------------------------------------------------------------------------


def test_a_node_with_an_unreachable_cluster_fails_fast(tmp_path: Path) -> None:
    port = free_port()
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "liveclass",
            "serve",
            "--port",
            str(free_port()),
            "--data-dir",
            str(tmp_path),
            "--redis-cluster",
            f"redis://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert time.monotonic() - started < 10
    assert done.returncode == 1
    assert f"cannot reach the Redis Cluster at redis://127.0.0.1:{port}" in done.stderr


async def test_a_master_lost_without_replica_fails_its_rooms_clearly_and_the_tier_stays_ready(
    own_cluster: RedisCluster, deploy: list[Deployment], tmp_path: Path
) -> None:
    """A shard with no master left: its rooms' commands are answered ``unavailable`` at once,
    the other shards' rooms go on, and /readyz stays green on every node (it says whether the
    node can serve joins; a balancer dropping every node would fail the healthy rooms too). The
    nodes log that slots have no live master."""
    d = Deployment(own_cluster, tmp_path, 2).start()
    deploy.append(d)
    master = own_cluster.ports[0]
    lost_room = room_on(own_cluster, master, "lost")
    other_room = room_on(own_cluster, own_cluster.ports[1], "kept")
    teacher = d.client("teacher", lost_room, "teacher")
    other = d.client("teacher", other_room, "teacher")
    await d.connect(teacher)
    await d.connect(other)
    own_cluster.kill(own_cluster.replica_of(master))
    own_cluster.kill(master)

    def all_noticed() -> bool:
        return all("has slots without a live master" in node.log(full=True) for node in d.nodes)

    deadline = time.monotonic() + 15
    while not all_noticed():
        assert time.monotonic() < deadline, "no node noticed the shard without a master"
        await asyncio.sleep(0.1)
    assert all(node.get("/readyz")[0] == 200 for node in d.nodes)
    started = time.monotonic()
    with pytest.raises(CommandFailed) as failed:
        await teacher.chat("anyone?")
    assert failed.value.code == "unavailable"
    assert time.monotonic() - started < 5, "the client waited too long for its answer"
    # A room on a healthy master goes on.
    with contextlib.suppress(CommandFailed):
        await other.chat("still here")
    ack = await other.chat("still here")
    assert ack["ids"]


# -- whiteboard across nodes -----------------------------------------------------------------------


@pytest.fixture
def yjs(tmp_path: Path) -> Iterator[YjsClients]:
    clients = YjsClients(tmp_path)
    yield clients
    clients.close()


def test_a_board_converges_across_nodes_and_a_killed_node_loses_nothing(
    cluster: RedisCluster, deploy: list[Deployment], tmp_path: Path, yjs: YjsClients
) -> None:
    d = Deployment(cluster, tmp_path, 2).start()
    deploy.append(d)
    assert d.balancer is not None
    balancer = d.balancer
    room = f"board-{secrets.token_hex(4)}"

    def open_on_a_node(name: str, client_id: int, avoid: str | None) -> tuple[YjsClient, str]:
        """A Node Yjs client through HAProxy, from the first source that lands off ``avoid``."""
        while True:
            before = balancer.sessions_total()
            client = yjs.spawn(name).open(
                d.nodes[0],
                name,
                client_id=client_id,
                room=room,
                port=balancer.port,
                local_address=source_address(d.take_source()),
            )
            wait_synced([client])
            after = balancer.sessions_total()
            grew = [n for n in after if after[n] > before.get(n, 0)]
            # (Reconnects of other clients may land meanwhile; then try again, except for the
            # fresh client, which may be on any node.)
            if name == "fresh" or (len(grew) == 1 and grew[0] != avoid):
                return client, grew[0] if len(grew) == 1 else ""
            client.stop()

    alice, alice_node = open_on_a_node("alice", 101, None)
    bob, bob_node = open_on_a_node("bob", 102, alice_node)
    alice.call("records", prefix="alice", count=40, identity="alice")
    bob.call("records", prefix="bob", count=40, identity="bob")
    wait_converged([alice, bob])

    d.node_named(bob_node).kill()  # bob's provider reconnects through HAProxy to alice's node
    bob.call("records", prefix="bob-after", count=20, identity="bob")
    alice.call("records", prefix="alice-after", count=20, identity="alice")
    keys = {f"{p}-{n}" for p in ("alice", "bob") for n in range(40)} | {
        f"{p}-{n}" for p in ("alice-after", "bob-after") for n in range(20)
    }

    def has_all(client: YjsClient) -> bool:
        return {r["key"] for r in client.state()["json"]["records"]} == keys

    wait_for("bob to resync through the surviving node", lambda: has_all(bob), 15)
    wait_for("alice to get bob's later edits", lambda: has_all(alice), 15)
    confirmed = wait_converged([alice, bob])[0]
    fresh, _ = open_on_a_node("fresh", 103, None)
    wait_for("a fresh client to see every update", lambda: has_all(fresh), 10)
    assert fresh.state()["sv"] == confirmed["sv"]
