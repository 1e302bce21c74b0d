"""The edge's logic without I/O: what a room hub decides, as pure functions and small classes.

:class:`signaling.hub.RoomHub` is the asyncio shell around these modules, the way websockets
splits its sans-I/O ``protocol`` from its ``asyncio`` connection: the shell reads sockets, awaits
the store and the bus, and runs timers; these modules decide what to do with what arrived.

- :mod:`.ordering`: which delivered records to fold, and when a gap must be read from the store.
- :mod:`.batch`: the batched write path: which queued commands form one append, each decided in
  order against the state the ones before it leave, and the backoff after a conflict.
- :mod:`.greeting`: a joining connection's welcome, or a resume from the ring or the store.
- :mod:`.fanout`: one loop turn's events as the writes each member gets (invariant 4).
- :mod:`.tally`: in a large room, other participants' votes reach students as one coalesced
  ``tally`` per presence interval.
- :mod:`.snapshots`: when a room's state is due to be snapshotted.

Everything here is typed under ``mypy --strict`` and tested in ``tests/unit/test_edge_*.py``.
"""
