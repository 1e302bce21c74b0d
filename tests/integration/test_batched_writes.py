"""The batched room write path against a real ``liveclass serve``: commands that arrive while an
append is in flight commit together, each sender gets exactly its own answer, and every member
sees every event once, in one order."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable

from clients import CommandFailed
from tests.integration.classroom import client, close_all, connect_all, wait_all
from tests.server import LiveclassServer

STUDENTS = 60


def histogram(server: LiveclassServer, name: str) -> tuple[float, float, float]:
    """``(count, sum, count in the le="1.0" bucket)`` of a Prometheus histogram."""
    _, body, _ = server.get("/metrics")
    text = body.decode()

    def value(pattern: str) -> float:
        match = re.search(pattern, text, re.MULTILINE)
        assert match is not None, f"{pattern} not in /metrics"
        return float(match.group(1))

    return (
        value(rf"^{name}_count ([0-9.e+]+)$"),
        value(rf"^{name}_sum ([0-9.e+]+)$"),
        value(rf'^{name}_bucket{{le="1.0"}} ([0-9.e+]+)$'),
    )


async def test_a_storm_of_commands_commits_in_batches_with_one_answer_each(
    server: LiveclassServer,
) -> None:
    teacher = client(server, "teacher", "teacher")
    students = [client(server, f"s{i:02d}") for i in range(STUDENTS)]
    twins = [client(server, f"s{i:02d}") for i in range(10)]  # a second tab of ten of them
    everyone = [teacher, *students, *twins]
    await connect_all(everyone)
    try:
        ask = await teacher.ask("Which chapter next?")
        (question_id,) = [
            e.data["question_id"] for e in teacher.session.events if e.id == ask["ids"][0]
        ]
        before = histogram(server, "liveclass_batch_commands")

        async def outcome(coro: object) -> str:
            try:
                await coro  # type: ignore[misc]
                return "ok"
            except CommandFailed as exc:
                return exc.code

        # Everyone at once, and ten identities from two tabs: one of each pair is refused.
        outcomes = await asyncio.gather(
            *(outcome(s.upvote(question_id)) for s in [*students, *twins]),
            *(outcome(s.chat(f"line {i}")) for i, s in enumerate(students)),
        )
        counts = Counter(outcomes)
        assert counts == {"ok": STUDENTS + STUDENTS, "already_voted": 10}, counts

        after = histogram(server, "liveclass_batch_commands")
        commands = after[1] - before[1]
        batches = after[0] - before[0]
        assert commands == STUDENTS * 2 + 10  # every command went through a batch, once
        # Commands that arrived while an append was in flight were appended together.
        assert batches < commands
        assert after[0] - after[2] > before[0] - before[2]  # at least one batch of 2 or more

        last = max(c.session.last_id for c in everyone)
        await wait_all(everyone, last)
        for c in everyone:
            upvotes = [e for e in c.session.events if e.type == "question.upvoted"]
            assert len(upvotes) == STUDENTS
            assert len({e.data["identity"] for e in upvotes}) == STUDENTS
            ids = [e.id for e in c.session.events]
            assert ids == sorted(set(ids))  # no duplicate, one order
        assert [e.id for e in students[0].session.events] == [
            e.id for e in students[-1].session.events
        ]
        # A fresh join sees the same count.
        late = client(server, "late")
        await late.connect()
        everyone.append(late)
        (q,) = [q for q in late.session.room["questions"] if q["question_id"] == question_id]
        assert q["votes"] == STUDENTS
    finally:
        await close_all(everyone)


async def test_a_pipelined_burst_from_one_connection_commits_together_in_order(
    make_server: Callable[..., LiveclassServer],
) -> None:
    limits = ("--rate-per-s", "1000", "--rate-burst", "1000")
    server = make_server(*limits, "--identity-rate-per-s", "1000", "--identity-burst", "1000")
    teacher = client(server, "teacher", "teacher")
    student = client(server, "s1")
    await connect_all([teacher, student])
    try:
        before = histogram(server, "liveclass_batch_commands")
        # The SDK sends each request at once and matches acks by ref: 100 lines in flight.
        acks = await asyncio.gather(*(teacher.chat(f"line {i}") for i in range(100)))
        ids = [ack["ids"][0] for ack in acks]
        assert ids == sorted(ids) and len(set(ids)) == 100  # decided in the order sent
        after = histogram(server, "liveclass_batch_commands")
        assert after[1] - before[1] == 100
        assert after[0] - before[0] < 100  # lines that queued behind an append joined one
        await wait_all([student], ids[-1])
        lines = [e.data["text"] for e in student.session.events if e.type == "chat.message"]
        assert lines == [f"line {i}" for i in range(100)]
    finally:
        await close_all([teacher, student])
