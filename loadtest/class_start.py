"""Class start: every student of a class joins within a few seconds, then the lecture goes on.

    locust -f loadtest/locustfile.py,loadtest/class_start.py --headless --host ... \\
        --class-size 500 --class-start-s 10 --class-hold-s 60

A locust ``LoadTestShape`` (it replaces ``-u``, ``-r`` and ``-t``): ramp to ``--class-size`` users
(plus one teacher per room) at a rate that brings them all in ``--class-start-s``, hold for
``--class-hold-s``, stop. The options are declared by loadtest/locustfile.py, which must be loaded
with it.
"""

from __future__ import annotations

from locust import LoadTestShape


class ClassStart(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        opts = self.runner.environment.parsed_options if self.runner else None
        size = int(getattr(opts, "class_size", 100))
        rooms = max(1, int(getattr(opts, "rooms", 1)))
        start_s = max(0.1, float(getattr(opts, "class_start_s", 10.0)))
        hold_s = float(getattr(opts, "class_hold_s", 30.0))
        if self.get_run_time() > start_s + hold_s:
            return None
        users = size + rooms
        return users, users / start_s
