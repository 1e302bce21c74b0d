"""A subscriber on a link too slow for the video: the SFU pauses that video for it alone, its
audio goes on, and the video comes back when the link does (sfu/congestion.py, media.layers).
And a client that shows only some videos (``media.view``) is sent only those, and the sound.

Real aiortc peers and a real server; the slow subscriber's media crosses
:class:`loadtest.impair.UdpImpairProxy` (its SFU candidates are rewritten to the proxy, so every
packet both ways crosses the shaped link), while a second subscriber's does not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from loadtest.impair import Impairment, LinkShape, UdpPortMap
from tests.integration.media_peers import (
    ImpairedWatcher,
    flowing,
    joined,
    loopback_ice,
    peers_fixture,
    publishing,
    stopped,
    until,
    watching,
)
from tests.metrics_scrape import scrape, value
from tests.server import LiveclassServer

__all__ = ["loopback_ice", "peers_fixture"]

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("loopback_ice")]

OPEN = Impairment(up=LinkShape(), down=LinkShape())
#: Room for the teacher's sound (Opus at 96 kbit/s from aiortc, about 112 with its packets), not
#: for the video too.
SLOW = Impairment(
    up=LinkShape(rate_bps=200_000, queue_bytes=16_000),
    down=LinkShape(rate_bps=200_000, queue_bytes=16_000),
)


@pytest.fixture
async def ports() -> AsyncIterator[UdpPortMap]:
    ports = UdpPortMap((), OPEN, seed=18)
    yield ports
    await ports.close()


async def test_a_slow_subscribers_video_pauses_alone_its_sound_goes_on_and_the_video_comes_back(
    sfu: LiveclassServer, peers: list[Any], ports: UdpPortMap
) -> None:
    teacher = await joined(sfu, peers, "teacher", can_publish=True, can_subscribe=True)
    slow_client = await joined(sfu, peers, "slow", can_subscribe=True)
    fast_client = await joined(sfu, peers, "fast", can_subscribe=True)
    await publishing(teacher, peers, microphone=True)
    fast = await watching(fast_client, peers)
    slow = ImpairedWatcher(slow_client, ports)
    peers.append(slow)
    await slow.start()
    camera, microphone = ("teacher", "camera"), ("teacher", "microphone")
    await flowing(fast, camera)
    await flowing(slow, camera)
    await flowing(slow, microphone)
    [video] = [p["producer_id"] for p in slow.producers.values() if p["kind"] == "video"]

    ports.reshape(SLOW)
    await until(lambda: slow_client.media_layers == {video: "paused"}, 15, "the video paused")
    # Only for the slow subscriber: the other one's video never stopped, and the sound goes on.
    assert not fast_client.media_layers
    sound, other = slow.frames[microphone], fast.frames[camera]
    await stopped(slow, camera)  # a few frames in flight when it paused, then none
    assert slow.frames[microphone] - sound >= 60, "the sound stopped (60 frames of 20 ms)"
    assert fast.frames[camera] - other >= 30, "the other subscriber's video slowed down"

    # The link recovers: a probe finds room, and the video comes back by itself (within one
    # failed probe and the doubled wait after it, on a busy machine).
    ports.reshape(OPEN)
    resumed = slow.frames[camera]
    await until(lambda: slow.frames[camera] >= resumed + 30, 40, "the video back")
    families = scrape(sfu.http_url)
    assert value(families, "liveclass_sfu_layer_changes_total", layer="paused") >= 1
    assert value(families, "liveclass_sfu_layer_changes_total", layer="all") >= 1


async def test_a_client_receives_only_the_videos_it_shows_and_always_the_sound(
    sfu: LiveclassServer, peers: list[Any]
) -> None:
    teacher = await joined(sfu, peers, "teacher", can_publish=True, can_subscribe=True)
    student = await joined(sfu, peers, "student", can_subscribe=True)
    await publishing(teacher, peers, microphone=True)
    watcher = await watching(student, peers)
    camera, microphone = ("teacher", "camera"), ("teacher", "microphone")
    await flowing(watcher, camera)
    [video] = [p["producer_id"] for p in watcher.producers.values() if p["kind"] == "video"]

    await student.view_media("none")  # "pause others' video": sound only
    sound = watcher.frames[microphone]
    await stopped(watcher, camera)
    assert watcher.frames[microphone] - sound >= 60
    await student.view_media([video, "p-not-yet-published"])  # its tile is on screen again
    await flowing(watcher, camera)
    await student.view_media(["p-another"])  # scrolled off the page
    await stopped(watcher, camera)
    await student.view_media("all")
    await flowing(watcher, camera)
    assert not student.media_layers  # nothing was paused for the link

    # Said before subscribing, it holds once the subscribe connection starts.
    listener = await joined(sfu, peers, "listener", can_subscribe=True)
    await listener.view_media("none")
    ears = await watching(listener, peers)
    await flowing(ears, microphone)
    await asyncio.sleep(1.0)
    assert ears.frames[camera] == 0
