"""The classroom's media rules carried out at the SFU, with real aiortc peers and a real
``liveclass serve``: lecture mode, the teacher's permission, staff mutes and breakout isolation.

Each watcher attributes every decoded frame to the producer its m-line carries in the latest
``media.offer``, so a test sees exactly whose media is forwarded to whom, and when it stops.
Publishers send 320x240 video to keep the decoding in this process light. ICE stays on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from clients import ClassroomClient, CommandFailed
from loadtest.media_bot import PatternVideoTrack, Publisher
from tests.integration.media_peers import joined, loopback_ice, until  # noqa: F401
from tests.server import LiveclassServer

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(150)]

#: Frames a stopped stream may still deliver (in flight and in the jitter buffer) in a window.
STRAGGLERS = 5


class Watcher:
    """Subscribes through ``client`` and decodes everything; ``frames`` counts decoded frames by
    ``(identity, source)`` of the producer the m-line carries in the latest offer."""

    def __init__(self, client: ClassroomClient) -> None:
        self.client = client
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.producers: dict[str, dict[str, str]] = {}
        self.frames: Counter[tuple[str, str]] = Counter()
        self.offers: list[str] = []
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.pc.on("track", self._on_track)
        client.media_offer_listeners.append(self._on_offer)

    async def start(self) -> None:
        await self.client.subscribe_media()

    def identities(self) -> set[str]:
        """Whose media the latest offer forwards."""
        return {p["identity"] for p in self.producers.values()}

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_offer(self, msg: dict[str, Any]) -> None:
        self._spawn(self._answer(msg))

    async def _answer(self, msg: dict[str, Any]) -> None:
        async with self._lock:
            self.offers.append(msg["sdp"])
            await self.pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            self.producers = msg["producers"]
            await self.client.answer_media(msg["version"], self.pc.localDescription.sdp)

    def _on_track(self, track: Any) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        self._spawn(self._consume(track, transceiver))

    async def _consume(self, track: Any, transceiver: Any) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                producer = self.producers.get(str(transceiver.mid))
                if producer is not None:
                    self.frames[producer["identity"], producer["source"]] += 1

    async def close(self) -> None:
        for task in tuple(self._tasks):
            task.cancel()
        await self.pc.close()


@pytest.fixture
async def peers() -> AsyncIterator[list[Any]]:
    """Clients, publishers and watchers made by a test; all closed after it."""
    made: list[Any] = []
    yield made
    for peer in reversed(made):
        with contextlib.suppress(Exception):
            await peer.close()


async def publishing(
    client: ClassroomClient, peers: list[Any], microphone: bool = False
) -> Publisher:
    publisher = Publisher(client)
    publisher.video = PatternVideoTrack(320, 240)
    peers.append(publisher)
    await publisher.start(camera=True, microphone=microphone)
    return publisher


async def watching(client: ClassroomClient, peers: list[Any]) -> Watcher:
    watcher = Watcher(client)
    peers.append(watcher)
    await watcher.start()
    return watcher


async def flowing(watcher: Watcher, key: tuple[str, str], frames: int = 20) -> None:
    """``frames`` more frames of ``key`` arrive at ``watcher`` (within 10 s)."""
    start = watcher.frames[key]
    await until(lambda: watcher.frames[key] >= start + frames, 10, f"{key} flowing")


async def stopped(watcher: Watcher, key: tuple[str, str]) -> None:
    """``key`` stops arriving at ``watcher``: after a settling second, a 1.5 s window brings at
    most a few stragglers (a live 30 fps stream brings ~45)."""
    await asyncio.sleep(1.0)
    start = watcher.frames[key]
    await asyncio.sleep(1.5)
    assert watcher.frames[key] - start <= STRAGGLERS, f"{key} still forwarded"


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


def ice_session(sdp: str) -> tuple[str, str]:
    """The ICE username fragment and DTLS fingerprint of an SDP (new ones: a new connection)."""
    ufrag = re.search(r"a=ice-ufrag:(\S+)", sdp)
    fingerprint = re.search(r"a=fingerprint:(.+)", sdp)
    assert ufrag is not None and fingerprint is not None
    return ufrag.group(1), fingerprint.group(1).strip()


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
    await stopped(watchers["c"], ("a", "camera"))
    await stopped(watchers["teacher"], ("b", "camera"))

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
