"""RoomHub: one room on one signaling node: its state, its local members, and fan-out.

The hub is the only place a room's commands are decided on this node. One asyncio lock per room
serializes decide -> append -> deliver, so every member sees one order (invariant 2), and an
acknowledgement goes out only after the store committed (invariant 1). Each event is encoded once
and the same bytes go to every member allowed to see it (invariant 4).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from rooms import (
    Audience,
    CloseCode,
    Command,
    Participant,
    ParticipantRemoved,
    ParticipantRemovedEvent,
    Record,
    RoomError,
    RoomState,
    SessionEnded,
    SessionEndedEvent,
    admit,
    audience_of,
    decide,
    evolve,
    new_room,
    room_view,
)
from rooms.snapshot import SnapshotError, state_from_data, state_to_data

from .bus import Bus
from .codec import encode_ack, encode_error, encode_event, encode_reconnect, pack
from .metrics import Metrics
from .outbox import Outbox, wire_frame
from .presence import Presence, presence_frames
from .store import AppendConflict, EventStore, Snapshot, StoreUnavailable
from .tally import VoteTally, resume_audience, resume_tally

log = logging.getLogger(__name__)

_MAX_APPEND_ATTEMPTS = 8
_MAX_LOAD_ATTEMPTS = 5


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


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """One delivered event waiting for the end of the loop turn: encoded once for everyone."""

    record: Record
    frame: bytes
    wire: bytes
    audience: Audience


@dataclass(eq=False, slots=True)
class Member:
    """One joined connection."""

    participant: Participant
    outbox: Outbox
    closing: bool = False


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
    _by_identity: dict[str, set[Member]] = field(default_factory=dict, init=False)
    _staff: dict[Member, None] = field(default_factory=dict, init=False)
    _everyone_cache: tuple[Member, ...] | None = field(default=None, init=False)
    # Write coalescing: what this loop turn delivered, flushed once at its end.
    _batch: list[_Outgoing] = field(default_factory=list, init=False)
    _replies: list[tuple[Outbox, bytes]] = field(default_factory=list, init=False)
    _covered: dict[Member, int] = field(default_factory=dict, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _recent: deque[tuple[Record, bytes]] = field(init=False)
    _presence: Presence = field(init=False)
    _presence_timer: asyncio.TimerHandle | None = field(default=None, init=False)
    #: Large rooms: the votes students get as one ``tally`` per presence interval.
    _tally: VoteTally = field(default_factory=VoteTally, init=False)
    _gap_fill: asyncio.Task[None] | None = field(default=None, init=False)
    _loaded: bool = field(default=False, init=False)
    _missed_while_loading: bool = field(default=False, init=False)
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
        self._loaded = True
        self._snapshot_due(())
        if self._missed_while_loading:
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
        if self._saving is not None:
            await asyncio.wait([self._saving], timeout=2.0)
        await self.bus.unsubscribe(self.room_id)
        if self._presence_timer is not None:
            self._presence_timer.cancel()

    def watch(self, listener: Callable[[Record], None]) -> None:
        """Call ``listener(record)`` for each record folded from now on; keeps the hub loaded."""
        self.listeners.append(listener)

    def unwatch(self, listener: Callable[[Record], None]) -> None:
        self.listeners.remove(listener)
        if not self.members and not self.listeners:
            self.on_idle(self)

    @property
    def idle(self) -> bool:
        """Nobody here uses the room: no member, no listener."""
        return not self.members and not self.listeners

    # -- joining and leaving -------------------------------------------------------------------

    async def join(self, participant: Participant, outbox: Outbox, last_id: int | None) -> Member:
        """Admit a connection: append its first-join event, send welcome or resume, register it.

        Raises:
            JoinRefused: removed, room locked, session ended.
        """
        async with self._lock:
            self._flush()  # members already here get what is pending before anyone new joins
            try:
                await self._admit(participant)
            except RoomError as exc:
                raise JoinRefused(exc, exc.close_code or CloseCode.FORBIDDEN) from exc
            await self._greet(participant, outbox, last_id)
            member = Member(participant, outbox)
            if self._batch:
                # Its greeting already covers what is pending; the flush must not repeat it.
                self._covered[member] = self.state.last_id
            self._register(member)
        return member

    # -- whiteboard connections ------------------------------------------------------------------

    async def admit(self, participant: Participant) -> None:
        """Admit a participant who opens one of the room's whiteboards: the first connection of
        an identity appends ``participant.joined``, as a join does (no welcome, no member).

        Raises:
            RoomError: removed, room locked, session ended (:func:`rooms.admit`).
        """
        async with self._lock:
            await self._admit(participant)

    async def _admit(self, participant: Participant) -> None:
        """Append ``participant``'s first-join event, if it has one (the hub's lock is held);
        tried again when another node appended meanwhile. Raises RoomError (:func:`rooms.admit`)."""
        while True:
            events = admit(self.state, participant)
            if not events or await self._append(events) is not None:
                return

    def attach(self, participant: Participant) -> None:
        """A whiteboard connection of ``participant`` opened: it is a presence, as a member is
        (an identity with several connections is online once)."""
        self._presence.connect(participant)
        self._schedule_presence()

    def detach(self, participant: Participant) -> None:
        """A whiteboard connection of ``participant`` closed."""
        self._presence.disconnect(participant)
        self._schedule_presence()

    async def _greet(self, participant: Participant, outbox: Outbox, last_id: int | None) -> None:
        state = self.state
        base = {
            "you": participant.to_wire(),
            "roster": self._presence.roster_for(participant, joining=True),
            "online": self._presence.online_with(participant),
            "server_time_ms": now_ms(),
            "heartbeat_ms": self.settings.heartbeat_ms,
            "ice_servers": self.ice_servers(participant),
        }
        resumable = (
            last_id is not None
            and 0 <= last_id <= state.last_id
            and state.last_id - last_id <= self.settings.resume_max_events
        )
        if resumable and last_id is not None and last_id + 1 < self._recent_start():
            resumable = await self.store.first_id(self.room_id) <= last_id + 1
        missed: list[bytes] = []
        if resumable and last_id is not None:
            missed = await self._missed_frames(participant, last_id)
        if not resumable:
            welcome = {
                "t": "welcome",
                **base,
                "room": room_view(state, participant),
                "last_id": state.last_id,
                "resumed": False,
            }
            outbox.put(pack(welcome))
            return
        self.metrics.resumes.inc()
        outbox.put(
            pack(
                {
                    "t": "resumed",
                    **base,
                    "last_id": state.last_id,
                    "missed": len(missed),
                    "resumed": True,
                }
            )
        )
        for frame in missed:
            outbox.put(frame)
        tally = None if participant.is_staff else resume_tally(self.state)
        if tally is not None:
            outbox.put(pack(tally))

    def _recent_start(self) -> int:
        return self._recent[0][0].id if self._recent else self.state.last_id + 1

    async def _missed_frames(self, participant: Participant, last_id: int) -> list[bytes]:
        """Frames of the events after ``last_id`` up to the current state this viewer may see."""
        if last_id + 1 >= self._recent_start():
            pairs = [(r, f) for r, f in self._recent if r.id > last_id]
        else:
            records = await self.store.read(self.room_id, last_id, self.state.last_id - last_id)
            top = records[-1].id if records else last_id
            # Records another node delivered while the store was read are in the ring already.
            pairs = [(r, encode_event(r)) for r in records]
            pairs += [(r, f) for r, f in self._recent if r.id > top]
        large = not self._presence.students_see_everyone()
        return [
            f
            for r, f in pairs
            if resume_audience(r.event, audience_of(r.event), large=large).admits(participant)
        ]

    def _register(self, member: Member) -> None:
        p = member.participant
        self.members[member] = None
        self._everyone_cache = None
        self._by_identity.setdefault(p.identity, set()).add(member)
        if p.is_staff:
            self._staff[member] = None
        self._presence.connect(p)
        self._schedule_presence()
        self.metrics.joins.inc()

    def remove(self, member: Member) -> None:
        """Forget a connection that closed."""
        if self.members.pop(member, 0) is None:
            self._everyone_cache = None
            p = member.participant
            self._staff.pop(member, None)
            peers = self._by_identity.get(p.identity)
            if peers is not None:
                peers.discard(member)
                if not peers:
                    del self._by_identity[p.identity]
            self._presence.disconnect(p)
            self._schedule_presence()
        if self.idle:
            self.on_idle(self)

    # -- commands ------------------------------------------------------------------------------

    async def execute(self, member: Member, ref: int, command: Command) -> list[int]:
        """Decide, append and deliver one command; ack or error to the sender.

        Returns the appended event ids (empty on error or when nothing changed).
        """
        outbox = member.outbox
        async with self._lock:
            while True:
                try:
                    events = decide(self.state, member.participant, command)
                except RoomError as exc:
                    self.metrics.command_errors.labels(exc.code).inc()
                    self.reply(outbox, encode_error(exc, ref))
                    return []
                if not events:
                    self.reply(outbox, encode_ack(ref, []))
                    return []
                records = await self._append(events)
                if records is not None:
                    ids = [r.id for r in records]
                    self.reply(outbox, encode_ack(ref, ids))
                    return ids

    async def _append(self, events: Sequence[Any]) -> list[Record] | None:
        """Compare-and-append at the state's last id, then deliver; None after a conflict."""
        started = time.perf_counter()
        try:
            records = await self.store.append(
                self.room_id, events, expected_last_id=self.state.last_id, ts=now_ms()
            )
        except AppendConflict:
            await self._catch_up()
            return None
        self.metrics.append_seconds.observe(time.perf_counter() - started)
        self.metrics.events_appended.inc(len(records))
        self._deliver(records)
        await self.bus.publish(self.room_id, records)
        self._snapshot_due(records)
        return records

    # -- delivery ------------------------------------------------------------------------------

    # The bus (signaling.bus.RoomSubscriber).

    def deliver(self, records: Sequence[Record]) -> None:
        if not self._loaded:
            self._missed_while_loading = True
            return
        fresh = [r for r in records if r.id > self.state.last_id]
        if not fresh:
            return
        if fresh[0].id != self.state.last_id + 1:
            self.missed()
            return
        self._deliver(fresh)

    def missed(self) -> None:
        if not self._loaded:
            self._missed_while_loading = True
            return
        if self._gap_fill is None:
            self._gap_fill = asyncio.get_running_loop().create_task(self._fill_gap())

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
        """Catch up from the store; a store failure leaves the gap for the next wake-up."""
        try:
            await self._catch_up()
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
            records = [r for r in records if r.id > self.state.last_id]
            if not records:
                return
            if records[0].id != self.state.last_id + 1:
                await self._reload()
                continue
            self._deliver(records)

    async def _reload(self) -> None:
        """This node fell behind a trimmed log: fold the room again from its snapshot, and send
        every member ``reconnect`` so they resume (or get a fresh welcome) on the new state."""
        log.warning(
            "room %s: the log was trimmed past id %s; reloading from the snapshot",
            self.room_id,
            self.state.last_id,
        )
        self._loaded = False
        try:
            self._flush()
            self._recent.clear()
            await self._load()
        finally:
            self._loaded = True
            self._missed_while_loading = False  # the caller reads on from the new state
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
        every = self.settings.snapshot_every
        if every <= 0 or self._saving is not None or self._closed:
            return
        crossed = bool(records) and records[-1].id // every > (records[0].id - 1) // every
        if not crossed and self.state.last_id - self._snapshot_id < every:
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
            evolve(self.state, record)
            for listener in self.listeners:
                listener(record)
            frame = encode_event(record)
            self._recent.append((record, frame))
            if not self._batch:
                asyncio.get_running_loop().call_soon(self._flush)
            audience = self._tally.route(record.event, audience_of(record.event), large=large)
            self._batch.append(_Outgoing(record, frame, wire_frame(frame), audience))
        if self._tally.pending:
            self._schedule_presence()

    def _flush(self) -> None:
        """Write this turn's events: one write per member, the same bytes for everyone when every
        event is for everyone (invariant 4), then the replies, then the closes events cause."""
        batch, self._batch = self._batch, []
        if not batch:
            return
        replies, self._replies = self._replies, []
        covered, self._covered = self._covered, {}
        if len(batch) == 1:
            out = batch[0]
            for member in self._recipients(out.audience):
                if not covered or covered.get(member, 0) < out.record.id:
                    member.outbox.put(out.frame, out.wire)
        elif all(out.audience.kind == "all" for out in batch):
            frames = [out.frame for out in batch]
            wire = b"".join(out.wire for out in batch)
            for member in self._recipients(Audience.ALL):
                if covered and member in covered:
                    self._put_admitted(member, batch, covered[member])
                else:
                    member.outbox.put_many(frames, wire)
        else:
            self._put_mixed(batch, covered)
        for outbox, frame in replies:
            outbox.put(frame)
        for out in batch:
            self._after(out.record)

    def _put_mixed(self, batch: Sequence[_Outgoing], covered: dict[Member, int]) -> None:
        """Write a batch some of whose events are for some members only. The students none of
        them names (most students, in a large room's vote storm) share one write of the events
        for everyone; a student named gets those and its own, in order; staff pick theirs."""
        shared = [out for out in batch if out.audience.kind == "all"]
        frames = [out.frame for out in shared]
        wire = b"".join(out.wire for out in shared)
        own: dict[str | None, list[_Outgoing]] = {}
        for out in batch:
            if out.audience.kind == "staff_and":
                own.setdefault(out.audience.identity, []).append(out)
        for member in self._recipients(Audience.ALL):
            p = member.participant
            if p.is_staff or member in covered:
                self._put_admitted(member, batch, covered.get(member, 0))
            elif p.identity in own:
                mine = sorted([*shared, *own[p.identity]], key=lambda out: out.record.id)
                member.outbox.put_many([o.frame for o in mine], b"".join(o.wire for o in mine))
            elif frames:
                member.outbox.put_many(frames, wire)

    @staticmethod
    def _put_admitted(member: Member, batch: Sequence[_Outgoing], after_id: int) -> None:
        mine = [
            out
            for out in batch
            if out.record.id > after_id and out.audience.admits(member.participant)
        ]
        if mine:
            member.outbox.put_many([o.frame for o in mine], b"".join(o.wire for o in mine))

    def _recipients(self, audience: Audience) -> tuple[Member, ...] | list[Member]:
        if audience.kind == "all":
            everyone = self._everyone_cache
            if everyone is None:
                everyone = self._everyone_cache = tuple(self.members)
            return everyone
        recipients = list(self._staff)
        if audience.kind == "staff_and" and audience.identity is not None:
            recipients.extend(
                m for m in self._by_identity.get(audience.identity, ()) if m not in self._staff
            )
        return recipients

    def _after(self, record: Record) -> None:
        """Close the connections an event ends: a removed participant's, or all at session end."""
        event = record.event
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
        frame = pack(tally)
        wire = wire_frame(frame)
        for member in self.members:
            if not member.participant.is_staff:
                member.outbox.put(frame, wire)


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


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("presence announcement failed: %s", task.exception())
