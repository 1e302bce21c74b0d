"""One slow client never slows a room; presence in a join storm costs O(N) frames."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import msgpack
from websockets.asyncio.client import connect

from clients import ClassroomClient
from tests.integration.classroom import client, close_all, connect_all, wait_all
from tests.server import LiveclassServer


def metric(server: LiveclassServer, name: str) -> float:
    _, body, _ = server.get("/metrics")
    match = re.search(rf"^{name} ([0-9.e+]+)$", body.decode(), re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_a_client_that_stops_reading_is_told_to_resume_while_the_room_goes_on(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server(
        "--send-queue-frames", "32", "--rate-per-s", "100000", "--rate-burst", "100000"
    )
    teacher, fast = client(server, "t", "teacher"), client(server, "fast")
    await connect_all([teacher, fast])
    # The slow student: a raw connection whose reader stops after the welcome (max_queue=1
    # makes websockets stop reading the socket), so the server's buffers for it fill up.
    slow = await connect(server.ws_url, compression=None, max_queue=1, max_size=None)
    await slow.send(msgpack.packb({"t": "join", "token": server.token("slow"), "room": "class"}))
    welcome = msgpack.unpackb(await slow.recv())
    assert welcome["t"] == "welcome"
    try:
        text = "x" * 2000
        started = time.monotonic()
        last = 0
        for sent in range(1, 4001):
            last = (await teacher.chat(text))["ids"][0]
            overflowed = sent % 200 == 0 and metric(server, "liveclass_slow_consumers_total") >= 1
            if overflowed:
                break
        teacher_took = time.monotonic() - started
        assert metric(server, "liveclass_slow_consumers_total") == 1
        await wait_all([fast], last)  # the room went on for everyone else

        # The slow client now reads what reached it: events, then the resume hint, then 4008.
        frames = []
        async with asyncio.timeout(10):
            try:
                while True:
                    frames.append(msgpack.unpackb(await slow.recv()))
            except Exception:
                pass
        assert frames[-1] == {"t": "reconnect", "reason": "slow_consumer", "retry_after_ms": 0}
        assert slow.close_code == 4008
        seen = [f["id"] for f in frames if f["t"] == "event"]
        assert seen == list(range(seen[0], seen[0] + len(seen)))

        # It resumes from its last id and gets exactly the rest.
        back = ClassroomClient(server.ws_url, server.token("slow"), "class", resume_from=seen[-1])
        greeting = await back.connect()
        assert greeting["t"] == "resumed" and greeting["missed"] == last - seen[-1]
        await back.wait_until(lambda: back.session.last_id == last)
        assert [e.id for e in back.session.events] == list(range(seen[-1] + 1, last + 1))
        await back.close()
        assert teacher_took < 60
    finally:
        await slow.close()
        await close_all([teacher, fast])


async def test_a_join_storm_costs_coalesced_presence_frames(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--presence-interval-ms", "250", "--large-room", "100")
    teacher = client(server, "t", "teacher")
    await teacher.connect()
    students = [client(server, f"s{i:03d}") for i in range(150)]
    try:
        started = time.monotonic()
        await connect_all(students)
        storm = time.monotonic() - started
        await teacher.wait_until(lambda: teacher.session.online == 151, 10)
        flushes = int(storm / 0.25) + 3
        # One presence frame per flush, not one per join.
        assert teacher.session.presence_frames <= flushes
        assert set(teacher.session.roster) == {"t"} | {f"s{i:03d}" for i in range(150)}
        await asyncio.sleep(0.3)
        for s in students:
            assert s.session.presence_frames <= flushes
        # Above --large-room, students see the staff and the count, not every student.
        last = students[-1]
        await last.wait_until(lambda: last.session.online == 151, 5)
        assert set(last.session.roster) <= {"t"} | {last.session.you["identity"]}
    finally:
        await close_all([teacher, *students])
