"""Join storms are admitted at a bounded rate: the node answers the joins past its rate with
``rate_limited`` and a jittered ``retry_after_ms``, and the clients join again by themselves."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from typing import Any

import msgpack
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

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


async def _join_raw(server: LiveclassServer, token: str) -> tuple[dict[str, Any], int | None]:
    """One join on a fresh connection: the first answer, and the close code if it closed."""
    async with connect(server.ws_url, open_timeout=5) as ws:
        await ws.send(
            msgpack.packb({"t": "join", "token": token, "room": "class", "last_id": None})
        )
        answer: dict[str, Any] = msgpack.unpackb(await asyncio.wait_for(ws.recv(), 5))
        if answer["t"] == "error" and answer["code"].startswith("token_"):
            with contextlib.suppress(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        return answer, ws.close_code


async def test_joins_with_tokens_that_do_not_verify_spend_no_join_budget(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--no-media", "--join-rate-per-s", "1", "--join-burst", "4")
    for i in range(8):
        answer, code = await _join_raw(server, f"garbage-{i}")
        assert (answer.get("code"), code) == ("token_invalid", 4401), answer
    answer, _ = await _join_raw(server, server.token("s1"))
    assert answer["t"] == "welcome", answer


async def test_failed_joins_past_their_address_budget_are_rate_limited(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server(
        "--no-media", "--auth-failure-rate-per-s", "0.2", "--auth-failure-burst", "3"
    )
    answers = [await _join_raw(server, "garbage") for _ in range(6)]
    assert [a.get("code") for a, _ in answers[:3]] == ["token_invalid"] * 3, answers
    for answer, _ in answers[3:]:
        assert answer.get("code") == "rate_limited", answer
        assert 0 < answer["retry_after_ms"] <= 5000, answer
    # A valid token from the same address is not held back by the failures.
    answer, _ = await _join_raw(server, server.token("s1"))
    assert answer["t"] == "welcome", answer
