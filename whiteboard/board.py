"""One whiteboard: a Yjs document on pycrdt, its connections (peers) and its awareness.

The lifecycle of a connection, in the order it happens (see docs/whiteboard.md):

1. ``join``: the peer is sent sync step 1 and every current awareness state.
2. ``receive``: step 1 is answered with step 2; step 2 and updates are checked (permission, size)
   and applied to the document (validation); the updates that arrived in one loop turn are
   appended to the store in one commit (group commit), and only then relayed to every other peer;
   awareness is rate-limited, applied and relayed to everyone.
3. ``leave``: the awareness clients the peer owned are removed for everyone at once.

Commits, step-2 answers, clears, snapshots and compaction take the board's lock and commit what
is pending first, so a step 2 only ever holds updates the store has committed (a SIGKILL loses
nothing anyone received).

pycrdt (Yrs) leaves out of ``get_update`` the structs it holds as pending (their dependencies
have not arrived); Yjs includes them. The board keeps such updates (``_unintegrated``) and merges
them into every step 2 and compaction, so nothing a client sent is dropped by the server.

With several nodes (scale-out) the store numbers every update (``seq``) and announces each append
through the board feed (:mod:`whiteboard.feed`); a board applies and relays to its own peers the
updates it has not seen, reads the store for numbers it is missing, and compacts only through the
highest number below which it has every update. Which updates those are, and when to read the
store, is decided without I/O by :class:`whiteboard.sequence.BoardSequence`; when to compact, by
:class:`whiteboard.compaction.CompactionSchedule`. The board feeds them events and carries out
what they answer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pycrdt import Array, Doc, get_update, merge_updates

from rooms import CloseCode, Participant, Record, RoomState, write_refusal
from rooms.boards import REFUSED_LOCKED

from .awareness import AwarenessTable, bind_user
from .compaction import CompactionSchedule
from .errors import BadMessage, BadUpdate, MessageTooLarge, StoreFailed
from .protocol import (
    AWARENESS,
    EMPTY_UPDATE,
    AwarenessEntry,
    AwarenessUpdate,
    MalformedMessage,
    PermissionDenied,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    TooManyEntries,
    encode_awareness,
    encode_permission_denied,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
    message_type,
    parse,
)
from .sequence import GAP_CHECK_S, Actions, BoardSequence
from .settings import WhiteboardSettings
from .store import BoardStore, BoardStoreUnavailable

log = logging.getLogger(__name__)

#: The root holding the board's records (docs/whiteboard.md); a clear deletes all of it.
RECORDS = "records"
#: How long a board's worker lease (compaction, clear, snapshot) holds if its holder dies (ms).
WORKER_LEASE_MS = 10_000

DENIED_LOCKED = encode_permission_denied(REFUSED_LOCKED)
DENIED_FULL = encode_permission_denied("the board is full")


@dataclass(slots=True)
class BoardCounts:
    """What a node's boards did, for its metrics (``liveclass_board_updates_total``,
    ``liveclass_board_compactions_total``)."""

    updates: int = 0
    compactions: int = 0


class Sender(Protocol):
    """The send side of one connection (``signaling.Outbox``)."""

    closed: bool

    def put(self, frame: bytes, wire: bytes | None = None) -> bool: ...

    def put_many(self, frames: list[bytes], wire: bytes) -> bool: ...

    async def close(
        self, code: int, reason: str, *, final_frame: bytes | None, timeout: float = 2.0
    ) -> None: ...


class RateLimit(Protocol):
    def take(self) -> int:
        """Spend a token: 0, or the milliseconds until one is available."""
        ...


class RoomFeed(Protocol):
    """A room's state, kept current, its new records, and its presence (``signaling.RoomHub``)."""

    state: RoomState

    def watch(self, listener: Callable[[Record], None]) -> None: ...

    def unwatch(self, listener: Callable[[Record], None]) -> None: ...

    async def admit(self, participant: Participant) -> None:
        """Append the first-join event of a participant new to the room; raises RoomError."""
        ...

    def attach(self, participant: Participant) -> None:
        """Count a board connection of ``participant`` as online."""
        ...

    def detach(self, participant: Participant) -> None: ...


