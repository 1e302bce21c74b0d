"""The classroom's media rules carried out at the SFU, with real aiortc peers and a real
``liveclass serve``: lecture mode, the teacher's permission, staff mutes and breakout isolation.

Each watcher attributes every decoded frame to the producer its m-line carries in the latest
``media.offer``, so a test sees exactly whose media is forwarded to whom, and when it stops.
Publishers send 320x240 video to keep the decoding in this process light. ICE stays on loopback.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from aiortc import RTCSessionDescription

from clients import ClassroomClient, CommandFailed
from loadtest.media_bot import PatternVideoTrack, Publisher
from tests.integration.media_peers import (  # noqa: F401
    flowing,
    ice_session,
    joined,
    loopback_ice,
    peers_fixture,
    publishing,
    stopped,
    until,
    watching,
)
from tests.server import LiveclassServer

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(150)]


async def refused(client: ClassroomClient, type_: str, **fields: Any) -> str:
    with pytest.raises(CommandFailed) as failed:
        await client.request(type_, **fields)
    return failed.value.code


async def test_lecture_mode_stops_students_media_until_the_teacher_permits_it(
    sfu: LiveclassServer, peers: list[Any]
) -> None:
    teacher = await joined(sfu, peers, "teacher")
    student = await joined(sfu, peers, "student")
    watcher = await watching(await joined(sfu, peers, "watcher"), peers)
    await publishing(teacher, peers)
    await publishing(student, peers)
    await flowing(watcher, ("student", "camera"))

    await teacher.set_media_mode("lecture")
    await student.wait_for(lambda e: e.type == "media.mode_changed")
    await stopped(watcher, ("student", "camera"))
    await flowing(watcher, ("teacher", "camera"))  # staff still publish

    # A student without the can_publish grant is refused, in lecture mode and out of it, until
    # the teacher permits them; the refusal changes nothing for anyone else.
    listener = await joined(sfu, peers, "listener", can_publish=False)
    late = Publisher(listener)
    late.video = PatternVideoTrack(320, 240)
    peers.append(late)
    late.pc.addTransceiver(late.video, direction="sendonly")
    await late.pc.setLocalDescription(await late.pc.createOffer())
    offer = late.pc.localDescription.sdp
    mid = re.findall(r"a=mid:(\S+)", offer)[0]
    assert await refused(listener, "media.publish", sdp=offer, sources={mid: "camera"}) == (
        "not_allowed"
    )
    assert await refused(student, "media.mode", mode="discussion") == "not_allowed"
    await flowing(watcher, ("teacher", "camera"))

    await teacher.permit_media("listener", True)
    answer = await listener.publish_media(offer, {mid: "camera"})
    await late.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await flowing(watcher, ("listener", "camera"))

    await teacher.set_media_mode("discussion")
    await flowing(watcher, ("student", "camera"))  # forwarding resumes at a keyframe
    await teacher.permit_media("listener", False)
    await stopped(watcher, ("listener", "camera"))  # no grant, and no permission any more


async def test_a_staff_mute_stops_forwarding_and_tells_the_participant(
    sfu: LiveclassServer, peers: list[Any]
) -> None:
    teacher = await joined(sfu, peers, "teacher")
    student = await joined(sfu, peers, "student")
    watcher = await watching(await joined(sfu, peers, "watcher"), peers)
    await publishing(student, peers, microphone=True)
    await flowing(watcher, ("student", "microphone"))

    await teacher.mute_media("student", "microphone", True)
    told = await student.wait_for(lambda e: e.type == "media.muted")
    assert told.data == {
        "identity": "student",
        "source": "microphone",
        "muted": True,
        "by": "teacher",
    }
    await stopped(watcher, ("student", "microphone"))
    await flowing(watcher, ("student", "camera"))  # only the muted source stops
    # The participant cannot lift a staff mute.
    code = await refused(
        student, "media.mute", identity="student", source="microphone", muted=False
    )
    assert code == "not_allowed"
    await teacher.mute_media("student", "microphone", False)
    await flowing(watcher, ("student", "microphone"))

    # "Every student's camera" mutes this student's camera too, and unmuting brings it back.
    await teacher.mute_media(None, "camera", True)
    await stopped(watcher, ("student", "camera"))
    await teacher.mute_media(None, "camera", False)
    await flowing(watcher, ("student", "camera"))


async def test_breakout_rooms_are_isolated_and_staff_move_on_the_same_connection(
    sfu: LiveclassServer, peers: list[Any]
) -> None:
    teacher = await joined(sfu, peers, "teacher")
    a, b, c = [await joined(sfu, peers, name) for name in ("a", "b", "c")]
    for client in (teacher, a, b, c):
        await publishing(client, peers)
    watchers = {
        name: await watching(client, peers)
        for name, client in (("teacher", teacher), ("a", a), ("c", c))
    }
    await until(
        lambda: watchers["a"].identities() == {"teacher", "b", "c"}, 10, "everyone in one room"
    )

    await teacher.open_breakouts(["r1", "r2"])
    await teacher.move_to_breakout("a", "r1")
    await teacher.move_to_breakout("b", "r1")
    await until(lambda: watchers["a"].identities() == {"b"}, 10, "a sees only b in r1")
    await until(lambda: watchers["c"].identities() == {"teacher"}, 10, "c sees only the teacher")
    await until(lambda: watchers["teacher"].identities() == {"c"}, 10, "the teacher sees c")
    await flowing(watchers["a"], ("b", "camera"))
    await flowing(watchers["c"], ("teacher", "camera"))
    await asyncio.gather(
        stopped(watchers["c"], ("a", "camera")), stopped(watchers["teacher"], ("b", "camera"))
    )

    # The teacher visits r1: the subscription switches on the same connection (same ICE
    # credentials and DTLS fingerprint in every offer), and the main room no longer gets them.
    await teacher.move_to_breakout("teacher", "r1")
    await until(lambda: watchers["teacher"].identities() == {"a", "b"}, 10, "the teacher sees r1")
    await flowing(watchers["teacher"], ("a", "camera"))
    await flowing(watchers["teacher"], ("b", "camera"))
    await until(lambda: watchers["a"].identities() == {"b", "teacher"}, 10, "r1 sees the teacher")
    await until(lambda: watchers["c"].identities() == set(), 10, "c alone in the main room")
    offers = watchers["teacher"].offers
    assert len(offers) >= 3
    assert {ice_session(sdp) for sdp in offers} == {ice_session(offers[0])}

    await teacher.close_breakouts()
    await until(lambda: watchers["c"].identities() == {"teacher", "a", "b"}, 10, "everyone back")
    await flowing(watchers["c"], ("a", "camera"))
    await flowing(watchers["a"], ("c", "camera"))
