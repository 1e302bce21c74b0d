"""The awareness states of one board, kept by the server as y-protocols/awareness.js keeps them.

Each client id has a clock; an entry is taken when its clock is newer, or equal with state
``null`` while the client is present (``applyAwarenessUpdate``). The server also remembers which
connection introduced each client id: a connection cannot overwrite another live connection's
client, and when a connection closes its clients are removed with ``clock + 1`` (y-websocket's
server does the same in ``closeConn``), so nobody keeps a ghost cursor.
"""

from __future__ import annotations

from collections.abc import Iterable

from .protocol import AwarenessEntry


class AwarenessTable:
    """Client id -> (clock, JSON state) plus the owning connection of each present client."""

    __slots__ = ("_owner", "_states")

    def __init__(self) -> None:
        self._states: dict[int, tuple[int, str]] = {}
        self._owner: dict[int, object] = {}

    def apply(self, owner: object, entries: Iterable[AwarenessEntry]) -> list[AwarenessEntry]:
        """Take the entries ``owner`` sent; returns those taken (the ones to relay).

        Entries for a client id another connection owns, and stale clocks, are dropped.
        """
        taken = []
        for entry in entries:
            cid = entry.client_id
            holder = self._owner.get(cid)
            if holder is not None and holder is not owner:
                continue
            current = self._states.get(cid)
            if not (
                current is None
                or entry.clock > current[0]
                or (entry.clock == current[0] and entry.removed and current[1] != "null")
            ):
                continue
            self._states[cid] = (entry.clock, entry.state)
            if entry.removed:
                self._owner.pop(cid, None)
            else:
                self._owner[cid] = owner
            taken.append(entry)
        return taken

    def present(self) -> list[AwarenessEntry]:
        """Every client with a state (what a new connection is sent)."""
        return [
            AwarenessEntry(cid, clock, state)
            for cid, (clock, state) in self._states.items()
            if state != "null"
        ]

    def drop(self, owner: object) -> list[AwarenessEntry]:
        """Remove every client ``owner`` introduced; returns the removals to broadcast."""
        removals = []
        for cid in [cid for cid, holder in self._owner.items() if holder is owner]:
            del self._owner[cid]
            clock = self._states[cid][0] + 1
            self._states[cid] = (clock, "null")
            removals.append(AwarenessEntry(cid, clock, "null"))
        return removals

    def __len__(self) -> int:
        return sum(1 for _, state in self._states.values() if state != "null")
