"""The waiting room against real ``liveclass serve`` processes: a late student waits on an open
connection, staff see them, admit them (the welcome comes on the same connection) or turn them
away; on a Redis Cluster a student waiting on one node is admitted by staff on another."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from clients import ClassroomClient, Refused
from tests.integration.classroom import close_all, connect_all
from tests.redis_cluster import RedisCluster
from tests.server import LiveclassServer

WAIT_S = 10.0


async def test_a_late_student_waits_on_an_open_connection_and_enters_when_admitted(
    server: LiveclassServer,
) -> None:
    teacher = ClassroomClient(server.ws_url, server.token("t1", "teacher"), "class")
    early = ClassroomClient(server.ws_url, server.token("s1", name="Sam"), "class")
    await connect_all([teacher, early])
    late = ClassroomClient(server.ws_url, server.token("s9", name="Neo"), "class")
    try:
        await teacher.set_waiting_room(True)
        waiting = await late.connect()
        assert waiting["t"] == "waiting" and waiting["position"] == 1
        assert waiting["room"] == "class"
        event = await teacher.wait_for(lambda e: e.type == "participant.waiting")
        assert event.data == {"identity": "s9", "name": "Neo"}
        assert "s9" not in teacher.session.roster, "a waiting student is in no roster"
        assert not any(e.type == "participant.waiting" for e in early.session.events)
        await late.ping()  # the waiting connection stays alive
        with pytest.raises(Exception, match="not_joined"):
            await late.chat("let me in")

        # Staff who join now see the queue in their welcome.
        assistant = ClassroomClient(server.ws_url, server.token("a1", "assistant"), "class")
        await connect_all([assistant])
        assert assistant.session.room["waiting"] == [{"identity": "s9", "name": "Neo"}]
        assert early.session.room["waiting"] == []
        await close_all([assistant])

        await teacher.admit_waiting("s9")
        await late.wait_until(lambda: late.session.welcomes == 1, WAIT_S)
        assert late.session.waiting is None
        assert late.session.you["identity"] == "s9"
        assert late.session.room["waiting"] == [], "a student never sees the queue"
        await late.chat("thanks for letting me in")
        message = await early.wait_for(lambda e: e.type == "chat.message")
        assert message.data["text"] == "thanks for letting me in"

        # Admitted once, they come back without waiting.
        await late.drop()
        await late.wait_until(lambda: late.session.resumes + late.session.welcomes >= 2, WAIT_S)
        assert late.session.waiting is None
    finally:
        await close_all([teacher, early, late])


async def test_a_student_turned_away_is_closed_and_refused_for_the_session(
    server: LiveclassServer,
) -> None:
    teacher = ClassroomClient(server.ws_url, server.token("t1", "teacher"), "class")
    await connect_all([teacher])
    await teacher.set_waiting_room(True)
    denied = ClassroomClient(
        server.ws_url, server.token("s9", name="Neo"), "class", reconnect=False
    )
    gone = ClassroomClient(server.ws_url, server.token("s8", name="May"), "class", reconnect=False)
    try:
        assert (await denied.connect())["t"] == "waiting"
        assert (await gone.connect())["position"] == 2
        await gone.close()  # the tab was closed: they leave the queue
        left = await teacher.wait_for(lambda e: e.type == "participant.waiting_left")
        assert left.data == {"identity": "s8"}

        await teacher.deny_waiting("s9")
        await denied.wait_until(lambda: denied.closed_with is not None, WAIT_S)
        assert denied.closed_with == (4403, "join_denied")
        assert denied.session.errors[-1]["code"] == "join_denied"
        again = ClassroomClient(
            server.ws_url, server.token("s9", name="Neo 2"), "class", reconnect=False
        )
        with pytest.raises(Refused) as refused:
            await again.connect()
        assert refused.value.code == "join_denied"
        await again.close()
        with pytest.raises(Exception, match="no_such_participant"):
            await teacher.admit_waiting("s9")
    finally:
        await close_all([teacher, denied, gone])


async def test_a_student_waiting_on_one_node_is_admitted_by_staff_on_another(
    cluster: RedisCluster, tmp_path: Path
) -> None:
    secret = secrets.token_urlsafe(32)
    nodes: list[LiveclassServer] = []
    clients: list[ClassroomClient] = []

    def node(name: str) -> LiveclassServer:
        made = LiveclassServer(
            tmp_path / name,
            ["--redis-cluster", cluster.seeds, "--node-id", name],
            secret=secret,
        )
        made.data_dir.mkdir(parents=True)
        nodes.append(made)
        return made.start()

    def client(on: LiveclassServer, identity: str, role: str = "student") -> ClassroomClient:
        made = ClassroomClient(on.ws_url, on.token(identity, role, room), room)
        clients.append(made)
        return made

    room = f"waiting-{secrets.token_hex(4)}"
    try:
        a, b = node("node1"), node("node2")
        teacher = client(b, "t1", "teacher")
        await connect_all([teacher])
        await teacher.set_waiting_room(True)
        student = client(a, "s9")
        assert (await student.connect())["t"] == "waiting"
        await teacher.wait_for(lambda e: e.type == "participant.waiting", WAIT_S)
        await teacher.admit_waiting(None)
        await student.wait_until(lambda: student.session.welcomes == 1, WAIT_S)
        await student.raise_hand()
        raised = await teacher.wait_for(lambda e: e.type == "hand.raised", WAIT_S)
        assert raised.data["identity"] == "s9"
    finally:
        await close_all(clients)
        for made in nodes:
            made.stop()


async def test_one_identity_holds_no_more_waiting_connections_than_joined_ones(
    server: LiveclassServer,
) -> None:
    teacher = ClassroomClient(server.ws_url, server.token("t1", "teacher"), "class")
    await connect_all([teacher])
    await teacher.set_waiting_room(True)
    tabs = [
        ClassroomClient(server.ws_url, server.token("s9", name="Neo"), "class", reconnect=False)
        for _ in range(9)  # --max-connections-per-identity is 8
    ]
    try:
        for tab in tabs:
            assert (await tab.connect())["t"] == "waiting"
        await tabs[0].wait_until(lambda: tabs[0].closed_with is not None, WAIT_S)
        assert tabs[0].closed_with == (4410, "connection_replaced")
        assert all(tab.closed_with is None for tab in tabs[1:])
        waiting = [e for e in teacher.session.events if e.type == "participant.waiting"]
        assert len(waiting) == 1, "one identity waits once, however many tabs"
        await teacher.admit_waiting("s9")
        for tab in tabs[1:]:
            await tab.wait_until(lambda tab=tab: tab.session.welcomes == 1, WAIT_S)
    finally:
        await close_all([teacher, *tabs])
