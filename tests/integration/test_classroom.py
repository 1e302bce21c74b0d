"""A teacher and 50 students run Q&A and a poll over real WebSockets to a `liveclass serve`."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from clients import CommandFailed
from tests.integration.classroom import client, close_all, connect_all, public, wait_all
from tests.server import LiveclassServer

STUDENTS = 50


async def test_fifty_students_run_qa_and_a_poll_and_everyone_sees_one_order(
    server: LiveclassServer,
) -> None:
    rng = random.Random(20261121)
    teacher = client(server, "teacher", "teacher")
    students = [client(server, f"s{i:02d}") for i in range(STUDENTS)]
    everyone = [teacher, *students]
    await connect_all(everyone)
    try:
        # Every student asks at once; each question gets an id in log order.
        acks = await asyncio.gather(
            *(s.ask(f"question from s{i:02d}") for i, s in enumerate(students))
        )
        assert sorted(a["ids"][0] for a in acks) == sorted({a["ids"][0] for a in acks})
        asked = await teacher.wait_until(
            lambda: sum(e.type == "question.asked" for e in teacher.session.events) == STUDENTS
        )
        del asked
        qids = [e.data["question_id"] for e in teacher.session.events if e.type == "question.asked"]
        assert sorted(qids) == list(range(1, STUDENTS + 1))

        # Each student upvotes three questions at random, and tries one of them twice.
        votes: Counter[int] = Counter()

        async def vote(s_index: int) -> None:
            s = students[s_index]
            picks = rng.sample(qids, 3)
            for q in picks:
                await s.upvote(q)
                votes[q] += 1
            with pytest.raises(CommandFailed) as second:
                await s.upvote(picks[0])
            assert second.value.code == "already_voted"

        await asyncio.gather(*(vote(i) for i in range(STUDENTS)))

        top = max(qids, key=lambda q: (votes[q], -q))
        await teacher.pin_question(top)
        await teacher.answer_question(top)

        # A single-choice poll: every student answers, a third change their minds.
        ack = await teacher.open_poll("Best sorting algorithm?", ["merge", "quick", "heap"])
        poll_id = 1
        await wait_all(students, ack["ids"][0])
        final: dict[str, int] = {}

        async def answer(i: int) -> None:
            choice = rng.randrange(3)
            await students[i].answer_poll(poll_id, [choice])
            if i % 3 == 0:
                choice = (choice + 1) % 3
                await students[i].answer_poll(poll_id, [choice])
            final[f"s{i:02d}"] = choice

        await asyncio.gather(*(answer(i) for i in range(STUDENTS)))
        closed = await teacher.close_poll(poll_id)
        with pytest.raises(CommandFailed) as again:
            await teacher.close_poll(poll_id)
        assert again.value.code == "poll_closed"
        await wait_all(everyone, closed["ids"][0])

        # One order: every participant saw the same public events in the same order.
        reference = public(teacher.session.events)
        assert [i for i, _, _ in reference] == sorted({i for i, _, _ in reference})
        for s in students:
            assert public(s.session.events) == reference, s.session.you["identity"]

        # Votes counted once per participant.
        upvoted = Counter(
            e.data["question_id"] for e in teacher.session.events if e.type == "question.upvoted"
        )
        assert upvoted == votes
        # The poll's tally counts each student's final answer once.
        closed_event = next(e for e in teacher.session.events if e.type == "poll.closed")
        expected = [sum(1 for c in final.values() if c == option) for option in range(3)]
        assert closed_event.data["tally"] == expected
        assert closed_event.data["voters"] == STUDENTS

        # A late joiner's snapshot agrees: votes, the pinned-and-answered question, the tally.
        late = client(server, "late")
        await late.connect()
        view = late.session.room
        by_id = {q["question_id"]: q for q in view["questions"]}
        assert {q: by_id[q]["votes"] for q in qids} == {q: votes[q] for q in qids}
        assert view["questions"][0]["question_id"] == top
        assert view["questions"][0]["pinned"] and view["questions"][0]["answered"]
        assert view["polls"][0]["tally"] == expected and not view["polls"][0]["open"]
        await late.close()
    finally:
        await close_all(everyone)


async def test_students_see_their_own_poll_answer_but_not_the_live_tally(
    server: LiveclassServer,
) -> None:
    teacher, alice, bob = (
        client(server, "t", "teacher"),
        client(server, "alice"),
        client(server, "bob"),
    )
    await connect_all([teacher, alice, bob])
    try:
        await teacher.open_poll("Pick", ["a", "b"], multiple=True)
        mine = await alice.answer_poll(1, [0, 1])
        await teacher.wait_until(lambda: teacher.session.last_id >= mine["ids"][0])
        await bob.ping()  # everything before this pong has been delivered to bob
        assert [e.type for e in bob.session.events if e.type.startswith("poll.")] == ["poll.opened"]
        assert any(e.type == "poll.answered" for e in alice.session.events)
        peek = client(server, "carol")
        await peek.connect()
        assert peek.session.room["polls"][0]["tally"] is None
        await peek.close()
    finally:
        await close_all([teacher, alice, bob])


async def test_private_chat_reaches_only_the_staff_and_that_student(
    server: LiveclassServer,
) -> None:
    teacher = client(server, "t", "teacher")
    assistant = client(server, "a", "assistant")
    alice, bob = client(server, "alice"), client(server, "bob")
    everyone = [teacher, assistant, alice, bob]
    await connect_all(everyone)
    try:
        await alice.chat("I am lost", to="staff")
        reply = await teacher.chat("Which part?", to="alice")
        await teacher.chat("Everyone: break in 5")
        last = (await teacher.chat("done"))["ids"][0]
        await wait_all(everyone, last)

        def texts(c: object) -> list[str]:
            return [e.data["text"] for e in c.session.events if e.type == "chat.message"]  # type: ignore[attr-defined]

        assert texts(alice) == ["I am lost", "Which part?", "Everyone: break in 5", "done"]
        assert texts(assistant) == texts(alice)
        assert texts(bob) == ["Everyone: break in 5", "done"]
        with pytest.raises(CommandFailed) as wrong:
            await bob.chat("psst", to="alice")
        assert wrong.value.code in ("not_allowed", "bad_field")
        assert reply["ids"]
    finally:
        await close_all(everyone)
