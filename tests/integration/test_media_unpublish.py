"""Stopping one source (``media.unpublish``) and what a staff mute covers, with real aiortc peers
and a real ``liveclass serve``: the SFU removes the producer for everyone at once, forwards
nothing more of it even from a client that keeps sending, publishes it again on the same
connection; and a muted camera cannot come back labelled ``screen``. ICE stays on loopback.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from aiortc import RTCSessionDescription

from loadtest.media_bot import PatternVideoTrack, Publisher
from tests.integration.media_peers import (  # noqa: F401
    STRAGGLERS,
    flowing,
    joined,
    loopback_ice,
    peers_fixture,
    stopped,
    until,
    watching,
)
from tests.integration.test_media import metric
from tests.integration.test_media_rules import refused
from tests.server import LiveclassServer

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(120)]

#: The tile must be gone from every page within a second (issue 12, item 14).
GONE_WITHIN_S = 1.0


def producers_of(watcher: Any, identity: str) -> dict[str, str]:
    """``source -> producer_id`` of ``identity`` in the watcher's latest offer."""
    return {
        p["source"]: p["producer_id"]
        for p in watcher.producers.values()
        if p["identity"] == identity
    }


async def test_unpublish_removes_the_producer_for_everyone_and_republish_brings_it_back(
    sfu: LiveclassServer,
    peers: list[Any],
) -> None:
    teacher = await joined(sfu, peers, "teacher")
    watcher = await watching(await joined(sfu, peers, "watcher"), peers)
    publisher = Publisher(teacher)
    publisher.video = PatternVideoTrack(320, 240)
    peers.append(publisher)
    await publisher.start(camera=True, microphone=True)
    await flowing(watcher, ("teacher", "camera"))
    await flowing(watcher, ("teacher", "microphone"))
    first = producers_of(watcher, "teacher")
    assert sorted(first) == ["camera", "microphone"]
    assert metric(sfu, "liveclass_sfu_producers") == 2

    # "Stop camera": the watcher's next offer drops it within a second; the metric drops.
    asked = time.monotonic()
    await publisher.unpublish("camera")
    await until(lambda: "camera" not in producers_of(watcher, "teacher"), 5, "camera gone")
    took = time.monotonic() - asked
    print(f"\ncamera gone from the watcher's offer {took * 1000:.0f} ms after media.unpublish")
    assert took < GONE_WITHIN_S
    assert metric(sfu, "liveclass_sfu_producers") == 1
    assert re.search(r"a=inactive", watcher.offers[-1]), "the camera's m-line goes inactive"
    await stopped(watcher, ("teacher", "camera"))
    await flowing(watcher, ("teacher", "microphone"))  # only that source stops

    # A client that ignores the advice and keeps sending is not forwarded either.
    await teacher.unpublish_media("microphone")
    await until(lambda: not producers_of(watcher, "teacher"), 5, "microphone gone")
    assert publisher.transceivers["microphone"].sender.track is not None  # still sending
    await stopped(watcher, ("teacher", "microphone"))
    assert metric(sfu, "liveclass_sfu_producers") == 0
    await teacher.unpublish_media("microphone")  # already unpublished: acked, nothing changes

    # "Start camera" again: a new offer on the same connection; a new producer id.
    ufrag = re.findall(r"a=ice-ufrag:(\S+)", publisher.pc.remoteDescription.sdp)
    await publisher.republish("camera")
    await flowing(watcher, ("teacher", "camera"))
    again = producers_of(watcher, "teacher")
    assert list(again) == ["camera"] and again["camera"] != first["camera"]
    assert re.findall(r"a=ice-ufrag:(\S+)", publisher.pc.remoteDescription.sdp) == ufrag
    assert metric(sfu, "liveclass_sfu_producers") == 1


async def test_unpublish_refuses_what_it_cannot_do_and_a_source_keeps_its_m_line(
    sfu: LiveclassServer,
    peers: list[Any],
) -> None:
    teacher = await joined(sfu, peers, "teacher")
    assert await refused(teacher, "media.unpublish", source="camera") == "no_transport"
    assert await refused(teacher, "media.unpublish", source="sideways") == "bad_field"
    assert await refused(teacher, "media.unpublish", source=["camera"]) == "bad_field"
    assert await refused(teacher, "media.unpublish") == "missing_field"
    publisher = Publisher(teacher)
    publisher.video = PatternVideoTrack(320, 240)
    peers.append(publisher)
    await publisher.start(camera=True, microphone=False)

    # The camera's m-line cannot be relabelled "screen" on this connection.
    camera_mid = str(publisher.transceivers["camera"].mid)
    await publisher.pc.setLocalDescription(await publisher.pc.createOffer())
    offer = publisher.pc.localDescription.sdp
    relabel = {camera_mid: "screen"}
    assert await refused(teacher, "media.publish", sdp=offer, sources=relabel) == "bad_field"
    await publisher.client.unpublish_media("camera")
    assert await refused(teacher, "media.publish", sdp=offer, sources=relabel) == "bad_field"
    await publisher.pc.setRemoteDescription(
        RTCSessionDescription(await teacher.publish_media(offer, {camera_mid: "camera"}), "answer")
    )


async def test_a_camera_muted_by_staff_cannot_come_back_labelled_screen(
    sfu: LiveclassServer,
    peers: list[Any],
) -> None:
    teacher = await joined(sfu, peers, "teacher")
    student = await joined(sfu, peers, "student")
    watcher = await watching(await joined(sfu, peers, "watcher"), peers)
    publisher = Publisher(student)
    publisher.video = PatternVideoTrack(320, 240)
    peers.append(publisher)
    await publisher.start(camera=True, microphone=False)
    await flowing(watcher, ("student", "camera"))

    await teacher.mute_media("student", "camera", True)
    await stopped(watcher, ("student", "camera"))
    # The student adds an m-line labelled "screen" that carries the camera's frames.
    screen = publisher.pc.addTransceiver(publisher.video, direction="sendonly")
    publisher.transceivers["screen"] = screen
    await publisher.pc.setLocalDescription(await publisher.pc.createOffer())
    answer = await student.publish_media(
        publisher.pc.localDescription.sdp, {str(screen.mid): "screen"}
    )
    await publisher.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await until(lambda: "screen" in producers_of(watcher, "student"), 5, "screen negotiated")
    await asyncio.sleep(1.0)
    start = watcher.frames["student", "screen"]
    await asyncio.sleep(1.5)
    assert watcher.frames["student", "screen"] - start <= STRAGGLERS, "the muted camera got out"

    # Lifting the camera mute lets both through; muting the screen alone spares the camera.
    await teacher.mute_media("student", "camera", False)
    await flowing(watcher, ("student", "screen"))
    await flowing(watcher, ("student", "camera"))
    await teacher.mute_media("student", "screen", True)
    await stopped(watcher, ("student", "screen"))
    await flowing(watcher, ("student", "camera"))
