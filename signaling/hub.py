"""RoomHub: one room on one signaling node: its state, its local members, and fan-out.

The hub is the asyncio shell around :mod:`signaling.edge`: it reads nothing itself and decides
nothing itself; it queues, awaits the store and the bus, and runs timers.

Writes are batched. Commands (and joins) queue; one writer task at a time takes everything that
queued while the previous append was in flight, decides it in order against the room's state
(:func:`signaling.edge.batch.plan_batch`), and appends the batch's events with one
compare-and-append: one store round trip, one replica wait, one wake-up. Each sender gets its
answer only after the batch committed (invariant 1), and every member sees one order (invariant
2). When another node appended first, the hub folds what it appended and decides the batch again.
Each event is encoded once and the same bytes go to every member allowed to see it (invariant 4).

Breakout rooms make each member's *place* part of who sees what: an event scoped to a room
(``Audience.in_room``) reaches the staff and the members whose place it is, found through an index
of members by place. An event that moves someone (:func:`rooms.room_changes`) is folded on its
own: what the turn delivered before it is written out to the places before it, then the event,
then each moved member gets a ``view`` of its new place covering everything up to that event, and
later events go to the new places. A resume across such an event is answered with ``welcome``.
While a round has an end, the hub keeps a timer at it that proposes ``BreakoutExpire``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from rooms import (
    Audience,
    BreakoutExpire,
    CloseCode,
    Command,
    JoinDenied,
    MustWait,
    Participant,
    ParticipantAdmittedEvent,
    ParticipantDeniedEvent,
    ParticipantRemoved,
    ParticipantRemovedEvent,
    ParticipantWaitingLeftEvent,
    Record,
    Role,
    RoomError,
    RoomLocked,
    RoomState,
    SessionEnded,
    SessionEndedEvent,
    WaitingKnock,
    WaitingLeave,
    WaitingRoomSetEvent,
    audience_of,
    evolve,
    new_room,
    room_changes,
    room_view,
)
from rooms.snapshot import SnapshotError, state_from_data, state_to_data

from . import tracing
from .bus import Bus
from .codec import encode_ack, encode_error, encode_event, encode_reconnect, encode_view, pack
from .edge.batch import Plan, Proposal, batch_size, conflict_backoff_s, plan_batch
from .edge.fanout import Outgoing, plan_fanout
from .edge.greeting import Greeting, choose_greeting
from .edge.ordering import LogFollower, Step, continuation
from .edge.snapshots import snapshot_due
from .edge.tally import VoteTally, resume_audience, resume_tally, tally_for_place
from .metrics import Metrics
from .outbox import Outbox, wire_frame
from .presence import Presence, presence_frames
from .store import AppendConflict, EventStore, Snapshot, StoreUnavailable
from .waiting import Waiter, WaitingConnections, encode_waiting

log = logging.getLogger(__name__)

_MAX_LOAD_ATTEMPTS = 5
#: A join that must wait knocks, and one whose knock found it may enter after all joins again:
#: at most this many rounds while the waiting room or the lock keep changing.
_ADMIT_ROUNDS = 3
#: A breakout timer whose proposal failed (the store) proposes again after this long.
_EXPIRY_RETRY_S = 1.0

#: The actor of the breakout timer's proposals. Its identity is empty, which no access token
#: carries (signaling.auth), and ``BreakoutExpire`` is no wire command, so no client can send
#: what it sends.
BREAKOUT_TIMER = Participant("", "breakout timer", Role.TEACHER)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class HubSettings:
    """Tunables of a room hub (see liveclass/config.py for flags and defaults)."""

    presence_interval_s: float = 0.25
    large_room: int = 100
    resume_max_events: int = 5000
    recent_frames: int = 2048
    heartbeat_ms: int = 15000
    #: Store a snapshot of the room's state every this many events and trim the log behind it
    #: to ``resume_max_events`` records (0: never).
    snapshot_every: int = 10_000


@dataclass(eq=False, slots=True)
class _Queued:
    """A proposal waiting for its batch: its future, and where its ack or error goes."""

    proposal: Proposal
    done: asyncio.Future[tuple[Record, ...]]
    outbox: Outbox | None = None
    ref: int | None = None
    #: The command's ``liveclass.command`` span (:mod:`signaling.tracing`; None: untraced).
    trace: Any = None


@dataclass(eq=False, slots=True)
class Member:
    """One joined connection."""

    participant: Participant
    outbox: Outbox
    closing: bool = False
    #: The breakout room the participant is in (None: the main room), as the hub fanned out.
    place: str | None = None
    #: Whether its greeting was ``resumed`` (the missed events) rather than ``welcome``.
    resumed: bool = False


class JoinRefused(Exception):
    """A join the room refuses; ``error`` goes to the client, then close ``close_code``."""

    def __init__(self, error: RoomError, close_code: int) -> None:
        super().__init__(error.message)
        self.error = error
        self.close_code = close_code


@dataclass(eq=False)
class RoomHub:
    room_id: str
    store: EventStore
    bus: Bus
    settings: HubSettings
    metrics: Metrics
    on_idle: Callable[[RoomHub], None] = lambda hub: None
    #: The ``iceServers`` a participant's media connections use (TURN credentials are minted
    #: per identity at each join, so they are fresh).
    ice_servers: Callable[[Participant], list[dict[str, object]]] = lambda participant: []
    state: RoomState = field(init=False)
    members: dict[Member, None] = field(default_factory=dict, init=False)
    #: This node's connections in the room's waiting room, and the admissions and closes
    #: under way for them (held so they are not collected before they finish).
    waiting: WaitingConnections = field(default_factory=WaitingConnections, init=False)
    _waiting_tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _by_identity: dict[str, set[Member]] = field(default_factory=dict, init=False)
    _staff: dict[Member, None] = field(default_factory=dict, init=False)
    #: Students by place (None: the main room): who an event scoped to a room reaches.
    _by_place: dict[str | None, dict[Member, None]] = field(default_factory=dict, init=False)
    #: The breakout timer: (round, ends_at) it is armed for, and its handle.
    _expiry: tuple[int, int] | None = field(default=None, init=False)
    _expiry_timer: asyncio.TimerHandle | None = field(default=None, init=False)
    _everyone_cache: tuple[Member, ...] | None = field(default=None, init=False)
    # Write coalescing: what this loop turn delivered, flushed once at its end.
    _batch: list[Outgoing] = field(default_factory=list, init=False)
    _replies: list[tuple[Outbox, bytes]] = field(default_factory=list, init=False)
    _covered: dict[Member, int] = field(default_factory=dict, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _recent: deque[tuple[Record, bytes]] = field(init=False)
    _presence: Presence = field(init=False)
    _presence_timer: asyncio.TimerHandle | None = field(default=None, init=False)
    #: Large rooms: the votes students get as one ``tally`` per presence interval.
    _tally: VoteTally = field(default_factory=VoteTally, init=False)
    _gap_fill: asyncio.Task[None] | None = field(default=None, init=False)
    #: A gap was reported while a fill ran: read once more when it ends.
    _fill_again: bool = field(default=False, init=False)
    _follower: LogFollower = field(default_factory=LogFollower, init=False)
    # The write path: proposals waiting for the next batch, and the task appending batches.
    _queue: deque[_Queued] = field(default_factory=deque, init=False)
    _writer: asyncio.Task[None] | None = field(default=None, init=False)
    _rng: random.Random = field(default_factory=random.Random, init=False)
    #: The newest snapshot this hub knows is stored (0: none), and the one being saved.
    _snapshot_id: int = field(default=0, init=False)
    _saving: asyncio.Task[None] | None = field(default=None, init=False)
    _closed: bool = field(default=False, init=False)
    #: Called with each record folded (the whiteboard service follows rooms it has boards in).
    listeners: list[Callable[[Record], None]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.state = new_room(self.room_id)
        self._recent = deque(maxlen=self.settings.recent_frames)
        self._presence = Presence(self.settings.large_room)

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        """Subscribe to the bus, then fold the room from its stored snapshot and log.

        Raises:
            StoreUnavailable: the store failed, or its snapshot cannot be read; the hub is not
                subscribed then.
        """
        await self.bus.subscribe(self.room_id, self)
        try:
            await self._load()
        except BaseException:
            await self.bus.unsubscribe(self.room_id)
            raise
        self._snapshot_due(())
        self._arm_expiry()  # past its end already: proposed at once
        if self._follower.finish_loading():
            # Something was delivered while the log was read: read on from where the load ended.
            self.missed()

    async def _load(self) -> None:
        """Fold the stored snapshot and the records after it into ``state``."""
        for _ in range(_MAX_LOAD_ATTEMPTS):
            snapshot = await self.store.snapshot(self.room_id)
            state = new_room(self.room_id) if snapshot is None else _thaw(self.room_id, snapshot)
            tail: deque[Record] = deque(maxlen=self.settings.recent_frames)
            while True:
                records = await self.store.read(self.room_id, state.last_id, 10_000)
                if not records or records[0].id != state.last_id + 1:
                    break
                for record in records:
                    evolve(state, record)
                tail.extend(records)
            if records:
                # Another node stored a newer snapshot and trimmed the log past ours meanwhile.
                continue
            self.state = state
            # Only the newest events are kept encoded, for resumes.
            self._recent.extend((r, encode_event(r)) for r in tail)
            self._snapshot_id = snapshot.last_id if snapshot is not None else 0
            return
        raise StoreUnavailable(f"room {self.room_id}: its log kept moving past its snapshots")

    async def close(self) -> None:
        self._closed = True
        if self._writer is not None:
            await asyncio.wait([self._writer], timeout=2.0)
        if self._saving is not None:
            await asyncio.wait([self._saving], timeout=2.0)
        await self.bus.unsubscribe(self.room_id)
        if self._presence_timer is not None:
            self._presence_timer.cancel()
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()

    def watch(self, listener: Callable[[Record], None]) -> None:
        """Call ``listener(record)`` for each record folded from now on; keeps the hub loaded."""
        self.listeners.append(listener)

    def unwatch(self, listener: Callable[[Record], None]) -> None:
        self.listeners.remove(listener)
        if not self.members and not self.listeners:
            self.on_idle(self)

    @property
    def idle(self) -> bool:
        """Nobody here uses the room: no member, no waiting connection, no listener."""
        return not self.members and not self.listeners and not self.waiting

    # -- joining and leaving -------------------------------------------------------------------

    async def join(
        self,
        participant: Participant,
        outbox: Outbox,
        last_id: int | None,
        class_name: str | None = None,
    ) -> Member | Waiter:
        """Admit a connection: append its first-join event (and, for staff whose token names the
        class, ``room.named``), send welcome or resume, register it. A student who must wait
        (the waiting room) enters the waiting room instead: the connection is answered
        ``waiting`` and returned as a :class:`Waiter`, greeted later if staff admit it.

        Raises:
            JoinRefused: removed, turned away, room locked (or its waiting room full), session
                ended.
            StoreUnavailable: the store failed; nothing was appended.
        """
        for _ in range(_ADMIT_ROUNDS):
            try:
                await self._propose(Proposal(participant, None, class_name))
            except MustWait:
                pass
            except RoomError as exc:
                raise JoinRefused(exc, exc.close_code or CloseCode.FORBIDDEN) from exc
            else:
                return await self._enter(participant, outbox, last_id)
            try:
                await self._propose(Proposal(participant, WaitingKnock()))
            except RoomError as exc:
                raise JoinRefused(exc, exc.close_code or CloseCode.FORBIDDEN) from exc
            if participant.identity in self.state.waiting:
                return self._wait(participant, outbox, class_name)
        error = RoomLocked("the room is locked")
        raise JoinRefused(error, CloseCode.ROOM_LOCKED)

    async def _enter(self, participant: Participant, outbox: Outbox, last_id: int | None) -> Member:
        """Greet an admitted connection (welcome or resume) and register it as a member."""
        async with self._lock:  # no batch commits between the greeting and the registering
            if last_id is not None and last_id > self.state.last_id and self.store.shared:
                # The client saw events this node has not read yet (on another node): read them,
                # so it resumes rather than getting a room older than what it saw.
                await self._catch_up()
            self._flush()  # members already here get what is pending before anyone new joins
            resumed = await self._greet(participant, outbox, last_id)
            member = Member(participant, outbox, resumed=resumed)
            if self._batch:
                # Its greeting already covers what is pending; the flush must not repeat it.
                self._covered[member] = self.state.last_id
            self._register(member)
        return member

    # -- the waiting room ------------------------------------------------------------------------

    def _wait(self, participant: Participant, outbox: Outbox, class_name: str | None) -> Waiter:
        waiter = Waiter(participant, outbox, class_name)
        self.waiting.add(waiter)
        position = list(self.state.waiting).index(participant.identity) + 1
        frame = encode_waiting(
            self.room_id, self.state.class_name, position, self.settings.heartbeat_ms
        )
        outbox.put(frame)
        return waiter

    def unwait(self, waiter: Waiter) -> None:
        """A waiting connection closed: forget it; when it was its identity's last one here and
        the identity still waits, it leaves the waiting room (``participant.waiting_left``)."""
        waiter.gone = True
        identity = waiter.participant.identity
        if self.waiting.discard(waiter) and identity in self.state.waiting:
            leaving = self._propose(Proposal(waiter.participant, WaitingLeave()))
            leaving.add_done_callback(_ignore_outcome)
        if self.idle:
            self.on_idle(self)

    async def _admit_waiter(self, waiter: Waiter) -> None:
        """Staff admitted ``waiter``'s identity (or the waiting room was turned off): join it now
        and greet it on the connection it waits on; a refusal closes it."""
        p = waiter.participant
        if waiter.gone or waiter.entered is not None:
            return
        try:
            await self._propose(Proposal(p, None, waiter.class_name))
        except MustWait:
            return  # still waiting (the waiting room was turned on again)
        except RoomError as exc:
            self.waiting.discard(waiter)
            code = exc.close_code or CloseCode.FORBIDDEN
            await waiter.outbox.close(code, exc.code, final_frame=encode_error(exc))
            return
        except StoreUnavailable as exc:
            log.warning("room %s: admitting %s failed: %s", self.room_id, p.identity, exc)
            self.waiting.discard(waiter)
            await waiter.outbox.close(
                CloseCode.INTERNAL_ERROR, "store unavailable", final_frame=None
            )
            return
        self.waiting.discard(waiter)
        if waiter.gone:
            return
        member = await self._enter(p, waiter.outbox, None)
        waiter.entered = member
        if waiter.gone:  # closed while it was greeted
            self.remove(member)
        elif waiter.on_enter is not None:
            waiter.on_enter(member)

    def _follow_waiting_room(self, record: Record) -> None:
        """Carry out what a folded event means for this node's waiting connections."""
        event = record.event
        if isinstance(event, ParticipantAdmittedEvent):
            for waiter in self.waiting.of(event.identity):
                self._spawn(self._admit_waiter(waiter))
        elif isinstance(event, WaitingRoomSetEvent) and not event.enabled:
            for waiter in self.waiting:
                self._spawn(self._admit_waiter(waiter))
        elif isinstance(event, ParticipantWaitingLeftEvent) and self.waiting.of(event.identity):
            # Another node's connection of this identity left; this one still waits.
            (waiter, *_) = self.waiting.of(event.identity)
            knock = self._propose(Proposal(waiter.participant, WaitingKnock()))
            knock.add_done_callback(_ignore_outcome)
        elif isinstance(event, ParticipantDeniedEvent | SessionEndedEvent):
            if isinstance(event, ParticipantDeniedEvent):
                error: RoomError = JoinDenied("the teacher did not let you in to this class")
                targets = self.waiting.of(event.identity)
            else:
                error = SessionEnded(f"the session ended: {event.reason}")
                targets = list(self.waiting)
            frame = encode_error(error)
            for waiter in targets:
                self.waiting.discard(waiter)
                code = error.close_code or CloseCode.FORBIDDEN
                self._spawn(waiter.outbox.close(code, error.code, final_frame=frame))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._waiting_tasks.add(task)
        task.add_done_callback(self._waiting_tasks.discard)

    # -- whiteboard connections ------------------------------------------------------------------

    async def admit(self, participant: Participant) -> None:
        """Admit a participant who opens one of the room's whiteboards: the first connection of
        an identity appends ``participant.joined``, as a join does (no welcome, no member).

        Raises:
            RoomError: removed, room locked, session ended (:func:`rooms.admit`).
            StoreUnavailable: the store failed; nothing was appended.
        """
        await self._propose(Proposal(participant, None))

    def attach(self, participant: Participant) -> None:
        """A whiteboard connection of ``participant`` opened: it is a presence, as a member is
        (an identity with several connections is online once)."""
        self._presence.connect(participant)
        self._schedule_presence()

    def detach(self, participant: Participant) -> None:
        """A whiteboard connection of ``participant`` closed."""
        self._presence.disconnect(participant)
        self._schedule_presence()

    async def _greet(self, participant: Participant, outbox: Outbox, last_id: int | None) -> bool:
        """Send ``welcome``, or ``resumed`` and the missed events (then True)."""
        state = self.state
        base = {
            "you": participant.to_wire(),
            "roster": self._presence.roster_for(participant, joining=True),
            "online": self._presence.online_with(participant),
            "server_time_ms": now_ms(),
            "heartbeat_ms": self.settings.heartbeat_ms,
            "ice_servers": self.ice_servers(participant),
        }
        limit = self.settings.resume_max_events
        greeting = choose_greeting(last_id, state.last_id, self._recent_start(), limit)
        if greeting is Greeting.ASK_LOG_START:
            first_id = await self.store.first_id(self.room_id)
            greeting = choose_greeting(
                last_id, state.last_id, self._recent_start(), limit, first_id
            )
        missed: list[bytes] | None = None
        if greeting is not Greeting.WELCOME and last_id is not None:
            # None when an event in the range changed this participant's place: its RoomView
            # is of another place now, so it gets a fresh one.
            missed = await self._missed_frames(participant, last_id)
        if missed is None:
            welcome = {
                "t": "welcome",
                **base,
                "room": room_view(state, participant),
                "last_id": state.last_id,
                "resumed": False,
            }
            outbox.put(pack(welcome))
            return False
        outbox.put(
            pack(
                {
                    "t": "resumed",
                    **base,
                    "last_id": self.state.last_id,
                    "missed": len(missed),
                    "resumed": True,
                }
            )
        )
        for frame in missed:
            outbox.put(frame)
        tally = None if participant.is_staff else resume_tally(self.state)
        if tally is not None:
            place = self.state.breakout_of.get(participant.identity)
            tally = tally_for_place(tally, self.state, place)
        if tally is not None:
            outbox.put(pack(tally))
        return True

    def _recent_start(self) -> int:
        return self._recent[0][0].id if self._recent else self.state.last_id + 1

    async def _missed_frames(self, participant: Participant, last_id: int) -> list[bytes] | None:
        """Frames of the events after ``last_id`` up to the current state this viewer may see;
        None when one of them changed the viewer's place (then it resumes with a welcome)."""
        if last_id + 1 >= self._recent_start():
            pairs = [(r, f) for r, f in self._recent if r.id > last_id]
        else:
            records = await self.store.read(self.room_id, last_id, self.state.last_id - last_id)
            top = records[-1].id if records else last_id
            # Records another node delivered while the store was read are in the ring already.
            pairs = [(r, encode_event(r)) for r in records]
            pairs += [(r, f) for r, f in self._recent if r.id > top]
        identity = participant.identity
        for r, _ in pairs:
            changes = room_changes(r.event)
            if changes is None or identity in changes:
                return None
        place = self.state.breakout_of.get(identity)  # no missed event changed it
        large = not self._presence.students_see_everyone()
        return [
            f
            for r, f in pairs
            if resume_audience(r.event, audience_of(r.event), large=large).admits(
                participant, place=place
            )
        ]

    def _register(self, member: Member) -> None:
        p = member.participant
        self.members[member] = None
        self._everyone_cache = None
        self._by_identity.setdefault(p.identity, set()).add(member)
        member.place = self.state.breakout_of.get(p.identity)
        if p.is_staff:
            self._staff[member] = None
        else:
            self._by_place.setdefault(member.place, {})[member] = None
        self._presence.connect(p)
        self._schedule_presence()
        self.metrics.joins.inc()

    def remove(self, member: Member) -> None:
        """Forget a connection that closed."""
        if self.members.pop(member, 0) is None:
            self._everyone_cache = None
            p = member.participant
            self._staff.pop(member, None)
            self._unplace(member)
            peers = self._by_identity.get(p.identity)
            if peers is not None:
                peers.discard(member)
                if not peers:
                    del self._by_identity[p.identity]
            self._presence.disconnect(p)
            self._schedule_presence()
        if self.idle:
            self.on_idle(self)

    # -- commands: the batched write path --------------------------------------------------------

    def submit(
        self, member: Member, ref: int, command: Command, trace: Any = None
    ) -> asyncio.Future[tuple[Record, ...]]:
        """Queue one command for the next batch (:mod:`signaling.edge.batch`); the writer sends
        the sender its ack or error once the batch committed.

        The future is the command's records (empty when nothing changed); its exception is the
        RoomError the writer answered, or StoreUnavailable (nothing was appended; the writer
        sent nothing: the caller answers ``unavailable``). Commands of one member are decided in
        the order they were submitted. ``trace`` is the command's span, the parent of (or linked
        from) its batch's (:func:`signaling.tracing.start_command`).
        """
        return self._propose(Proposal(member.participant, command), member.outbox, ref, trace)

    def propose(self, actor: Participant, command: Command) -> asyncio.Future[tuple[Record, ...]]:
        """Queue ``command`` from ``actor``, who holds no connection (the admin API): decided and
        appended in the next batch like a member's; the future as :meth:`submit`'s."""
        return self._propose(Proposal(actor, command))

    def _propose(
        self,
        proposal: Proposal,
        outbox: Outbox | None = None,
        ref: int | None = None,
        trace: Any = None,
    ) -> asyncio.Future[tuple[Record, ...]]:
        """Queue ``proposal`` for the next batch; the future is its records once committed, or
        the RoomError / StoreUnavailable it came to. With ``outbox``, the writer also sends the
        ack or error frame (after the batch's events)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[tuple[Record, ...]] = loop.create_future()
        if self._closed:
            done.set_exception(StoreUnavailable(f"room {self.room_id} is unloading"))
            return done
        self._queue.append(_Queued(proposal, done, outbox, ref, trace))
        if self._writer is None:
            # Started on the next loop turn: what other connections read in this one joins it.
            self._writer = loop.create_task(self._write())
        return done

    async def _write(self) -> None:
        """Append the queued proposals, one batch at a time, until none is left."""
        try:
            while self._queue:
                n = batch_size(len(self._queue))
                batch = [self._queue.popleft() for _ in range(n)]
                batch = [q for q in batch if not q.done.done()]  # a waiter that went away
                if not batch:
                    continue
                async with self._lock:
                    try:
                        with tracing.batch([q.trace for q in batch], len(batch), self.room_id):
                            await self._commit(batch)
                    except StoreUnavailable as exc:
                        _fail(batch, exc)
                    except Exception as exc:
                        log.exception("room %s: a batch failed", self.room_id)
                        _fail(batch, exc)
                    except BaseException:
                        _fail(batch, StoreUnavailable(f"room {self.room_id} is unloading"))
                        raise
        finally:
            self._writer = None

    async def _commit(self, batch: list[_Queued]) -> None:
        """Decide ``batch`` against the state, append its events, answer each proposal.

        A conflict (another node appended first) folds what it appended and decides again; a
        batch that changes nothing is answered once the state is known to be current.
        """
        proposals = [q.proposal for q in batch]
        conflicts = 0
        while True:
            with tracing.span("liveclass.decide"):
                plan = plan_batch(self.state, proposals, now_ms())
            if not plan.records:
                if await self._fell_behind():
                    continue
                self._answer(batch, plan)
                return
            started = time.perf_counter()
            try:
                with tracing.span("liveclass.append", **{"liveclass.events": len(plan.records)}):
                    records = await self.store.append(
                        self.room_id,
                        [r.event for r in plan.records],
                        expected_last_id=plan.base_last_id,
                        ts=plan.records[0].ts,
                    )
            except AppendConflict as conflict:
                conflicts += 1
                self.metrics.append_conflicts.inc()
                await self._fold_conflict(conflict)
                delay = conflict_backoff_s(conflicts, self._rng)
                if delay:
                    await asyncio.sleep(delay)
                continue
            self.metrics.append_seconds.observe(time.perf_counter() - started)
            self.metrics.batch_commands.observe(len(batch))
            self.metrics.events_appended.inc(len(records))
            delivering = tracing.start("liveclass.deliver")
            if (
                plan.state is not None
                and self.state.last_id == plan.base_last_id
                and not any(_moves(r) for r in records)
            ):
                self.state = plan.state  # the plan's copy is folded through these records
                large = not self._presence.students_see_everyone()
                for record in records:
                    self._announce(record, large)
                if self._tally.pending:
                    self._schedule_presence()
                self._arm_expiry()
            else:
                # One record at a time, so each is fanned out to the places it was made in.
                self._deliver(records)
            self._answer(batch, plan)
            tracing.end(delivering)
            with tracing.span("liveclass.publish"):
                await self.bus.publish(self.room_id, records)
            self._snapshot_due(records)
            return

    async def _fell_behind(self) -> bool:
        """Whether another node appended past the state (then it is caught up): a decision that
        appends nothing (an error, a no-op) is answered only against a current state. With a
        store no other node writes, the state is always current."""
        if not self.store.shared:
            return False
        newer = await self.store.read(self.room_id, self.state.last_id, 1)
        if not newer:
            return False
        await self._catch_up()
        return True

    async def _fold_conflict(self, conflict: AppendConflict) -> None:
        """Fold what another node appended before this node's batch: the conflict's records
        when they continue the state, else read from the store."""
        fresh = continuation(self.state.last_id, conflict.records)
        if fresh:
            self._deliver(fresh)
        if not fresh or len(conflict.records) >= conflict.limit:
            await self._catch_up()

    def _answer(self, batch: list[_Queued], plan: Plan) -> None:
        """Each proposal's answer: the ack or error frame (after the batch's events), and its
        future."""
        for index, queued in enumerate(batch):
            outcome = plan.outcomes[index]
            error = outcome.error
            if error is not None:
                if queued.proposal.command is not None:  # a refused join is counted as one
                    self.metrics.command_errors.labels(error.code).inc()
                if queued.outbox is not None:
                    self.reply(queued.outbox, encode_error(error, queued.ref))
                if not queued.done.done():
                    queued.done.set_exception(error)
                    queued.done.exception()
                continue
            records = plan.records_of(index)
            if queued.outbox is not None and queued.ref is not None:
                self.reply(queued.outbox, encode_ack(queued.ref, [r.id for r in records]))
            if not queued.done.done():
                queued.done.set_result(records)

    # -- delivery ------------------------------------------------------------------------------

    # The bus (signaling.bus.RoomSubscriber).

    def deliver(self, records: Sequence[Record]) -> None:
        offer = self._follower.offer(self.state.last_id, records)
        if offer.step is Step.FOLD:
            self._deliver(offer.records)
        elif offer.step is Step.READ_GAP:
            self._fill_gap_soon()

    def missed(self) -> None:
        if self._follower.missed() is Step.READ_GAP:
            self._fill_gap_soon()

    def _fill_gap_soon(self) -> None:
        if self._gap_fill is None:
            self._gap_fill = asyncio.get_running_loop().create_task(self._fill_gap())
        else:
            self._fill_again = True  # the running fill may have read before this gap opened

    def presence(self, node: str, joined: Sequence[Participant], left: Sequence[str]) -> None:
        self._presence.remote_update(node, joined, left)
        self._schedule_presence()

    def roster(self, node: str, members: Sequence[Participant]) -> None:
        self._presence.remote_replace(node, members)
        self._schedule_presence()

    def _retry_gap_fill(self) -> None:
        if self._gap_fill is None and not self._closed:
            self.missed()

    async def _fill_gap(self) -> None:
        """Catch up from the store (under the hub's lock: one catch-up, or reload, at a time);
        a store failure is tried again after 0.25 s."""
        self.metrics.gap_fills.inc()
        try:
            while True:
                self._fill_again = False
                async with self._lock:
                    await self._catch_up()
                if not self._fill_again:
                    break
        except StoreUnavailable as exc:
            log.warning("room %s: gap fill failed: %s", self.room_id, exc)
            loop = asyncio.get_running_loop()
            loop.call_later(0.25, self._retry_gap_fill)
        finally:
            self._gap_fill = None

    async def _catch_up(self) -> None:
        """Read and deliver everything in the store past the state's last id."""
        while True:
            records = await self.store.read(self.room_id, self.state.last_id, 1000)
            fresh = continuation(self.state.last_id, records)
            if fresh is None:
                await self._reload()
                continue
            if not fresh:
                return
            self._deliver(fresh)

    async def _reload(self) -> None:
        """This node fell behind a trimmed log: fold the room again from its snapshot, and send
        every member ``reconnect`` so they resume (or get a fresh welcome) on the new state."""
        log.warning(
            "room %s: the log was trimmed past id %s; reloading from the snapshot",
            self.room_id,
            self.state.last_id,
        )
        self._follower.start_loading()
        try:
            self._flush()
            self._recent.clear()
            await self._load()
        finally:
            self._follower.finish_loading()  # the caller reads on from the new state
        self._arm_expiry()
        frame = encode_reconnect("slow_consumer", 0)
        for member in list(self.members):
            if not member.closing:
                member.closing = True
                asyncio.get_running_loop().create_task(
                    member.outbox.close(CloseCode.SLOW_CONSUMER, "fell behind", final_frame=frame)
                )

    def _snapshot_due(self, records: Sequence[Record]) -> None:
        """Save a snapshot when this append crossed a multiple of ``snapshot_every`` (so one
        node saves each), or when the log behind the last snapshot is that long already."""
        if self._saving is not None or self._closed:
            return
        first, last = (records[0].id, records[-1].id) if records else (1, 0)
        every = self.settings.snapshot_every
        if not snapshot_due(every, first, last, self.state.last_id, self._snapshot_id):
            return
        snapshot = Snapshot(self.state.last_id, msgpack.packb(state_to_data(self.state)))
        self._saving = asyncio.get_running_loop().create_task(self._save_snapshot(snapshot))

    async def _save_snapshot(self, snapshot: Snapshot) -> None:
        keep = max(1, self.settings.resume_max_events)
        try:
            stored = await self.store.save_snapshot(self.room_id, snapshot, keep=keep)
        except StoreUnavailable as exc:
            log.warning("room %s: snapshot %s not saved: %s", self.room_id, snapshot.last_id, exc)
        else:
            self._snapshot_id = max(self._snapshot_id, stored)
            self.metrics.snapshots_saved.inc()
        finally:
            self._saving = None

    def flush(self) -> None:
        """Write what this loop turn delivered, and the replies after it, now rather than at the
        end of the turn (a connection about to close sends its events and ack first)."""
        self._flush()

    def reply(self, outbox: Outbox, frame: bytes) -> None:
        """Send a member an answer (ack, error, pong) after the events delivered before it."""
        if self._batch:
            self._replies.append((outbox, frame))
        else:
            outbox.put(frame)

    def _deliver(self, records: Sequence[Record]) -> None:
        """Fold records into the state and queue each, encoded once, for the end of this turn."""
        large = not self._presence.students_see_everyone()
        for record in records:
            if record.id != self.state.last_id + 1:
                continue
            changes = room_changes(record.event)
            if changes is not None and not changes:
                evolve(self.state, record)
                self._announce(record, large)
                continue
            # It moves someone: what came before goes out to the places before it, then the
            # event, then each moved member's view of its new place.
            self._flush()
            evolve(self.state, record)
            self._announce(record, large)
            self._flush()
            self._move_members(record, changes)
        if self._tally.pending:
            self._schedule_presence()
        self._arm_expiry()

    def _announce(self, record: Record, large: bool) -> None:
        """Queue a folded record, encoded once, for the end of this turn; in a large room a vote
        goes to the staff and its voter only (students get it in a ``tally``)."""
        for listener in self.listeners:
            listener(record)
        frame = encode_event(record)
        self._recent.append((record, frame))
        if not self._batch:
            asyncio.get_running_loop().call_soon(self._flush)
        audience = self._tally.route(record.event, audience_of(record.event), large=large)
        self._batch.append(Outgoing(record, frame, wire_frame(frame), audience))

    def _flush(self) -> None:
        """Write this turn's events: one write per member, the same bytes for everyone when every
        event is for everyone (invariant 4), then the replies, then the closes events cause."""
        batch, self._batch = self._batch, []
        if not batch:
            return
        replies, self._replies = self._replies, []
        covered, self._covered = self._covered, {}
        places = self.state.breakout_of
        for member, frames, wire in plan_fanout(batch, self._recipients, covered, places):
            if len(frames) == 1:
                member.outbox.put(frames[0], wire)
            else:
                member.outbox.put_many(frames, wire)
        for outbox, frame in replies:
            outbox.put(frame)
        written_ms = time.time() * 1000.0
        observe = self.metrics.delivery_seconds.observe
        for out in batch:
            observe(max(0.0, written_ms - out.record.ts) / 1000.0)
            self._after(out.record)

    def _recipients(self, audience: Audience) -> tuple[Member, ...] | list[Member]:
        if audience.kind == "all":
            everyone = self._everyone_cache
            if everyone is None:
                everyone = self._everyone_cache = tuple(self.members)
            return everyone
        recipients = list(self._staff)
        if audience.kind == "room":
            recipients.extend(self._by_place.get(audience.room, ()))
            return recipients
        if audience.kind == "staff_and" and audience.identity is not None:
            recipients.extend(
                m for m in self._by_identity.get(audience.identity, ()) if m not in self._staff
            )
        return recipients

    def _unplace(self, member: Member) -> None:
        placed = self._by_place.get(member.place)
        if placed is not None:
            placed.pop(member, None)
            if not placed:
                del self._by_place[member.place]

    def _move_members(self, record: Record, changes: frozenset[str] | None) -> None:
        """After ``record`` (folded and written out) changed places: re-index every local member
        whose place it changed and send it a ``view`` of the room from its new place, covering
        the events through ``record.id`` (docs/protocol.md, "Changes of place")."""
        if changes is None:
            moved = list(self.members)
        else:
            moved = [m for i in changes for m in self._by_identity.get(i, ())]
        for member in moved:
            place = self.state.breakout_of.get(member.participant.identity)
            if place == member.place or member.closing:
                continue
            if not member.participant.is_staff:
                self._unplace(member)
                self._by_place.setdefault(place, {})[member] = None
            member.place = place
            view = room_view(self.state, member.participant)
            member.outbox.put(encode_view(record.id, view))
            self.metrics.views.inc()

    def _after(self, record: Record) -> None:
        """Close the connections an event ends: a removed participant's, or all at session end;
        and admit, turn away or close the waiting connections it concerns."""
        event = record.event
        if self.waiting:
            self._follow_waiting_room(record)
        if isinstance(event, ParticipantRemovedEvent):
            error: RoomError = ParticipantRemoved(f"you were removed: {event.reason}")
            targets = list(self._by_identity.get(event.identity, ()))
        elif isinstance(event, SessionEndedEvent):
            error = SessionEnded(f"the session ended: {event.reason}")
            targets = list(self.members)
        else:
            return
        frame = encode_error(error)
        code = error.close_code or CloseCode.FORBIDDEN
        for member in targets:
            if not member.closing:
                member.closing = True
                asyncio.get_running_loop().create_task(
                    member.outbox.close(code, error.code, final_frame=frame)
                )

    # -- the breakout timer ----------------------------------------------------------------------

    def _arm_expiry(self) -> None:
        """Keep one timer armed at the open round's ``breakout_ends_at`` (server clock), moved
        when the end moves. Every node with the room loaded arms one; the first proposal to
        commit closes the round and the others decide nothing (:class:`rooms.BreakoutExpire`)."""
        state = self.state
        ends_at = state.breakout_ends_at
        due = None if ends_at is None or self._closed else (state.breakout_round, ends_at)
        if due == self._expiry:
            return
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None
        self._expiry = due
        if due is not None:
            delay_s = max(0.0, (due[1] - now_ms()) / 1000)
            loop = asyncio.get_running_loop()
            self._expiry_timer = loop.call_later(delay_s, self._expire, due)

    def _expire(self, due: tuple[int, int]) -> None:
        """The timer fired: propose closing the round; a store failure tries again in 1 s."""
        self._expiry_timer = None
        if self._closed or self._expiry != due:
            return
        round_, ends_at = due
        done = self._propose(Proposal(BREAKOUT_TIMER, BreakoutExpire(round_, ends_at)))
        done.add_done_callback(functools.partial(self._expired, due))

    def _expired(self, due: tuple[int, int], done: asyncio.Future[tuple[Record, ...]]) -> None:
        if done.cancelled() or done.exception() is None or self._closed:
            return
        error = done.exception()
        log.warning("room %s: closing breakouts at their end failed: %s", self.room_id, error)
        if isinstance(error, StoreUnavailable) and self._expiry == due:
            self._expiry = None  # armed again below, from the state then
            asyncio.get_running_loop().call_later(_EXPIRY_RETRY_S, self._arm_expiry)

    # -- presence ------------------------------------------------------------------------------

    def _schedule_presence(self) -> None:
        if self._presence_timer is None and (
            self._presence.pending or self._presence.announcing or self._tally.pending
        ):
            loop = asyncio.get_running_loop()
            self._presence_timer = loop.call_later(
                self.settings.presence_interval_s, self._flush_presence
            )

    def _flush_presence(self) -> None:
        self._presence_timer = None
        self._flush_tally()
        if self._presence.announcing:
            joined, left = self._presence.take_announcement()
            task = asyncio.get_running_loop().create_task(
                self.bus.announce(self.room_id, joined, left)
            )
            task.add_done_callback(_log_failure)
        if not self._presence.pending:
            return
        changes = self._presence.take_changes()
        frames = presence_frames(changes, self._presence.students_see_everyone())
        staff = pack(frames["staff"])
        students = staff if frames["students"] is frames["staff"] else pack(frames["students"])
        staff_wire = wire_frame(staff)
        students_wire = staff_wire if students is staff else wire_frame(students)
        for member in self.members:
            if member.participant.is_staff:
                member.outbox.put(staff, staff_wire)
            else:
                member.outbox.put(students, students_wire)

    def _flush_tally(self) -> None:
        """Send every student one ``tally`` of the votes changed in this window, after the events
        it covers (docs/protocol.md, "Vote tallies")."""
        if not self._tally.pending:
            return
        self._flush()
        tally = self._tally.take(self.state)
        if tally is None:
            return
        # One frame per place: a student is told the counts of its place's questions only.
        for place, members in self._by_place.items():
            mine = tally_for_place(tally, self.state, place)
            if mine is None:
                continue
            frame = pack(mine)
            wire = wire_frame(frame)
            for member in members:
                member.outbox.put(frame, wire)


def _moves(record: Record) -> bool:
    """Whether ``record`` may change someone's place."""
    changes = room_changes(record.event)
    return changes is None or bool(changes)


def _thaw(room_id: str, snapshot: Snapshot) -> RoomState:
    """The state a stored snapshot holds.

    Raises:
        StoreUnavailable: the snapshot cannot be read (damaged, another version, another room).
    """
    try:
        state = state_from_data(msgpack.unpackb(snapshot.data))
    except (SnapshotError, ValueError, msgpack.UnpackException) as exc:
        raise StoreUnavailable(
            f"room {room_id}: the snapshot at {snapshot.last_id} cannot be read: {exc}"
        ) from exc
    if state.room_id != room_id or state.last_id != snapshot.last_id:
        raise StoreUnavailable(
            f"room {room_id}: the snapshot at {snapshot.last_id} is of room {state.room_id!r} "
            f"at {state.last_id}"
        )
    return state


def _ignore_outcome(done: asyncio.Future[tuple[Record, ...]]) -> None:
    """Retrieve a background proposal's outcome (a failure there changes nothing)."""
    if not done.cancelled():
        done.exception()


def _fail(batch: Sequence[_Queued], error: Exception) -> None:
    """Answer every proposal of a batch that did not commit with ``error`` (its waiter raises
    it: ``StoreUnavailable`` becomes the ``unavailable`` error frame)."""
    for queued in batch:
        if not queued.done.done():
            queued.done.set_exception(error)
            queued.done.exception()  # retrieved here: its waiter re-raises it


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("presence announcement failed: %s", task.exception())
