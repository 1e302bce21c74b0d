"""Join storms are admitted at a bounded rate: the node answers the joins past its rate with
``rate_limited`` and a jittered ``retry_after_ms``, and the clients join again by themselves."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

from clients import ClassroomClient
from tests.server import LiveclassServer


async def test_a_join_storm_is_admitted_at_the_configured_rate(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--join-rate-per-s", "20", "--join-burst", "5")
    clients = [
        ClassroomClient(server.ws_url, server.token(f"s{i}"), "class", open_timeout=15)
        for i in range(30)
    ]
    started = time.monotonic()
    try:
        await asyncio.gather(*(c.connect() for c in clients))
        took = time.monotonic() - started
        assert all(c.connected for c in clients)
        # 5 at once, then 20 per second: the other 25 need at least 1.25 s.
        assert took >= 1.2, f"30 joins took {took:.2f}s: no rate limit"
        _, body, _ = server.get("/metrics")
        refused = re.search(rb'liveclass_join_rejections_total\{code="rate_limited"\} (\S+)', body)
        assert refused is not None and float(refused.group(1)) >= 25
        await clients[0].wait_until(lambda: clients[0].session.online == 30, 3)
    finally:
        await asyncio.gather(*(c.close() for c in clients))