@dataclass(eq=False)
class Peer:
    """One connection on one board."""

    participant: Participant
    sender: Sender
    awareness_limit: RateLimit
    board: Board | None = None
    #: Awareness entries held back by the rate limit: the newest per client id.
    held_awareness: dict[int, AwarenessEntry] = field(default_factory=dict)
    awareness_timer: asyncio.TimerHandle | None = None
    #: The board refused (or ignored) an update from this connection already.
    refused_before: bool = False


class Board:
    """A loaded board. Created by :class:`whiteboard.WhiteboardService`, which owns its lifetime.

    Args:
        wire: builds the WebSocket frame for a message once, for every recipient.
        on_failure: called when the store failed and the board must be dropped.
    """

    def __init__(
        self,
        room_id: str,
        name: str,
        store: BoardStore,
        room: RoomFeed,
        settings: WhiteboardSettings,
        wire: Callable[[bytes], bytes],
        on_failure: Callable[[Board], None],
        counts: BoardCounts | None = None,
    ) -> None:
        self.room_id = room_id
        self.counts = counts or BoardCounts()
        self.name = name
        self.store = store
        self.room = room
        self.settings = settings
        self._wire = wire
        self._on_failure = on_failure
        self.doc: Doc[Any] = Doc()
        self.peers: dict[Peer, None] = {}
        self.awareness = AwarenessTable(settings.max_awareness_clients)
        self.marks: dict[str, int] = {}
        #: Which numbered updates the document holds, and what to do about the others.
        self.sequence = BoardSequence()
        #: The board's size, and when to compact it.
        self.growth = CompactionSchedule(settings.compact_updates, settings.compact_bytes)
        self._gap_check: asyncio.TimerHandle | None = None
        self._filling: asyncio.Task[None] | None = None
        #: This board's name as a holder of the board's worker lease (compaction, clears).
        self._worker = uuid.uuid4().hex
        self._unintegrated: list[bytes] = []
        self._lock = asyncio.Lock()
        #: Applied, not yet committed: (sender, update, received message or None).
        self._pending: list[tuple[Peer, bytes, bytes | None]] = []
        self._committer: asyncio.Task[None] | None = None
        self._batch: list[tuple[Peer | None, bytes, bytes]] = []
        self._compaction: asyncio.Task[None] | None = None

    # -- loading -------------------------------------------------------------------------------

    async def load(self) -> None:
        """Read the board from the store into a fresh document.

        Raises:
            BoardStoreUnavailable: the store failed.
        """
        stored = await self.store.load(self.room_id, self.name)
        doc: Doc[Any] = Doc()
        unintegrated: list[bytes] = []
        for update in stored.updates:
            try:
                doc.apply_update(update)
            except ValueError:
                log.error("board %s/%s: a stored update does not apply", self.room_id, self.name)
                continue
            unintegrated.append(update)
            unintegrated = _not_covered(unintegrated, doc)
        self.doc = doc
        self._unintegrated = unintegrated
        self.marks = dict(stored.marks)
        self.growth.loaded(stored.size, [len(u) for u in stored.updates])
        self._follow(self.sequence.loaded(stored.last_seq))

    # -- connections ---------------------------------------------------------------------------

    def join(self, peer: Peer) -> None:
        """Register ``peer`` and send it sync step 1 and the present awareness states."""
        peer.board = self
        self.peers[peer] = None
        peer.sender.put(encode_sync_step1(self.doc.get_state()))
        present = self.awareness.present()
        if present:
            peer.sender.put(encode_awareness(present))

    def leave(self, peer: Peer) -> None:
        """Forget ``peer`` and remove its awareness clients for everyone else."""
        if self.peers.pop(peer, 0) is None:
            if peer.awareness_timer is not None:
                peer.awareness_timer.cancel()
            removals = self.awareness.drop(peer)
            if removals:
                self._relay(encode_awareness(removals), None)

    async def receive(self, peer: Peer, data: bytes) -> None:
        """Handle one message from ``peer``.

        Raises:
            MessageTooLarge: over ``max_message_bytes`` (awareness: ``max_awareness_bytes``).
            BadMessage: not one well-formed message, or a client sent an auth message.
            BadUpdate: an update pycrdt cannot apply (the board is unchanged).
            StoreFailed: the store failed (the board is reloaded by the service).
        """
        limits = self.settings
        if len(data) > limits.max_message_bytes:
            raise MessageTooLarge(f"messages are at most {limits.max_message_bytes} bytes")
        try:
            # An awareness message's size is checked before it is parsed (no entry allocated).
            if len(data) > limits.max_awareness_bytes and message_type(data) == AWARENESS:
                raise MessageTooLarge(
                    f"awareness messages are at most {limits.max_awareness_bytes} bytes"
                )
            message = parse(data, max_awareness_entries=limits.max_awareness_entries)
        except TooManyEntries as exc:
            raise MessageTooLarge(str(exc)) from exc
        except MalformedMessage as exc:
            raise BadMessage(str(exc)) from exc
        match message:
            case SyncUpdate(update=update):
                await self._write(peer, update, data)
            case SyncStep2(update=update):
                await self._write(peer, update, None)
            case SyncStep1(state_vector=state_vector):
                await self._answer_step1(peer, state_vector)
            case AwarenessUpdate():
                self._receive_awareness(peer, message)
            case QueryAwareness():
                present = self.awareness.present()
                if present:
                    peer.sender.put(encode_awareness(present))
            case PermissionDenied():
                raise BadMessage("auth messages go from the server to clients")

    # -- sync ----------------------------------------------------------------------------------

    async def _answer_step1(self, peer: Peer, state_vector: bytes) -> None:
        async with self._lock:
            await self._commit_pending()
            try:
                update = self.doc.get_update(state_vector)
            except ValueError as exc:
                raise BadMessage("sync step 1 holds no state vector pycrdt can read") from exc
            if self._unintegrated:
                update = merge_updates(update, *self._unintegrated)
        peer.sender.put(encode_sync_step2(update))

    def write_refusal(self, participant: Participant) -> bytes | None:
        """The permission-denied message for a write by ``participant`` now, None when allowed
        (:func:`rooms.write_refusal`: a lock, or a student's board outside their room)."""
        reason = write_refusal(self.room.state, participant, self.name)
        if reason is None:
            return None
        return DENIED_LOCKED if reason == REFUSED_LOCKED else encode_permission_denied(reason)

    async def _write(self, peer: Peer, update: bytes, message: bytes | None) -> None:
        """Check and apply one update, and queue it for the turn's commit, after which it is
        relayed (``message``: its received bytes when they are already an update message, relayed
        as they are)."""
        if update == EMPTY_UPDATE:
            return
        denied = self.write_refusal(peer.participant)
        if denied is not None:
            # Only a connection's first refused update gets the (O(board)) no-op check: that is
            # the resync of a returning client; checking every update would let one client make
            # the server copy the board over and over.
            first, peer.refused_before = not peer.refused_before, True
            if not (first and self._adds_nothing(update)):
                peer.sender.put(denied)
            return
        max_bytes = self.settings.max_board_bytes
        if not self.growth.fits(len(update), max_bytes):
            if self.growth.updates_since or self._pending:
                await self.compact()  # the log may be up to twice the board; measure the board
            if not self.growth.fits(len(update), max_bytes):
                peer.sender.put(DENIED_FULL)
                return
        if self.failed:
            raise StoreFailed("the board is reloading; reconnect")
        self._apply(update)
        self.growth.written(len(update))
        self._pending.append((peer, update, message))
        if self._committer is None:
            self._committer = asyncio.get_running_loop().create_task(self._commit())

    async def _commit(self) -> None:
        try:
            async with self._lock:
                await self._commit_pending()
        finally:
            self._committer = None

    async def _commit_pending(self) -> None:
        """Append every pending update in one commit, then relay them (the lock is held). A
        store failure drops the board: its document holds updates the store does not."""
        while self._pending and not self.failed:
            batch, self._pending = self._pending, []
            updates = [update for _, update, _ in batch]
            try:
                last = await self.store.append(self.room_id, self.name, updates)
            except BoardStoreUnavailable as exc:
                self._fail(exc)
                return
            self.sequence.appended(last - len(updates) + 1, len(updates))
            self.growth.committed(len(batch), sum(len(u) for u in updates))
            self.counts.updates += len(batch)
            for peer, update, message in batch:
                self._relay(message if message is not None else encode_update(update), peer)
        self._maybe_compact()

    def _adds_nothing(self, update: bytes) -> bool:
        """True when applying ``update`` would not change the board. A Yjs client's step 2 always
        carries its whole delete set, so a read-only client reconnecting to a board that has seen
        deletions sends a non-empty update that changes nothing: it is ignored, not refused."""
        try:
            if get_update(update, self.doc.get_state())[:1] != b"\x00":
                return False  # new structs
            scratch: Doc[Any] = Doc()
            scratch.apply_update(self.state_update())
            before = scratch.get_update()
            scratch.apply_update(update)
            return scratch.get_update() == before
        except ValueError:
            return False

    def _apply(self, update: bytes) -> None:
        try:
            self.doc.apply_update(update)
        except ValueError as exc:
            raise BadUpdate(f"pycrdt cannot apply the update: {exc}"[:120]) from exc
        except BaseException as exc:
            # A Rust panic inside Yrs (pyo3's PanicException is a BaseException): the document
            # may be half-changed, so the board is dropped and reloaded from the store.
            if type(exc).__name__ != "PanicException":
                raise
            self._fail(exc)
            raise BadUpdate("pycrdt cannot apply the update") from exc
        self._unintegrated.append(update)
        self._unintegrated = _not_covered(self._unintegrated, self.doc)

    def state_update(self) -> bytes:
        """The whole board as one update (pending structs included)."""
        update = self.doc.get_update()
        if self._unintegrated:
            update = merge_updates(update, *self._unintegrated)
        return update

    # -- other nodes' updates (whiteboard.feed) -------------------------------------------------

    def updates(self, first_seq: int, updates: Sequence[bytes]) -> None:
        """Apply and relay the updates of an append this board has not seen (another node's)."""
        self._follow(self.sequence.announced(first_seq, updates))

    def resubscribed(self) -> None:
        self._follow(self.sequence.resubscribed())

    def _follow(self, actions: Actions) -> None:
        """Carry out what the sequence answered (a reload only comes up in a fill: there)."""
        for _, update in actions.take:
            self._take_remote(update)
        loop = asyncio.get_running_loop()
        if actions.arm_gap_timer:
            self._gap_check = loop.call_later(GAP_CHECK_S, self._check_gaps)
        if actions.fill:
            self._filling = loop.create_task(self._fill_from_store())

    def _take_remote(self, update: bytes) -> None:
        try:
            self._apply(update)
        except BadUpdate as exc:  # another node applied it; this document cannot
            log.error("board %s/%s: an update does not apply: %s", self.room_id, self.name, exc)
            return
        self.growth.took(len(update))
        self._relay(encode_update(update), None)

    def _check_gaps(self) -> None:
        self._gap_check = None
        self._follow(self.sequence.gap_check_due())

    async def _fill_from_store(self) -> None:
        """Read what this board is missing; reload from the store when it compacted past it."""
        try:
            missing = await self.store.read(self.room_id, self.name, self.sequence.last_seq)
            actions = self.sequence.filled(missing)
            if actions.reload:
                self.sequence.reloaded(await self._catch_up_with_store())
            else:
                self._follow(actions)
        except BoardStoreUnavailable as exc:
            log.warning("board %s/%s: gap fill failed: %s", self.room_id, self.name, exc)
            self._follow(self.sequence.fill_failed())
        finally:
            self.sequence.fill_ended()
            self._filling = None

    async def _catch_up_with_store(self) -> int:
        """Apply the whole board as stored and relay what it changed; returns its last seq."""
        stored = await self.store.load(self.room_id, self.name)
        before = self.doc.get_state()
        for update in stored.updates:
            try:
                self._apply(update)
            except BadUpdate:
                continue
        diff = self.doc.get_update(before)
        if diff != EMPTY_UPDATE:
            self._relay(encode_update(diff), None)
        self.growth.reloaded(stored.size)
        return stored.last_seq

    # -- awareness -----------------------------------------------------------------------------

    def _receive_awareness(self, peer: Peer, message: AwarenessUpdate) -> None:
        wait_ms = peer.awareness_limit.take()
        if wait_ms or peer.held_awareness:
            # Only entries the peer could own are held, at most its quota of client ids: what
            # others' clients (a y-websocket client echoes them) or a flood of ids would fill.
            held, awareness = peer.held_awareness, self.awareness
            for entry in message.entries:
                cid = entry.client_id
                if (cid in held or len(held) < awareness.max_clients) and awareness.may_take(
                    peer, cid
                ):
                    held[cid] = entry
            if peer.awareness_timer is None:
                peer.awareness_timer = asyncio.get_running_loop().call_later(
                    max(wait_ms, 1) / 1000, self._release_awareness, peer
                )
            return
        self._take_awareness(peer, message.entries)

    def _release_awareness(self, peer: Peer) -> None:
        peer.awareness_timer = None
        if peer not in self.peers or not peer.held_awareness:
            return
        wait_ms = peer.awareness_limit.take()
        if wait_ms:
            peer.awareness_timer = asyncio.get_running_loop().call_later(
                wait_ms / 1000, self._release_awareness, peer
            )
            return
        entries = tuple(peer.held_awareness.values())
        peer.held_awareness.clear()
        self._take_awareness(peer, entries)

    def _take_awareness(self, peer: Peer, entries: tuple[AwarenessEntry, ...]) -> None:
        """Apply ``entries`` with the user bound to the peer's participant; relay what was taken
        (re-encoded: the states may have been rewritten)."""
        who = peer.participant
        taken = self.awareness.apply(
            peer, entries, functools.partial(bind_user, identity=who.identity, name=who.name)
        )
        if taken:
            self._relay(encode_awareness(taken), None)

    # -- fan-out -------------------------------------------------------------------------------

    def _relay(self, frame: bytes, origin: Peer | None) -> None:
        """Send ``frame`` to every peer but ``origin`` (None: to everyone) at the end of this loop
        turn; a turn's messages go to each peer in one write, each message framed once."""
        if not self._batch:
            asyncio.get_running_loop().call_soon(self._flush)
        self._batch.append((origin, frame, self._wire(frame)))

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        if len(batch) == 1:
            origin, frame, wire = batch[0]
            for peer in self.peers:
                if peer is not origin:
                    peer.sender.put(frame, wire)
            return
        origins = {origin for origin, _, _ in batch}
        joined: dict[Peer | None, tuple[list[bytes], bytes]] = {}
        for peer in self.peers:
            key = peer if peer in origins else None
            got = joined.get(key)
            if got is None:
                items = [(f, w) for o, f, w in batch if o is None or o is not key]
                got = joined[key] = ([f for f, _ in items], b"".join(w for _, w in items))
            if got[0]:
                peer.sender.put_many(*got)

    # -- staff actions carried out from the room log ---------------------------------------------

    async def carry_out(self) -> None:
        """Clear and snapshot as the room's log asks, each once (marks record what was done).

        With several nodes every one with the board open hears the event; the one holding the
        board's worker lease does the work, and the others find the marks moved when they get it.
        """
        if not self._due():
            return
        deadline = time.monotonic() + 2 * WORKER_LEASE_MS / 1000
        while not await self.store.claim_compaction(
            self.room_id, self.name, self._worker, WORKER_LEASE_MS
        ):
            if time.monotonic() > deadline:
                log.warning("board %s/%s: the worker lease stayed taken", self.room_id, self.name)
                return
            await asyncio.sleep(0.1)
        try:
            stored = await self.store.load(self.room_id, self.name)  # rare: clears, snapshots
            for mark, value in stored.marks.items():
                self.marks[mark] = max(self.marks.get(mark, 0), value)
            state = self.room.state
            cleared = state.board_cleared.get(self.name, 0)
            if cleared > self.marks.get("cleared_through", 0):
                await self._clear(cleared)
            snapshot = state.board_snapshots.get(self.name, 0)
            if snapshot > self.marks.get("snapshot_through", 0):
                await self._save_snapshot(snapshot)
        finally:
            await self.store.release_compaction(self.room_id, self.name, self._worker)

    def _due(self) -> bool:
        state = self.room.state
        return state.board_cleared.get(self.name, 0) > self.marks.get(
            "cleared_through", 0
        ) or state.board_snapshots.get(self.name, 0) > self.marks.get("snapshot_through", 0)

    async def _clear(self, event_id: int) -> None:
        captured: list[bytes] = []
        async with self._lock:
            await self._commit_pending()
            records = self.doc.get(RECORDS, type=Array)
            if len(records):
                subscription = self.doc.observe(lambda event: captured.append(event.update))
                try:
                    records.clear()
                finally:
                    self.doc.unobserve(subscription)
            marks = {"cleared_through": event_id}
            try:
                if captured:
                    last = await self.store.append(self.room_id, self.name, captured, marks)
                    self.sequence.appended(last - len(captured) + 1, len(captured))
                    self.growth.cleared(len(captured[0]))
                else:
                    await self.store.set_marks(self.room_id, self.name, marks)
            except BoardStoreUnavailable as exc:
                self._fail(exc)
                raise
            self.marks.update(marks)
        if captured:
            self._relay(encode_update(captured[0]), None)

    async def _save_snapshot(self, event_id: int) -> None:
        async with self._lock:
            await self._commit_pending()
            try:
                await self.store.save_snapshot(
                    self.room_id, self.name, event_id, self.state_update(), int(time.time() * 1000)
                )
            except BoardStoreUnavailable as exc:
                self._fail(exc)
                raise
            self.marks["snapshot_through"] = event_id

    # -- compaction ----------------------------------------------------------------------------

    def _maybe_compact(self) -> None:
        """Compact in the background when the schedule says it is due (one at a time)."""
        if self._compaction is None and self.growth.due():
            self._compaction = asyncio.get_running_loop().create_task(self.compact())

    async def compact(self) -> None:
        """Merge the board's log into one update (background; also before unloading)."""
        try:
            async with self._lock:
                await self._commit_pending()
                if self.growth.updates_since == 0 or self.failed:
                    return
                if not await self.store.claim_compaction(
                    self.room_id, self.name, self._worker, WORKER_LEASE_MS
                ):
                    return  # another node is compacting this board
                try:
                    # Everything through last_seq is in the document, so the merge may stand
                    # for it; later updates stay in the log (applying one twice is a no-op).
                    merged = self.state_update()
                    through = self.sequence.last_seq
                    await self.store.compact(self.room_id, self.name, merged, through)
                finally:
                    await self.store.release_compaction(self.room_id, self.name, self._worker)
                self.growth.compacted(len(merged))
                self.counts.compactions += 1
        except BoardStoreUnavailable as exc:
            log.warning("board %s/%s: compaction failed: %s", self.room_id, self.name, exc)
        finally:
            self._compaction = None

    # -- failure -------------------------------------------------------------------------------

    @property
    def failed(self) -> bool:
        """The document no longer matches the store: the board is being dropped."""
        return self.sequence.failed

    def _fail(self, exc: BaseException) -> None:
        """The document no longer matches the store: close everyone (they reconnect and sync
        with a board loaded afresh)."""
        if self.failed:
            return
        self.sequence.fail()
        log.error("board %s/%s dropped: %s", self.room_id, self.name, exc)
        for peer in list(self.peers):
            asyncio.get_running_loop().create_task(
                peer.sender.close(CloseCode.INTERNAL_ERROR, "board reloading", final_frame=None)
            )
        self._on_failure(self)


def _not_covered(updates: list[bytes], doc: Doc[Any]) -> list[bytes]:
    """The updates whose structs ``doc`` has not all integrated (a diff against the document's
    state vector that still holds structs: the v1 update's first varUint, the number of
    clients with structs, is not 0)."""
    if not updates:
        return updates
    state = doc.get_state()
    return [u for u in updates if get_update(u, state)[:1] != b"\x00"]
