"""A node answers from the room as the log has it, never from a view that fell behind.

Once, with 2,000 students on two nodes, half of the students' upvotes were answered
``no_such_question`` for a question that had been asked (issue 13). These tests reproduce, each
with real nodes on the real Redis Cluster, what can leave one node's view of a room behind the
log while its members send commands.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import pytest

from clients import ClassroomClient, CommandFailed, Refused
from rooms import Event, HandLoweredEvent, QuestionAskedEvent, RoomLockedEvent
from signaling.redis_store import APPEND_SCRIPT, RedisEventStore, conflicts_key, log_key
from tests.redis_cluster import RedisCluster
from tests.server import LiveclassServer

NODE_ARGS = ("--presence-ttl-ms", "1500", "--no-media")


@dataclass
class Pair:
    """Two nodes on one cluster sharing one secret; ``clients`` are closed at the end."""

    cluster: RedisCluster
    directory: Path
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    nodes: list[LiveclassServer] = field(default_factory=list)
    clients: list[ClassroomClient] = field(default_factory=list)

    def start(self, *per_node: tuple[str, ...]) -> Pair:
        for i, args in enumerate(per_node):
            node = LiveclassServer(
                self.directory / f"node{i + 1}",
                [
                    "--redis-cluster",
                    self.cluster.seeds,
                    "--node-id",
                    f"node{i + 1}",
                    *NODE_ARGS,
                    *args,
                ],
                secret=self.secret,
            )
            node.data_dir.mkdir(parents=True)
            self.nodes.append(node)
            node.start()
        return self

    def client(self, node: int, identity: str, room: str, role: str = "student") -> ClassroomClient:
        made = ClassroomClient(
            self.nodes[node].ws_url,
            self.nodes[node].token(identity, role, room),
            room,
            reconnect=False,
        )
        self.clients.append(made)
        return made

    async def stop(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)
        for node in self.nodes:
            node.stop()


@pytest.fixture
async def pairs() -> AsyncIterator[list[Pair]]:
    made: list[Pair] = []
    yield made
    for pair in made:
        await pair.stop()


async def test_a_room_opened_again_while_its_old_copy_closes_still_hears_the_other_nodes(
    cluster: RedisCluster, pairs: list[Pair], tmp_path: Path
) -> None:
    """Node 2 unloads an idle room while a snapshot save holds up the old hub's close, and a
    join opens the room again meanwhile. The old hub's unsubscribe must not take the new hub's
    subscription with it: the new hub would never hear node 1's events again and would answer
    its members from a view that stopped (``no_such_question`` for a question asked since)."""
    # Node 2: rooms unload 50 ms after their last member leaves; every append and snapshot
    # waits 1 s for a second replica that does not exist, and every append saves a snapshot,
    # so a save is in flight for 1 s after each command's ack.
    slow = ("--redis-replicas", "2", "--redis-replica-wait-ms", "1000")
    node2 = ("--room-idle-s", "0.05", "--room-snapshot-every", "1", *slow)
    pair = Pair(cluster, tmp_path).start((), node2)
    pairs.append(pair)
    room = f"reopen-{secrets.token_hex(4)}"
    teacher = pair.client(0, "teacher", room, "teacher")
    await teacher.connect()
    alice = pair.client(1, "alice", room)
    await alice.connect()
    await alice.chat("one")
    await asyncio.sleep(1.2)  # the snapshot saved after it is stored
    await alice.chat("two")  # its ack comes as node 2 starts saving the snapshot after it
    await alice.close()  # the room is idle on node 2: it unloads while the save runs
    await asyncio.sleep(0.2)
    bob = pair.client(1, "bob", room)
    await bob.connect()  # opens the room on node 2 again
    await asyncio.sleep(2.0)  # the old hub's close has ended by now (it waits 2 s at most)

    asked = await teacher.ask("Does node 2 hear this?")
    (question_id,) = [
        e.data["question_id"] for e in teacher.session.events if e.id == asked["ids"][0]
    ]
    await bob.wait_for(lambda e: e.type == "question.asked", timeout=5)
    ack = await bob.upvote(question_id)
    assert ack["ids"], "bob's upvote changed nothing"


async def test_a_room_is_not_unloaded_under_a_join_that_is_under_way(
    cluster: RedisCluster, pairs: list[Pair], tmp_path: Path
) -> None:
    """Node 2's last member leaves while another's join waits for the room: the room must stay
    loaded for that join, or the joiner lands in a hub that closed and hears nothing more."""
    slow = ("--redis-replicas", "2", "--redis-replica-wait-ms", "1000")
    pair = Pair(cluster, tmp_path).start((), ("--room-idle-s", "0.05", *slow))
    pairs.append(pair)
    room = f"joining-{secrets.token_hex(4)}"
    teacher = pair.client(0, "teacher", room, "teacher")
    await teacher.connect()
    alice = pair.client(1, "alice", room)
    await alice.connect()
    chat = asyncio.create_task(alice.chat("holds the room for 1 s"))
    await asyncio.sleep(0.3)
    bob = pair.client(1, "bob", room)
    joining = asyncio.create_task(bob.connect())  # waits for alice's chat, then appends 1 s
    await asyncio.sleep(0.3)
    await alice.close()  # node 2's last member leaves once its chat is done: the room is idle
    await asyncio.gather(chat, return_exceptions=True)
    await joining
    await asyncio.sleep(0.5)

    asked = await teacher.ask("Does bob hear this?")
    (question_id,) = [
        e.data["question_id"] for e in teacher.session.events if e.id == asked["ids"][0]
    ]
    await bob.wait_for(lambda e: e.type == "question.asked", timeout=5)
    ack = await bob.upvote(question_id)
    assert ack["ids"], "bob's upvote changed nothing"


async def append_unheard(cluster: RedisCluster, room: str, events: Sequence[Event]) -> int:
    """Append ``events`` to the room's log as a node's append does, without its wake-up: what
    every node but the appender sees between the commit and reading the wake-up (a window that
    grows with a node's load, and with a subscription being restored). Returns the first id."""
    store = RedisEventStore.connect(cluster.seeds)
    try:
        records = await store.read(room, 0)
        last = records[-1].id if records else 0
        args: list[Any] = [last, int(time.time() * 1000), secrets.token_hex(8)]
        for event in events:
            args += [event.type, msgpack.packb(event.to_data())]
        key, conflicts = log_key(room), conflicts_key(room)
        replies = await store.router.run(
            key, lambda pipe: pipe.eval(APPEND_SCRIPT, 2, key, conflicts, *args)
        )
        assert replies[0][0] == 1, "the log moved meanwhile"
        return last + 1
    finally:
        await store.close()


async def test_an_error_or_a_no_op_is_decided_on_the_log_not_on_a_view_that_is_behind(
    cluster: RedisCluster, pairs: list[Pair], tmp_path: Path
) -> None:
    """A command that fails, or changes nothing, is answered from the room as the log has it.

    Node 2 has not yet read the wake-up of a question asked and of alice's hand lowered (on a
    loaded node that takes long): alice's upvote of the question must not be refused with
    ``no_such_question``, and her raised hand must not be acknowledged as already up."""
    pair = Pair(cluster, tmp_path).start((), ())
    pairs.append(pair)
    room = f"behind-{secrets.token_hex(4)}"
    teacher = pair.client(0, "teacher", room, "teacher")
    await teacher.connect()
    alice = pair.client(1, "alice", room)
    await alice.connect()
    assert (await alice.raise_hand())["ids"]

    await append_unheard(
        cluster,
        room,
        [
            QuestionAskedEvent(1, "teacher", "teacher", "Asked where node 2 has not looked yet"),
            HandLoweredEvent("alice", "teacher"),
        ],
    )
    try:
        upvote = await alice.upvote(1)
    except CommandFailed as exc:
        pytest.fail(f"the upvote of a question in the log was refused: {exc.code}")
    assert upvote["ids"]
    raised = await alice.raise_hand()
    assert raised["ids"], "alice's hand is down in the log, but raising it changed nothing"


async def test_a_join_is_refused_or_resumed_on_the_log_not_on_a_view_that_is_behind(
    cluster: RedisCluster, pairs: list[Pair], tmp_path: Path
) -> None:
    """Node 2 has not yet read that the teacher unlocked the room: a join there must not be
    refused with ``room_locked`` (a final close, the client does not come back). And a client
    that saw an event node 2 has not read yet (its node died) resumes there, not a ``welcome``
    with a room older than what it saw."""
    pair = Pair(cluster, tmp_path).start((), ())
    pairs.append(pair)
    room = f"locked-{secrets.token_hex(4)}"
    teacher = pair.client(0, "teacher", room, "teacher")
    await teacher.connect()
    alice = pair.client(1, "alice", room)
    await alice.connect()
    await teacher.lock_room()
    await alice.wait_for(lambda e: e.type == "room.locked")

    await append_unheard(cluster, room, [RoomLockedEvent(False, "teacher")])
    bob = pair.client(1, "bob", room)
    try:
        await bob.connect()
    except Refused as exc:
        pytest.fail(f"a join to a room the log has unlocked was refused: {exc.code}")

    asked = await append_unheard(cluster, room, [QuestionAskedEvent(1, "teacher", "t", "Q?")])
    again = ClassroomClient(
        pair.nodes[1].ws_url,
        pair.nodes[1].token("alice", "student", room),
        room,
        reconnect=False,
        resume_from=asked,  # alice saw the question on node 1, which died
    )
    pair.clients.append(again)
    greeting = await again.connect()
    assert greeting["t"] == "resumed", "a welcome older than what alice saw"
    assert greeting["last_id"] == asked


async def test_an_event_whose_wake_up_was_never_published_reaches_the_other_nodes(
    cluster: RedisCluster, pairs: list[Pair], tmp_path: Path
) -> None:
    """Node 1 dies between its append and the wake-up after it (its pipeline waits 1 s for a
    second replica; Redis drops the rest of a closed client's pipeline): the event is in the log
    but no node was told. Node 2 must find it on its own, not only when a later event shows the
    gap (in a quiet room that is never)."""
    slow = ("--redis-replicas", "2", "--redis-replica-wait-ms", "1000")
    pair = Pair(cluster, tmp_path).start(slow, ())
    pairs.append(pair)
    room = f"unannounced-{secrets.token_hex(4)}"
    teacher = pair.client(0, "teacher", room, "teacher")
    await teacher.connect()
    bob = pair.client(1, "bob", room)
    await bob.connect()
    chat = asyncio.create_task(teacher.chat("the last words of node 1"))
    await asyncio.sleep(0.3)  # node 1 has appended the line and waits for the replica
    pair.nodes[0].kill()
    await asyncio.gather(chat, return_exceptions=True)
    store = RedisEventStore.connect(cluster.seeds)
    try:
        lines = [r for r in await store.read(room, 0) if r.event.type == "chat.message"]
    finally:
        await store.close()
    assert len(lines) == 1, "the append did not commit before the kill"
    await bob.wait_for(lambda e: e.type == "chat.message", timeout=5)
