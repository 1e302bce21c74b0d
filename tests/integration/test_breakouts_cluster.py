"""A whole breakout cycle on the cluster: 2 ``liveclass serve --redis-cluster`` nodes behind a real
HAProxy on a real 6-node Redis Cluster, 30 students and a teacher on real WebSockets.

Create 5 rooms, auto-assign the 30 students, open with a timer, extend it, move 2 students between
running rooms, broadcast, ask for help, close. Every student ends in the main room; every
breakout's chat and questions are intact in the staff's view afterwards; no scoped event of one
place reached a student in another (every frame every student received is checked).
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from pathlib import Path

from tests.haproxy import source_address
from tests.integration.breakout_clients import RecordingClient, leaks
from tests.integration.test_scaleout import Deployment, deploy, settle
from tests.redis_cluster import RedisCluster

__all__ = ["deploy"]  # the fixture, shared with test_scaleout

ROOMS = ["Red team", "Blue team", "Green team", "Gold team", "Grey team"]
STUDENTS = 30


def recording(d: Deployment, identity: str, room: str, role: str = "student") -> RecordingClient:
    """A recording client through HAProxy from the next unused source address."""
    assert d.balancer is not None
    made = RecordingClient(
        d.balancer.ws_url,
        d.nodes[0].token(identity, role, room),
        room,
        local_addr=(source_address(d.take_source()), 0),
        backoff=(0.05, 0.5),
    )
    d.clients.append(made)
    return made


async def test_a_breakout_cycle_across_two_nodes_keeps_every_room_to_itself(
    cluster: RedisCluster, deploy: list[Deployment], tmp_path: Path
) -> None:
    d = Deployment(cluster, tmp_path, 2, ("--rate-per-s", "200")).start()
    deploy.append(d)
    room = f"breakouts-{secrets.token_hex(4)}"
    teacher = recording(d, "teacher", room, "teacher")
    students = [recording(d, f"s{i:02}", room) for i in range(STUDENTS)]
    node_of = {c: await d.connect(c) for c in [teacher, *students]}
    assert len(set(node_of.values())) == 2, "HAProxy sent every client to one node"

    # Open: 5 rooms, everyone assigned at random and balanced, a 10-minute timer.
    opened = await teacher.request("breakout.open", rooms=ROOMS, auto={}, duration_s=600)
    await settle([teacher, *students], opened["ids"][-1])
    members = teacher.events_of("breakout.opened")[-1].data["members"]
    assert sorted(members) == sorted(s.identity for s in students)
    assert sorted(Counter(members.values()).values()) == [6] * 5
    place = dict(members)
    by_room = {name: {node_of[s] for s in students if place[s.identity] == name} for name in ROOMS}
    assert any(len(nodes) == 2 for nodes in by_room.values()), "no breakout spans both nodes"
    for s in students:
        await s.wait_until(lambda s=s: bool(s.views()), 5)
        assert s.views()[-1]["room"]["breakouts"]["members"][s.identity] == place[s.identity]
        assert s.views()[-1]["last_id"] == opened["ids"][-1]
    ends_at = students[0].views()[-1]["room"]["breakouts"]["ends_at"]

    # Extend the timer while they run.
    extended = await teacher.request("breakout.timer", remaining_s=900)
    timer_set = await students[-1].wait_for(lambda e: e.type == "breakout.timer_set")
    assert timer_set.id == extended["ids"][-1] and timer_set.data["remaining_s"] == 900
    assert timer_set.ts + 900_000 > ends_at

    # Everyone talks in their room; one question per room.
    await asyncio.gather(*(s.chat(f"{s.identity} in {place[s.identity]}") for s in students))
    askers = {name: next(s for s in students if place[s.identity] == name) for name in ROOMS}
    await asyncio.gather(
        *(s.request("question.ask", text=f"question of {name}") for name, s in askers.items())
    )

    # Move 2 students between running rooms: each gets a view of its new room.
    movers = students[:2]
    for mover in movers:
        target = next(name for name in ROOMS if name != place[mover.identity])
        moved = await teacher.request("breakout.move", identity=mover.identity, room=target)
        # Its chat and questions follow within a second (the view), on the same connection.
        await mover.wait_until(
            lambda m=mover, i=moved["ids"][-1]: m.views()[-1]["last_id"] == i, 1.0
        )
        view = mover.views()[-1]["room"]
        assert view["breakouts"]["members"][mover.identity] == target
        assert {m["room"] for m in view["chat"] if not m.get("broadcast")} <= {target}
        place[mover.identity] = target
        await mover.chat(f"{mover.identity} now in {target}")

    # Broadcast to every room; a student asks for help.
    broadcast = await teacher.request("breakout.broadcast", text="five minutes left")
    await settle(students, broadcast["ids"][-1])
    for s in students:
        (line,) = [e for e in s.events_of("chat.message") if e.data.get("broadcast")]
        assert line.data["text"] == "five minutes left" and line.data["room"] is None
    helper = students[5]
    await helper.request("breakout.help")
    asked = await teacher.wait_for(lambda e: e.type == "breakout.help_asked")
    assert asked.data == {"identity": helper.identity, "room": place[helper.identity]}

    closed = await teacher.request("breakout.close")
    await settle([teacher, *students], closed["ids"][-1])
    for s in students:
        await s.wait_until(lambda s=s: s.views()[-1]["last_id"] == closed["ids"][-1], 5)
        assert s.session.welcomes == 1 and s.session.resumes == 0  # never reconnected
        assert s.views()[-1]["room"]["breakouts"]["members"] == {}
        assert leaks(s) == [], f"{s.identity} received another room's events"
        # The other students' help request is not theirs to see.
        asked_here = [e for e in s.events_of("breakout.help_asked")]
        assert all(e.data["identity"] == s.identity for e in asked_here)

    # And each student did hear its room-mates (the lines were said before anyone moved).
    first_place = dict(members)
    for s in students:
        heard = {e.data["text"] for e in s.events_of("chat.message")}
        mates = [o for o in students if first_place[o.identity] == first_place[s.identity]]
        assert {f"{o.identity} in {first_place[o.identity]}" for o in mates} <= heard

    # Every breakout's chat and questions are intact in a staff view taken afterwards.
    staff = recording(d, "assistant", room, "assistant")
    await d.connect(staff)
    view = staff.session.room
    said = {(m["room"], m["text"]) for m in view["chat"]}
    for s in students:
        assert (first_place[s.identity], f"{s.identity} in {first_place[s.identity]}") in said
    for mover in movers:
        target = place[mover.identity]
        assert (target, f"{mover.identity} now in {target}") in said
    questions = {(q["room"], q["text"]) for q in view["questions"]}
    assert questions >= {(name, f"question of {name}") for name in ROOMS}


async def test_both_nodes_race_to_close_at_zero_and_the_breakouts_close_once(
    cluster: RedisCluster, deploy: list[Deployment], tmp_path: Path
) -> None:
    d = Deployment(cluster, tmp_path, 2).start()
    deploy.append(d)
    room = f"timer-{secrets.token_hex(4)}"
    teacher = recording(d, "teacher", room, "teacher")
    students = [recording(d, f"s{i}", room) for i in range(6)]
    node_of = {c: await d.connect(c) for c in [teacher, *students]}
    assert len(set(node_of.values())) == 2, "HAProxy sent every client to one node"
    await teacher.request("breakout.open", rooms=ROOMS[:2], auto={}, duration_s=1, warn_s=0)
    closed = await teacher.wait_for(lambda e: e.type == "breakout.closed", timeout=5)
    assert (closed.data["reason"], closed.data["by"]) == ("timer", None)
    await asyncio.sleep(0.5)  # the node that lost the race appended nothing
    last = (await teacher.chat("after"))["ids"][-1]
    assert last == closed.id + 1
    await settle(students, last)
    for s in students:
        assert [e.id for e in s.events_of("breakout.closed")] == [closed.id]
        assert s.views()[-1]["last_id"] == closed.id
        assert s.views()[-1]["room"]["breakouts"]["members"] == {}
