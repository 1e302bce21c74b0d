"""A joining connection's greeting: a fresh ``welcome``, or ``resumed`` with what it missed.

A client that joins with ``last_id`` (docs/protocol.md, "Resume") resumes when everything after
it can still be sent: no more than ``resume_max_events`` behind, and still in the hub's ring of
recent events or in the store's log (which is trimmed behind snapshots). Otherwise it gets a
welcome with the room's current view.
"""

from __future__ import annotations

from enum import Enum


class Greeting(Enum):
    WELCOME = "welcome"
    RESUME_FROM_RING = "resume_from_ring"
    """Every missed event is in the hub's ring of recent events."""
    RESUME_FROM_STORE = "resume_from_store"
    """The missed events start before the ring: read them from the store's log."""
    ASK_LOG_START = "ask_log_start"
    """Ask the store where its log starts, then choose again with ``log_first_id``."""


def choose_greeting(
    last_id: int | None,
    state_last_id: int,
    ring_start: int,
    resume_max_events: int,
    log_first_id: int | None = None,
) -> Greeting:
    """The greeting for a client that asks to resume after ``last_id`` (None: a first join).

    Args:
        state_last_id: the id the hub's state is folded through.
        ring_start: the oldest id in the hub's ring of recent events (``state_last_id + 1`` when
            it is empty).
        resume_max_events: the most events a resume replays.
        log_first_id: the oldest id in the store's log, once asked.
    """
    if last_id is None or not 0 <= last_id <= state_last_id:
        return Greeting.WELCOME
    if state_last_id - last_id > resume_max_events:
        return Greeting.WELCOME
    if last_id + 1 >= ring_start:
        return Greeting.RESUME_FROM_RING
    if log_first_id is None:
        return Greeting.ASK_LOG_START
    return Greeting.RESUME_FROM_STORE if log_first_id <= last_id + 1 else Greeting.WELCOME
