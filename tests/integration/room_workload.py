"""A busy class over real WebSocket connections: who does what, and what each answer implies.

:class:`Seat` is one participant's connection, written from docs/protocol.md alone: it joins one
of several nodes, keeps the frames it receives in order (greetings and events), reconnects to the
next node when its node goes away and resumes from its last id. :class:`Student` and
:class:`Teacher` drive a seeded workload through it and remember what each command's answer
implies; :mod:`tests.integration.room_log_checks` holds all of it against the room's log.

A command whose answer never came (the connection died, or the store answered ``unavailable``
while failing over) may or may not be in the log. Upvotes, unvotes and poll answers are sent
again until a definite answer: an upvote that did land is answered ``already_voted`` the second
time, a poll answer that did land is acknowledged with no events. A chat line is not sent again;
it is in the log at most once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from rooms import Participant, Role

#: Errors that say nothing was decided: send the same command again after ``retry_after_ms``.
#: ``unavailable`` may follow an append that did commit (its reply was lost in a failover).
RETRY_CODES = frozenset({"rate_limited", "unavailable"})
#: Close codes after which the server does not want the client back.
FINAL_CLOSE_CODES = frozenset({1000, 4401, 4403, 4409, 4410, 4423})


def plain(value: Any) -> Any:
    """``value`` as it reads after a msgpack round trip (tuples become lists)."""
    return msgpack.unpackb(msgpack.packb(value), raw=False)


@dataclass
class Outcome:
    """One command's answer: ``ack`` (with ``ids``), ``error`` (with ``code``) or ``unknown``."""

    kind: str
    ids: list[int] = field(default_factory=list)
    code: str = ""
    retry_after_ms: int = 0


@dataclass
class Sent:
    """A command as sent, with every attempt's outcome (the last one is definite, unless it is
    ``unknown`` or a retry code and attempts ran out)."""

    type: str
    fields: dict[str, Any]
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def acked_ids(self) -> list[int]:
        return [i for o in self.outcomes if o.kind == "ack" for i in o.ids]

    @property
    def unknown(self) -> int:
        """Attempts that may or may not have taken effect."""
        return sum(
            1
            for o in self.outcomes
            if o.kind == "unknown" or (o.kind == "error" and o.code == "unavailable")
        )


