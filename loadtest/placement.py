"""Which room a simulated teacher lectures, whatever worker process locust gave it to (pure, so
that it is tested without locust's gevent monkey-patching)."""

from __future__ import annotations


def teacher_room(n_teacher: int, worker: int, workers: int, rooms: int) -> int:
    """The room index of worker ``worker``'s ``n_teacher``-th teacher (all 0-based).

    Worker w of W takes rooms w, W + w, 2W + w ...: locust hands the fixed teachers to the workers
    in turn, so each room gets one teacher when ``rooms`` is a multiple of W. The index is taken
    modulo ``rooms`` so that a teacher locust gave to a later worker still lectures a room with
    students (one room over 2 workers: the teacher may be on either).
    """
    return (n_teacher * workers + worker % workers) % max(1, rooms)
