"""The whiteboard service: the boards this node has loaded and the connections on them.

Lifecycle hooks, called by the transport (``signaling.SignalingNode``) for each connection to
``/whiteboard/<room>/<board>`` once its token is verified:

- :meth:`WhiteboardService.connect` checks the participant against the room (removed, locked,
  session ended) and the board against the room's boards (:mod:`rooms.boards`), admits an identity
  new to the room (``participant.joined``, as a ``/ws`` join does), loads the board (from the
  store, on first use), sends the sync greeting and counts the connection as the participant's
  presence;
- :meth:`WhiteboardService.receive` handles each binary message;
- :meth:`WhiteboardService.disconnect` ends the presence and removes the connection's awareness
  clients.

:meth:`WhiteboardService.serve` runs the three for one connection.

A board with no connection is compacted and unloaded after ``board_idle_s``. The service follows
each room with an open board through the room's feed: it carries out ``board.cleared`` and
``board.snapshot_saved`` and closes the connections a ``participant.removed`` (4403) or
``session.ended`` (4409) ends, after every ``breakout.*`` event those of students whose board is no
longer open to them (4404: moved to another room, or the breakout boards' gallery no longer
shared), and on ``room.locked``
any of an identity the room never admitted (4423). Board locks and a student's room are read from
the room's state on every write.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from rooms import (
    BoardAccess,
    BoardClearedEvent,
    BoardSnapshotSavedEvent,
    CloseCode,
    Participant,
    ParticipantRemovedEvent,
    Record,
    RoomError,
    RoomLockedEvent,
    RoomState,
    SessionEndedEvent,
    admit,
    board_access,
    is_board_name,
    is_room_board,
)

from .board import Board, BoardCounts, Peer, RateLimit, RoomFeed, Sender
from .errors import AccessDenied, BadMessage, BoardError, StoreFailed
from .feed import BoardFeed
from .settings import WhiteboardSettings
from .store import BoardStore, BoardStoreUnavailable

log = logging.getLogger(__name__)


BoardKey = tuple[str, str]

#: The events after which a board may no longer be open to a participant it was open to.
BREAKOUT_EVENTS = "breakout."


@dataclass(eq=False)
class _RoomLink:
    feed: RoomFeed
    listener: Callable[[Record], None]
    boards: set[str] = field(default_factory=set)


class WhiteboardService:
    """Boards by (room, board name) on this node.

    Args:
        open_room: the room's feed (loads the room if needed); watched while a board is open.
        wire: builds the WebSocket frame of a message once for every recipient.
        rate_limit: a token bucket ``(rate per s, burst)`` for each connection's awareness.
        feed: other nodes' appends to the boards open here (scale-out; None in one process).
    """

    def __init__(
        self,
        store: BoardStore,
        settings: WhiteboardSettings,
        open_room: Callable[[str], Awaitable[RoomFeed]],
        wire: Callable[[bytes], bytes],
        rate_limit: Callable[[float, float], RateLimit],
        feed: BoardFeed | None = None,
    ) -> None:
        self.store = store
        self.feed = feed
        self.settings = settings
        self._open_room = open_room
        self._wire = wire
        self._rate_limit = rate_limit
        self._boards: dict[BoardKey, Board] = {}
        self._opening: dict[BoardKey, asyncio.Future[Board]] = {}
        self._idle: dict[BoardKey, asyncio.TimerHandle] = {}
        self._rooms: dict[str, _RoomLink] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: What its boards did (the node's ``liveclass_board_*`` counters).
        self.counts = BoardCounts()

    @property
    def boards(self) -> int:
        return len(self._boards)

    @property
    def board_bytes(self) -> int:
        """Stored update bytes of the loaded boards (each board's log, as compaction sees it)."""
        return sum(board.growth.size for board in self._boards.values())

    def ready(self) -> bool:
        return self.store.ready()

    @property
    def max_message_bytes(self) -> int:
        return self.settings.max_message_bytes

    # -- the connection lifecycle --------------------------------------------------------------

    async def serve(
        self,
        room_id: str,
        board_name: str,
        participant: Participant,
        sender: Sender,
        messages: AsyncIterator[str | bytes],
    ) -> tuple[int, str] | None:
        """Connect, handle every message, disconnect. Returns the close code and reason when the
        connection must be closed (see docs/protocol.md, "Whiteboard"), None when the client left.
        A closed socket raises from ``messages`` (after the connection is cleaned up)."""
        peer: Peer | None = None
        try:
            peer = await self.connect(
                room_id,
                board_name,
                participant,
                sender,
                self._rate_limit(self.settings.awareness_rate_per_s, self.settings.awareness_burst),
            )
            async for message in messages:
                if sender.closed:
                    break
                if isinstance(message, str):
                    raise BadMessage("text frames are not part of the y-websocket protocol")
                await self.receive(peer, message)
        except BoardError as exc:
            return exc.close_code, str(exc)
        except BoardStoreUnavailable as exc:
            log.error("board store unavailable: %s", exc)
            return StoreFailed.default_close_code, "board store unavailable; reconnect"
        finally:
            if peer is not None:
                self.disconnect(peer)
        return None

    async def connect(
        self,
        room_id: str,
        board_name: str,
        participant: Participant,
        sender: Sender,
        awareness_limit: RateLimit,
    ) -> Peer:
        """Admit a verified participant to a board and send the sync greeting.

        Raises:
            BadMessage: ``board_name`` is not 1-64 letters, digits, ``_`` or ``-`` (4400).
            AccessDenied: removed (4403), session ended (4409), room locked (4423).
            BoardStoreUnavailable: the board could not be loaded.
        """
        if not is_board_name(board_name):
            raise BadMessage("board names are 1-64 letters, digits, '_' or '-'")
        link = await self._link(room_id)
        try:
            self._admit(room_id, board_name, link.feed.state, participant)
            try:
                await link.feed.admit(participant)
            except RoomError as exc:  # the room changed meanwhile
                raise AccessDenied(exc.message, exc.close_code or CloseCode.FORBIDDEN) from exc
            board = await self._board(room_id, board_name)
        finally:
            self._release(room_id)  # a refused connection leaves no room followed
        if board_access(board.room.state, participant, board_name) is BoardAccess.NONE:
            # The participant was moved while the board loaded.
            if not board.peers:
                self._schedule_unload(board)
            raise AccessDenied("this board is not open to you", CloseCode.NOT_YOUR_BOARD)
        peer = Peer(participant, sender, awareness_limit)
        board.join(peer)
        board.room.attach(participant)
        return peer

    def _admit(self, room_id: str, name: str, state: RoomState, participant: Participant) -> None:
        """Raise AccessDenied unless ``participant`` may open board ``name`` now: admitted to the
        room (:func:`rooms.admit`; nothing is appended yet), the board open to them
        (:func:`rooms.board_access`), and a new staff board within ``max_staff_boards``."""
        try:
            admit(state, participant)
        except RoomError as exc:
            raise AccessDenied(exc.message, exc.close_code or CloseCode.FORBIDDEN) from exc
        if board_access(state, participant, name) is BoardAccess.NONE:
            raise AccessDenied(
                "students open 'main' and the board of their breakout room only",
                CloseCode.NOT_YOUR_BOARD,
            )
        key = (room_id, name)
        if is_room_board(state, name) or key in self._boards or key in self._opening:
            return
        staff_boards = {
            board
            for rid, board in (*self._boards, *self._opening)
            if rid == room_id and not is_room_board(state, board)
        }
        if len(staff_boards) >= self.settings.max_staff_boards:
            raise AccessDenied(
                f"at most {self.settings.max_staff_boards} boards besides 'main' and the "
                "breakout rooms' are open at once",
                CloseCode.NOT_YOUR_BOARD,
            )

    async def receive(self, peer: Peer, data: bytes) -> None:
        """One binary message from ``peer``; raises :class:`whiteboard.BoardError` to close it."""
        assert peer.board is not None
        await peer.board.receive(peer, data)

    def disconnect(self, peer: Peer) -> None:
        board = peer.board
        if board is None:
            return
        if peer in board.peers:
            board.room.detach(peer.participant)
        board.leave(peer)
        if not board.peers:
            self._schedule_unload(board)

    async def snapshot(self, room_id: str, board_name: str, snapshot_id: int) -> bytes | None:
        """A saved snapshot (one Yjs v1 update), or None when there is none by that id."""
        return await self.store.snapshot(room_id, board_name, snapshot_id)

    async def close(self) -> None:
        """Compact every loaded board (so the next start loads fast), then forget them."""
        for handle in self._idle.values():
            handle.cancel()
        self._idle.clear()
        for board in list(self._boards.values()):
            await board.compact()
        self._boards.clear()
        for task in list(self._tasks):
            task.cancel()

    # -- boards --------------------------------------------------------------------------------

    async def _board(self, room_id: str, name: str) -> Board:
        key = (room_id, name)
        handle = self._idle.pop(key, None)
        if handle is not None:
            handle.cancel()
        board = self._boards.get(key)
        if board is not None:
            return board
        opening = self._opening.get(key)
        if opening is not None:
            return await asyncio.shield(opening)
        future: asyncio.Future[Board] = asyncio.get_running_loop().create_future()
        self._opening[key] = future
        try:
            link = await self._link(room_id)
            board = Board(
                room_id,
                name,
                self.store,
                link.feed,
                self.settings,
                self._wire,
                self._dropped,
                self.counts,
            )
            link.boards.add(name)
            try:
                if self.feed is not None:  # first, so no append between load and it is missed
                    await self.feed.subscribe(room_id, name, board)
                await board.load()
                await board.carry_out()
            except BaseException:
                self._unlink(room_id, name)
                self._unfollow(board)
                raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._opening[key]
        self._boards[key] = board
        future.set_result(board)
        return board

    def _schedule_unload(self, board: Board) -> None:
        key = (board.room_id, board.name)
        if key in self._idle or self._boards.get(key) is not board:
            return

        def unload() -> None:
            self._idle.pop(key, None)
            if board.peers or self._boards.get(key) is not board:
                return
            del self._boards[key]
            self._unlink(board.room_id, board.name)
            self._unfollow(board)
            self._spawn(board.compact())

        self._idle[key] = asyncio.get_running_loop().call_later(self.settings.board_idle_s, unload)

    def _dropped(self, board: Board) -> None:
        """A board whose store failed: forget it, so the next connection loads it afresh."""
        key = (board.room_id, board.name)
        if self._boards.get(key) is board:
            del self._boards[key]
            self._unlink(board.room_id, board.name)
            self._unfollow(board)

    def _unfollow(self, board: Board) -> None:
        if self.feed is not None:
            self._spawn(self.feed.unsubscribe(board.room_id, board.name, board))

    # -- following rooms -----------------------------------------------------------------------

    async def _link(self, room_id: str) -> _RoomLink:
        link = self._rooms.get(room_id)
        if link is None:
            feed = await self._open_room(room_id)
            link = self._rooms.get(room_id)
            if link is None:
                listener = functools.partial(self._on_record, room_id)
                link = self._rooms[room_id] = _RoomLink(feed, listener)
                feed.watch(listener)
        return link

    def _unlink(self, room_id: str, name: str) -> None:
        link = self._rooms.get(room_id)
        if link is None:
            return
        link.boards.discard(name)
        self._release(room_id)

    def _release(self, room_id: str) -> None:
        """Stop following a room none of whose boards is loaded or loading."""
        link = self._rooms.get(room_id)
        if link is None or link.boards or any(rid == room_id for rid, _ in self._opening):
            return
        del self._rooms[room_id]
        link.feed.unwatch(link.listener)

    def _on_record(self, room_id: str, record: Record) -> None:
        match record.event:
            case BoardClearedEvent(board=name) | BoardSnapshotSavedEvent(board=name):
                self._spawn(self._carry_out(room_id, name))
            case ParticipantRemovedEvent(identity=identity):
                self._close_peers(room_id, CloseCode.FORBIDDEN, "removed", identity)
            case SessionEndedEvent():
                self._close_peers(room_id, CloseCode.SESSION_ENDED, "session ended", None)
            case RoomLockedEvent(locked=True):
                self._close_unadmitted(room_id)
            case _ if record.event.type.startswith(BREAKOUT_EVENTS):
                # Any of them may change a student's room or what the gallery shows them
                # (opened with members, assigned, moved, closed, boards shared or not).
                self._close_moved(room_id)

    async def _carry_out(self, room_id: str, name: str) -> None:
        board = await self._board(room_id, name)
        try:
            await board.carry_out()
        finally:
            if not board.peers:
                self._schedule_unload(board)

    def _close_peers(self, room_id: str, code: int, reason: str, identity: str | None) -> None:
        for (rid, _), board in self._boards.items():
            if rid != room_id:
                continue
            for peer in board.peers:
                if identity is None or peer.participant.identity == identity:
                    self._spawn(peer.sender.close(code, reason, final_frame=None))

    def _close_unadmitted(self, room_id: str) -> None:
        """A room lock closes the board connections of identities the room never admitted (4423).
        Every board connection admits its identity when it opens, so this only catches one that
        raced the lock."""
        for (rid, _), board in self._boards.items():
            if rid != room_id:
                continue
            for peer in board.peers:
                if peer.participant.identity not in board.room.state.participants:
                    self._spawn(
                        peer.sender.close(CloseCode.ROOM_LOCKED, "room locked", final_frame=None)
                    )

    def _close_moved(self, room_id: str) -> None:
        """Close the connections of students whose board is no longer open to them (they were
        moved to another room, or staff stopped sharing the gallery of closed breakout rooms'
        boards): 4404, and the client opens the board of the room it is in. A student moved
        into a breakout room keeps ``main`` open, read-only."""
        for (rid, name), board in self._boards.items():
            if rid != room_id:
                continue
            for peer in board.peers:
                if board_access(board.room.state, peer.participant, name) is BoardAccess.NONE:
                    self._spawn(
                        peer.sender.close(
                            CloseCode.NOT_YOUR_BOARD, "moved to another room", final_frame=None
                        )
                    )

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("whiteboard task failed", exc_info=task.exception())
