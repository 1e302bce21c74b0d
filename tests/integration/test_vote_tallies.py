"""Vote tallies against a real ``liveclass serve``: above ``--large-room`` an upvote storm costs
each student O(1) frames per presence interval, not one per vote, and every count ends right
(docs/protocol.md, "Vote tallies")."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from clients import ClassroomClient
from tests.integration.classroom import client, close_all, connect_all
from tests.redis_cluster import RedisCluster
from tests.server import LiveclassServer

STUDENTS = 8
INTERVAL_S = 0.25


def large_room(make_server: Callable[..., LiveclassServer]) -> LiveclassServer:
    """A server on which a teacher and ``STUDENTS`` students make a large room."""
    return make_server(
        *("--large-room", "3", "--presence-interval-ms", str(int(INTERVAL_S * 1000)))
    )


def votes_of(c: ClassroomClient, question: int) -> int | None:
    return c.session.votes.get(question)


def vote_events(c: ClassroomClient) -> list[str]:
    """Who cast each vote event ``c`` received (upvotes and un-votes), in order."""
    return [
        e.data["identity"]
        for e in c.session.events
        if e.type in ("question.upvoted", "question.unvoted")
    ]


async def ask(teacher: ClassroomClient, text: str) -> int:
    """Ask a question; its question id."""
    (event_id,) = (await teacher.ask(text))["ids"]
    asked = await teacher.wait_for(lambda e: e.id == event_id)
    return int(asked.data["question_id"])


async def settle(clients: list[ClassroomClient], question: int, votes: int) -> None:
    await asyncio.gather(
        *(c.wait_until(lambda c=c: votes_of(c, question) == votes, 5) for c in clients)
    )


async def test_an_upvote_storm_in_a_large_room_reaches_students_as_tallies(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = large_room(make_server)
    teacher = client(server, "t", "teacher")
    students = [client(server, f"s{i}") for i in range(STUDENTS)]
    everyone = [teacher, *students]
    await connect_all(everyone)
    try:
        question = await ask(teacher, "Which sort is stable?")
        await settle(everyone, question, 0)
        tallies_before = [s.session.tally_frames for s in students]

        started = time.monotonic()
        await asyncio.gather(*(s.upvote(question) for s in students))
        await settle(everyone, question, STUDENTS)
        storm_s = time.monotonic() - started

        # The staff get every vote; a student gets its own vote event and tallies for the rest.
        assert sorted(vote_events(teacher)) == sorted(s.session.you["identity"] for s in students)
        windows = int(storm_s / INTERVAL_S) + 2
        for s in students:
            assert vote_events(s) == [s.session.you["identity"]], "others' votes were sent"
            assert s.session.voted == {question}
            tallies = s.session.tally_frames - tallies_before[students.index(s)]
            assert 1 <= tallies <= windows, f"{tallies} tallies in {storm_s:.2f} s"

        # Un-votes too: half take theirs back; every count ends right, own flags follow.
        await asyncio.gather(*(s.unvote(question) for s in students[::2]))
        await settle(everyone, question, STUDENTS // 2)
        for i, s in enumerate(students):
            assert s.session.voted == (set() if i % 2 == 0 else {question})
        assert len(vote_events(teacher)) == STUDENTS + STUDENTS // 2
    finally:
        await close_all(everyone)


async def test_a_tally_moves_a_students_last_id_and_a_resume_gets_the_current_counts(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = large_room(make_server)
    teacher = client(server, "t", "teacher")
    students = [client(server, f"s{i}") for i in range(STUDENTS)]
    away = client(server, "away", reconnect=False)
    await connect_all([teacher, *students, away])
    try:
        first = await ask(teacher, "first")
        second = await ask(teacher, "second")
        acks = await asyncio.gather(*(s.upvote(first) for s in students))
        await settle([away], first, STUDENTS)
        # Its last event is the second question; the tally moved it to the last vote.
        asked_second = max(e.id for e in away.session.events if e.type == "question.asked")
        last_vote = max(i for ack in acks for i in ack["ids"])
        assert away.session.last_id == last_vote > asked_second
        seen = away.session.last_id
        await away.close()

        # While it is away: votes on both questions, an un-vote, and a chat line.
        await asyncio.gather(*(s.upvote(second) for s in students[:5]))
        await students[0].unvote(first)
        (last,) = (await teacher.chat("votes are in"))["ids"]

        back = ClassroomClient(server.ws_url, server.token("away"), "class", resume_from=seen)
        greeting = await back.connect()
        assert greeting["t"] == "resumed" and greeting["missed"] == 1, greeting
        await back.wait_until(lambda: back.session.tally_frames >= 1, 5)
        assert [e.type for e in back.session.events] == ["chat.message"]
        assert back.session.votes == {first: STUDENTS - 1, second: 5}
        assert back.session.last_id == last
        await back.close()
    finally:
        await close_all([teacher, *students, away])


async def test_a_small_room_keeps_the_full_vote_stream(server: LiveclassServer) -> None:
    teacher = client(server, "t", "teacher")
    students = [client(server, f"s{i}") for i in range(4)]
    everyone = [teacher, *students]
    await connect_all(everyone)
    try:
        question = await ask(teacher, "small room?")
        await asyncio.gather(*(s.upvote(question) for s in students))
        await settle(everyone, question, 4)
        for s in students:
            assert sorted(vote_events(s)) == ["s0", "s1", "s2", "s3"]
            assert s.session.tally_frames == 0
    finally:
        await close_all(everyone)


async def test_students_on_two_cluster_nodes_get_tallies_from_their_own_node(
    tmp_path: Path,
) -> None:
    """With two nodes on the Redis Cluster each node tallies for its own students; the large-room
    count is the room's (presence across nodes), and every count ends right on both."""
    cluster = RedisCluster(tmp_path / "redis-cluster").start()
    nodes: list[LiveclassServer] = []
    clients: list[ClassroomClient] = []
    try:
        for i in range(2):
            node = LiveclassServer(
                tmp_path / f"node{i}",
                [
                    *("--redis-cluster", cluster.seeds, "--node-id", f"node{i}"),
                    *("--large-room", "3", "--presence-interval-ms", str(int(INTERVAL_S * 1000))),
                ],
                secret=nodes[0].secret if nodes else secrets.token_urlsafe(32),
            )
            node.data_dir.mkdir(parents=True)
            nodes.append(node.start())

        def on(node: LiveclassServer, identity: str, role: str = "student") -> ClassroomClient:
            made = ClassroomClient(
                node.ws_url, node.token(identity, role, "spread"), "spread", backoff=(0.05, 0.5)
            )
            clients.append(made)
            return made

        teacher = on(nodes[0], "t", "teacher")
        students = [on(nodes[i % 2], f"s{i}") for i in range(STUDENTS)]
        await connect_all([teacher, *students])
        # Both nodes know the room is large (each one's students are only half of it).
        await asyncio.gather(
            *(s.wait_until(lambda s=s: s.session.online == STUDENTS + 1, 5) for s in students)
        )
        question = await ask(teacher, "Across nodes?")
        await asyncio.gather(*(s.upvote(question) for s in students))
        await settle([teacher, *students], question, STUDENTS)
        for s in students:
            assert vote_events(s) == [s.session.you["identity"]], "others' votes were sent"
            assert s.session.tally_frames >= 1
        assert len(vote_events(teacher)) == STUDENTS
    finally:
        await close_all(clients)
        for node in nodes:
            node.stop()
        cluster.stop()