class Seat:
    """One participant's connection to one of ``urls`` (starting at ``home``).

    ``timeline`` holds what arrived, in order: ``("welcome", last_id, room)``,
    ``("resumed", last_id_sent)``, ``("event", id, type, data)`` and ``("tally", through)``.
    """

    def __init__(
        self,
        identity: str,
        role: Role,
        token: str,
        room: str,
        urls: Sequence[str],
        home: int,
    ) -> None:
        self.participant = Participant(identity, identity, role)
        self.token = token
        self.room = room
        self.urls = list(urls)
        self.at = home % len(urls)
        self.timeline: list[tuple[Any, ...]] = []
        self.last_id: int | None = None
        self.violations: list[str] = []
        self.nodes_used: set[int] = set()
        self.greetings = 0
        self.stopping = False
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ref = 0
        self._pending: dict[int, asyncio.Future[Outcome]] = {}
        self._greeted: asyncio.Future[dict[str, Any]] | None = None
        self._connected = asyncio.Event()
        self._reconnecting: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        #: What the participant knows of the room: question id -> answered; poll id -> its
        #: (option count, multiple, open).
        self.questions: dict[int, bool] = {}
        #: Votes per question as this seat counts them: its greeting's, then its events and,
        #: in a large room, ``tally`` frames.
        self.votes: dict[int, int] = {}
        self.polls: dict[int, tuple[int, bool, bool]] = {}

    @property
    def identity(self) -> str:
        return self.participant.identity

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def connect(self, timeout: float = 20.0) -> None:
        """Join (or resume from ``last_id``) on the current node, moving on to the next node
        when one cannot be reached.

        Raises:
            TimeoutError: no node took the join within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.identity}: no node took the join")
            try:
                await self._join(deadline)
                return
            except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed, _Closed):
                self.at = (self.at + 1) % len(self.urls)
                await asyncio.sleep(0.05)

    async def _join(self, deadline: float) -> None:
        ws = await connect(
            self.urls[self.at],
            open_timeout=5,
            max_size=None,
            compression=None,
            ping_interval=None,
            close_timeout=1,
        )
        join = msgpack.packb(
            {"t": "join", "token": self.token, "room": self.room, "last_id": self.last_id}
        )
        self._ws = ws
        self._greeted = asyncio.get_running_loop().create_future()
        self._reader = asyncio.get_running_loop().create_task(self._read(ws))
        await ws.send(join)
        while True:
            try:
                async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                    await asyncio.shield(self._greeted)
            except _Refused as exc:
                await asyncio.sleep(exc.retry_after_ms / 1000 * (1 + random.random()))
                self._greeted = asyncio.get_running_loop().create_future()
                await ws.send(join)
                continue
            except TimeoutError:
                await ws.close()
                raise
            self.nodes_used.add(self.at)
            self.greetings += 1
            self._connected.set()
            return

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                if isinstance(frame, bytes):
                    self._dispatch(msgpack.unpackb(frame, raw=False))
        except ConnectionClosed:
            pass
        finally:
            self._closed(ws)

    def _closed(self, ws: ClientConnection) -> None:
        if self._ws is ws:
            self._ws = None
        self._connected.clear()
        for future in self._pending.values():
            if not future.done():
                future.set_result(Outcome("unknown", code="connection lost"))
        self._pending.clear()
        greeted = self._greeted
        if greeted is not None and not greeted.done():
            greeted.set_exception(_Closed(str(ws.close_code)))
            greeted.exception()
            return
        if self.stopping or ws.close_code in FINAL_CLOSE_CODES:
            if ws.close_code in FINAL_CLOSE_CODES and not self.stopping:
                self.violations.append(f"closed for good: {ws.close_code} {ws.close_reason}")
            return
        if self._reconnecting is None:
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        try:
            await self.connect()
        except TimeoutError as exc:
            self.violations.append(str(exc))
        finally:
            self._reconnecting = None

    def _dispatch(self, msg: dict[str, Any]) -> None:
        t = msg.get("t")
        if t == "event":
            event_id = msg["id"]
            if self.last_id is not None and event_id <= self.last_id:
                self.violations.append(f"event {event_id} after {self.last_id}")
            self.timeline.append(("event", event_id, msg["type"], msg["data"]))
            self.last_id = event_id
            self._learn(msg["type"], msg["data"])
            self._count(msg["type"], msg["data"])
        elif t == "tally":
            # Students of a large room: others' votes as counts (docs/protocol.md, "Vote
            # tallies"); every event up to ``through`` this seat may see came before it.
            through = msg["through"]
            self.timeline.append(("tally", through))
            for row in msg["questions"]:
                self.votes[row["question_id"]] = row["votes"]
            self.last_id = max(self.last_id or 0, through)
        elif t == "welcome":
            self.timeline.append(("welcome", msg["last_id"], msg["room"]))
            self.last_id = msg["last_id"]
            self.votes = {q["question_id"]: q["votes"] for q in msg["room"]["questions"]}
            self.questions = {q["question_id"]: q["answered"] for q in msg["room"]["questions"]}
            self.polls = {
                p["poll_id"]: (len(p["options"]), p["multiple"], p["open"])
                for p in msg["room"]["polls"]
            }
            self._welcomed(msg["room"])
            self._greet(msg)
        elif t == "resumed":
            self.timeline.append(("resumed", self.last_id))
            self._greet(msg)
        elif t in ("ack", "error"):
            ref = msg.get("ref")
            future = self._pending.pop(ref, None) if isinstance(ref, int) else None
            outcome = (
                Outcome("ack", ids=list(msg["ids"]))
                if t == "ack"
                else Outcome(
                    "error", code=msg["code"], retry_after_ms=msg.get("retry_after_ms") or 0
                )
            )
            if future is not None and not future.done():
                future.set_result(outcome)
            elif t == "error" and self._greeted is not None and not self._greeted.done():
                if msg["code"] in RETRY_CODES:
                    self._greeted.set_exception(_Refused(outcome.retry_after_ms or 100))
                else:
                    self._greeted.set_exception(_Closed(msg["code"]))
                self._greeted.exception()
        self._changed.set()

    def _greet(self, msg: dict[str, Any]) -> None:
        if self._greeted is not None and not self._greeted.done():
            self._greeted.set_result(msg)

    def _learn(self, type_: str, data: dict[str, Any]) -> None:
        if type_ == "question.asked":
            self.questions[data["question_id"]] = False
        elif type_ == "question.answered":
            self.questions[data["question_id"]] = True
        elif type_ == "question.dismissed":
            self.questions.pop(data["question_id"], None)
        elif type_ == "poll.opened":
            self.polls[data["poll_id"]] = (len(data["options"]), data["multiple"], True)
        elif type_ == "poll.closed" and data["poll_id"] in self.polls:
            count, multiple, _ = self.polls[data["poll_id"]]
            self.polls[data["poll_id"]] = (count, multiple, False)

    def _count(self, type_: str, data: dict[str, Any]) -> None:
        """Votes as this seat counts them from its events (a tally sets them)."""
        question_id = data.get("question_id")
        if not isinstance(question_id, int):
            return
        if type_ == "question.asked":
            self.votes[question_id] = 0
        elif type_ == "question.dismissed":
            self.votes.pop(question_id, None)
        elif type_ in ("question.upvoted", "question.unvoted") and question_id in self.votes:
            self.votes[question_id] += 1 if type_ == "question.upvoted" else -1

    def _welcomed(self, room: dict[str, Any]) -> None:
        """A fresh snapshot (the first join, or a resume the log no longer reaches)."""

    async def wait_for_votes(self, votes: dict[int, int], timeout: float) -> None:
        """Wait until this seat counts ``votes`` (question id -> votes)."""
        async with asyncio.timeout(timeout):
            while self.votes != votes:
                self._changed.clear()
                await self._changed.wait()

    async def wait_connected(self, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    async def wait_for_id(self, event_id: int, timeout: float) -> None:
        """Wait until this seat has received events (or a welcome) up to ``event_id``."""
        async with asyncio.timeout(timeout):
            while self.last_id is None or self.last_id < event_id:
                self._changed.clear()
                await self._changed.wait()

    async def request(self, type_: str, timeout: float = 15.0, **fields: Any) -> Outcome:
        """Send one command; its ack, its error, or ``unknown`` when the connection died first
        (or no answer came within ``timeout``)."""
        ws = self._ws
        if ws is None or not self.connected:
            return Outcome("unknown", code="not connected")
        self._ref += 1
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending[self._ref] = future
        try:
            await ws.send(msgpack.packb({"t": type_, "ref": self._ref, **fields}))
            async with asyncio.timeout(timeout):
                return await future
        except ConnectionClosed:
            return Outcome("unknown", code="connection lost")
        except TimeoutError:
            return Outcome("unknown", code="timeout")
        finally:
            self._pending.pop(self._ref, None)

    async def send(self, command: Sent, *, again: bool, attempts: int = 40) -> Outcome:
        """Send ``command`` until it has a definite answer; an ``unknown`` one is sent again
        only when ``again`` (the rules answer a repeat without applying it twice)."""
        for _ in range(attempts):
            if not self.connected:
                try:
                    await self.wait_connected()
                except TimeoutError:
                    break
            outcome = await self.request(command.type, **command.fields)
            command.outcomes.append(outcome)
            if outcome.kind == "ack":
                return outcome
            if outcome.kind == "error" and outcome.code not in RETRY_CODES:
                return outcome
            if outcome.kind == "unknown" or outcome.code == "unavailable":
                if not again:
                    return outcome
            await asyncio.sleep(max(outcome.retry_after_ms, 50) / 1000)
        return Outcome("unknown", code="attempts ran out")

    async def close(self) -> None:
        self.stopping = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        ws = self._ws
        if ws is not None:
            await ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


class _Refused(Exception):
    def __init__(self, retry_after_ms: int) -> None:
        super().__init__(f"retry after {retry_after_ms} ms")
        self.retry_after_ms = retry_after_ms


class _Closed(Exception):
    pass


class Student(Seat):
    """A student who upvotes and un-votes the questions it knows, answers polls and changes its
    answers, and chats (room-wide or to the staff), one command every ``think_s``.

    ``voted`` and ``answers`` are what the answers it got imply; ``unsure`` names the question
    or poll whose last command never got a definite answer."""

    def __init__(self, *args: Any, rng: random.Random, think_s: tuple[float, float]) -> None:
        super().__init__(*args)
        self.rng = rng
        self.think_s = think_s
        self.sent: list[Sent] = []
        self.voted: dict[int, bool] = {}
        self.answers: dict[int, list[int]] = {}
        self.unsure: set[tuple[str, int]] = set()
        self.lines = 0

    def _welcomed(self, room: dict[str, Any]) -> None:
        if self.greetings:
            return  # what the answers implied stays the model; the checks compare it to the log
        for q in room["questions"]:
            if ("q", q["question_id"]) not in self.unsure:
                self.voted[q["question_id"]] = q["voted"]
        for p in room["polls"]:
            if p["mine"]:
                self.answers[p["poll_id"]] = p["mine"]

    async def run(self, until: float) -> None:
        while True:
            pause = self.rng.uniform(*self.think_s)
            if time.monotonic() + pause >= until:
                return
            await asyncio.sleep(pause)
            roll = self.rng.random()
            open_questions = sorted(q for q, answered in self.questions.items() if not answered)
            open_polls = sorted(p for p, (_, _, is_open) in self.polls.items() if is_open)
            if roll < 0.45 and open_questions:
                await self._vote(self.rng.choice(open_questions))
            elif roll < 0.8 and open_polls:
                await self._answer(self.rng.choice(open_polls))
            else:
                await self._chat()

    async def _vote(self, question_id: int) -> None:
        type_ = "question.unvote" if self.voted.get(question_id) else "question.upvote"
        command = Sent(type_, {"question_id": question_id})
        self.sent.append(command)
        outcome = await self.send(command, again=True)
        if outcome.kind == "ack" or outcome.code in ("already_voted", "not_voted"):
            self.voted[question_id] = type_ == "question.upvote"
            self.unsure.discard(("q", question_id))
        elif outcome.code == "question_closed":
            self.questions[question_id] = True
        elif outcome.kind == "unknown":
            self.unsure.add(("q", question_id))

    async def _answer(self, poll_id: int) -> None:
        count, multiple, _ = self.polls[poll_id]
        mine = self.answers.get(poll_id)
        while True:
            if multiple:
                choices = sorted(self.rng.sample(range(count), self.rng.randint(1, count)))
            else:
                choices = [self.rng.randrange(count)]
            if choices != mine:
                break
        command = Sent("poll.answer", {"poll_id": poll_id, "choices": choices})
        self.sent.append(command)
        outcome = await self.send(command, again=True)
        if outcome.kind == "ack":
            self.answers[poll_id] = choices
            self.unsure.discard(("p", poll_id))
        elif outcome.code == "poll_closed":
            count, multiple, _ = self.polls[poll_id]
            self.polls[poll_id] = (count, multiple, False)
        elif outcome.kind == "unknown":
            self.unsure.add(("p", poll_id))

    async def _chat(self) -> None:
        self.lines += 1
        to = "staff" if self.rng.random() < 0.3 else None
        command = Sent("chat.send", {"text": f"{self.identity} line {self.lines}", "to": to})
        self.sent.append(command)
        await self.send(command, again=False)


class Teacher(Seat):
    """Asks questions and opens polls (one with ``multiple``) while the class runs, then closes
    the polls."""

    def __init__(self, *args: Any, rng: random.Random) -> None:
        super().__init__(*args)
        self.rng = rng
        self.sent: list[Sent] = []

    async def run(self, until: float, questions: int = 4, polls: int = 3) -> None:
        plan = ["poll", "question", "question", "poll", "question", "poll", "question"]
        plan = [p for p in plan if p == "poll"][:polls] + [p for p in plan if p == "question"][
            :questions
        ]
        self.rng.shuffle(plan)
        plan.insert(0, plan.pop(plan.index("question")))
        pause = (until - time.monotonic()) * 0.6 / len(plan)
        for n, item in enumerate(plan):
            if item == "question":
                command = Sent("question.ask", {"text": f"question {n}?"})
            else:
                options = [f"option {k}" for k in range(4)]
                multiple = n % 2 == 1
                command = Sent(
                    "poll.open",
                    {"question": f"poll {n}?", "options": options, "multiple": multiple},
                )
            self.sent.append(command)
            await self.send(command, again=False)
            await asyncio.sleep(pause)

    async def close_polls(self) -> None:
        for poll_id in sorted(p for p, (_, _, is_open) in self.polls.items() if is_open):
            command = Sent("poll.close", {"poll_id": poll_id})
            self.sent.append(command)
            await self.send(command, again=True)
