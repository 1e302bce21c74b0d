"""The awareness states of one board, kept by the server as y-protocols/awareness.js keeps them,
with the limits a shared server needs.

Each client id has a clock; an entry is taken when its clock is newer, or equal with state
``null`` while the client is present (``applyAwarenessUpdate``). The server also remembers which
connection introduced each client id:

- a connection cannot overwrite another live connection's client;
- a connection introduces at most ``max_clients`` client ids in its life (a Yjs document has one;
  a y-websocket client echoes others' states, which are not its own and are dropped here);
- a ``null`` state removes the client's state; only its clock is kept, by the connection that owns
  it (at most ``max_clients`` per connection), so a stale update cannot bring it back. A ``null``
  for a client nobody owns is dropped: there is nothing to remove, and no tombstone is kept;
- when a connection closes its clients are removed with ``clock + 1`` (y-websocket's server does
  the same in ``closeConn``), so nobody keeps a ghost cursor, and everything it owned is forgotten.

The state's ``user.identity`` and ``user.name`` are the connection's (:func:`bind_user`): a cursor
cannot claim another participant. docs/whiteboard.md, "Awareness", states the rules.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from .protocol import AwarenessEntry

#: Client ids one connection may introduce (docs/whiteboard.md); ``--board-awareness-clients``.
MAX_CLIENTS_PER_CONNECTION = 4


def bind_user(state: str, identity: str, name: str) -> str | None:
    """``state`` (JSON text) with ``user.identity`` and ``user.name`` set to the given ones; the
    other fields of ``user`` (``color``) and of the state are kept.

    Returns None when the state is not a JSON object (the liveclass page and y-websocket clients
    always send one; anything else is dropped).
    """
    try:
        value = json.loads(state)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    user = value.get("user")
    value["user"] = {
        **(user if isinstance(user, dict) else {}),
        "identity": identity,
        "name": name,
    }
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class AwarenessTable:
    """Client id -> (clock, JSON state) of the present clients, and per connection the clocks of
    the client ids it introduced."""

    __slots__ = ("_clients", "_owner", "_states", "max_clients")

    def __init__(self, max_clients: int = MAX_CLIENTS_PER_CONNECTION) -> None:
        self.max_clients = max_clients
        self._states: dict[int, tuple[int, str]] = {}
        self._owner: dict[int, object] = {}
        self._clients: dict[object, dict[int, int]] = {}

    def may_take(self, owner: object, client_id: int) -> bool:
        """Whether an entry of ``owner`` for ``client_id`` could be taken (clocks aside): the
        client is ``owner``'s, or nobody's and ``owner`` may still introduce one."""
        holder = self._owner.get(client_id)
        if holder is not None:
            return holder is owner
        return len(self._clients.get(owner, ())) < self.max_clients

    def apply(
        self,
        owner: object,
        entries: Iterable[AwarenessEntry],
        bind: Callable[[str], str | None] = lambda state: state,
    ) -> list[AwarenessEntry]:
        """Take the entries ``owner`` sent; returns those taken (the ones to relay).

        ``bind`` rewrites a taken state (:func:`bind_user`), None drops the entry. Entries for a
        client id another connection owns, past ``owner``'s quota, removals of a client nobody
        owns, and stale clocks are dropped.
        """
        taken = []
        for entry in entries:
            cid = entry.client_id
            holder = self._owner.get(cid)
            if holder is None:
                mine = self._clients.get(owner, {})
                if entry.removed or len(mine) >= self.max_clients:
                    continue
            elif holder is not owner:
                continue
            else:
                mine = self._clients[owner]
                clock = mine[cid]
                if not (
                    entry.clock > clock
                    or (entry.clock == clock and entry.removed and cid in self._states)
                ):
                    continue
            if entry.removed:
                self._states.pop(cid, None)
            else:
                state = bind(entry.state)
                if state is None:
                    continue
                entry = AwarenessEntry(cid, entry.clock, state)
                self._states[cid] = (entry.clock, state)
            if holder is None:
                self._clients[owner] = mine
                self._owner[cid] = owner
            mine[cid] = entry.clock
            taken.append(entry)
        return taken

    def present(self) -> list[AwarenessEntry]:
        """Every client with a state (what a new connection is sent)."""
        return [AwarenessEntry(cid, clock, state) for cid, (clock, state) in self._states.items()]

    def drop(self, owner: object) -> list[AwarenessEntry]:
        """Forget every client ``owner`` introduced; returns the removals to broadcast (for the
        clients that had a state)."""
        removals = []
        for cid in self._clients.pop(owner, {}):
            del self._owner[cid]
            current = self._states.pop(cid, None)
            if current is not None:
                removals.append(AwarenessEntry(cid, current[0] + 1, "null"))
        return removals

    def __len__(self) -> int:
        return len(self._states)

    @property
    def remembered(self) -> int:
        """Client ids held in any form (states and owned removed clients): what memory holds."""
        return len(self._owner)
