"""Nothing acknowledged is lost: reconnects resume exactly; a SIGKILL restart keeps the class."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable

from clients import ClassroomClient
from tests.integration.classroom import client, close_all, connect_all, public, wait_all
from tests.server import LiveclassServer


async def test_a_dropped_client_reconnects_and_misses_nothing(server: LiveclassServer) -> None:
    teacher, alice, bob = (
        client(server, "t", "teacher"),
        client(server, "alice"),
        client(server, "bob"),
    )
    await connect_all([teacher, alice, bob])
    try:
        await teacher.chat("before the drop")
        await alice.drop()  # TCP cut, as a flaky network does
        ids = [(await teacher.chat(f"while away {i}"))["ids"][0] for i in range(20)]
        ids.append((await bob.ask("did alice miss this?"))["ids"][0])
        await wait_all([alice], ids[-1])
        assert alice.session.resumes == 1
        got = public(alice.session.events)
        assert got == public(teacher.session.events)
        assert len({i for i, _, _ in got}) == len(got), "an event arrived twice"
    finally:
        await close_all([teacher, alice, bob])


async def test_a_returning_client_gets_exactly_the_missed_events(server: LiveclassServer) -> None:
    teacher = client(server, "t", "teacher")
    await teacher.connect()
    alice = client(server, "alice", reconnect=False)
    await alice.connect()
    try:
        await teacher.chat("seen")
        await alice.wait_until(lambda: alice.session.last_id >= teacher.session.last_id)
        seen = alice.session.last_id
        await alice.close()
        missed = [(await teacher.chat(f"missed {i}"))["ids"][0] for i in range(5)]
        back = ClassroomClient(server.ws_url, server.token("alice"), "class", resume_from=seen)
        greeting = await back.connect()
        assert greeting["t"] == "resumed" and greeting["missed"] == 5
        await back.wait_until(lambda: back.session.last_id >= missed[-1])
        assert [e.id for e in back.session.events] == missed
        await back.close()
    finally:
        await teacher.close()


async def test_a_client_too_far_behind_gets_a_fresh_snapshot(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--resume-max-events", "3")
    teacher = client(server, "t", "teacher")
    await teacher.connect()
    try:
        for i in range(6):
            await teacher.chat(f"line {i}")
        late = ClassroomClient(server.ws_url, server.token("alice"), "class", resume_from=1)
        greeting = await late.connect()
        assert greeting["t"] == "welcome"
        assert [m["text"] for m in greeting["room"]["chat"]] == [f"line {i}" for i in range(6)]
        await late.close()
    finally:
        await teacher.close()


async def test_sigkill_mid_class_loses_nothing_acknowledged_and_clients_resume(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server()
    teacher = client(server, "t", "teacher")
    students = [client(server, f"s{i}") for i in range(6)]
    everyone = [teacher, *students]
    await connect_all(everyone)
    try:
        chats = [(await s.chat(f"hello from {i}"))["ids"][0] for i, s in enumerate(students)]
        questions = [(await s.ask(f"q{i}"))["ids"][0] for i, s in enumerate(students[:3])]
        await asyncio.gather(*(s.upvote(1) for s in students[1:]))
        await teacher.open_poll("Ready?", ["yes", "no"])
        await asyncio.gather(*(s.answer_poll(1, [i % 2]) for i, s in enumerate(students)))
        acked_last = teacher.session.last_id
        assert chats and questions

        server.kill()
        await asyncio.to_thread(server.start)  # same port and data directory

        await asyncio.gather(
            *(c.wait_until(lambda c=c: c.session.resumes >= 1, 15) for c in everyone)
        )
        after = (await teacher.chat("after the restart"))["ids"][0]
        assert after == acked_last + 1, "the log continues where the acknowledged events ended"
        await wait_all(everyone, after)
        for c in everyone:
            assert c.session.resumes >= 1
        for s in students:
            assert public(s.session.events) == public(teacher.session.events)

        fresh = client(server, "t", "teacher", reconnect=False)
        await fresh.connect()
        view = fresh.session.room
        assert [m["text"] for m in view["chat"]][:6] == [f"hello from {i}" for i in range(6)]
        assert [q["text"] for q in sorted(view["questions"], key=lambda q: q["question_id"])] == [
            "q0",
            "q1",
            "q2",
        ]
        assert next(q for q in view["questions"] if q["question_id"] == 1)["votes"] == 5
        assert view["polls"][0]["tally"] == [3, 3] and view["polls"][0]["open"]
        await fresh.close()
    finally:
        await close_all(everyone)


async def test_a_long_class_restarts_from_its_snapshot_and_trimmed_log(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server(
        *("--room-snapshot-every", "20", "--resume-max-events", "10"),
        *("--rate-per-s", "1000", "--rate-burst", "1000"),
    )
    teacher = client(server, "t", "teacher")
    alice = client(server, "alice")
    await connect_all([teacher, alice])
    try:
        await alice.ask("Will this survive?")
        await teacher.open_poll("Ready?", ["yes", "no"])
        await alice.answer_poll(1, [1])
        for i in range(45):
            await teacher.chat(f"line {i}")
        last = teacher.session.last_id
        before = client(server, "viewer", reconnect=False)
        await before.connect()
        await before.close()
        with sqlite3.connect(server.data_dir / "events.sqlite3") as db:
            (first,) = db.execute("SELECT MIN(id) FROM events").fetchone()
            (stored,) = db.execute("SELECT last_id FROM snapshots").fetchone()
        assert stored == (last // 20) * 20 and first == stored - 10 + 1

        server.kill()
        await asyncio.to_thread(server.start)
        await asyncio.gather(
            *(c.wait_until(lambda c=c: c.session.resumes >= 1, 15) for c in (teacher, alice))
        )
        after = client(server, "viewer", reconnect=False)
        await after.connect()
        assert after.session.room == before.session.room
        assert after.session.last_id == before.session.last_id
        assert (await teacher.chat("after"))["ids"] == [last + 2]
        await wait_all([teacher, alice], last + 2)
        assert public(alice.session.events) == public(teacher.session.events)
        await after.close()
    finally:
        await close_all([teacher, alice])
