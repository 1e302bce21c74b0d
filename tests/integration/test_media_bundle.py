"""Several tracks of one kind on one connection with the SFU: every m-line is BUNDLEd on the one
transport ICE connects, whatever the order of the m-lines and whenever they were added.

aiortc's default bundle policy ("balanced") gives the first m-line of each kind a transport of its
own and lets later m-lines of that kind share it; on the BUNDLE answer it moves only the first of
each kind to the BUNDLE transport. A later m-line of a kind other than the first m-line's was left
on a transport that was stopped: nothing was sent (subscribe) or received (publish) on it. These
tests put two m-lines of that kind in one SDP, on each connection:

- subscribe: a subscriber that arrives after two publishers (camera and microphone each) gets one
  offer with video, audio, video, audio; the second publisher's audio did not reach it (the media
  load test's "Known (open)" finding, docs/loadtesting.md);
- publish: a publisher whose offer puts the microphone first, then the camera and the screen; the
  screen did not reach the SFU.

Loopback only, as the other media tests (:mod:`tests.integration.test_media`).
"""

from __future__ import annotations

import pytest
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from clients import ClassroomClient
from loadtest.media_bot import (
    PatternVideoTrack,
    Publisher,
    Subscriber,
    ToneAudioTrack,
)
from tests.integration.media_peers import joined, loopback_ice, until  # noqa: F401
from tests.server import LiveclassServer

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(90)]

#: Frames of each track a subscriber must decode: 1 s of audio (20 ms frames), 0.5 s of video.
AUDIO_FRAMES = 50
VIDEO_FRAMES = 15
#: Seconds a subscriber has to get them (about 1 s on an idle machine).
WAIT_S = 20.0


def decoded(subscriber: Subscriber) -> dict[tuple[str, str], int]:
    """Frames decoded per (identity, source)."""
    return {
        (r.producer["identity"], r.producer["source"]): r.frames
        for r in subscriber.received.values()
        if "identity" in r.producer
    }


async def wait_for_all(
    who: str, subscriber: Subscriber, identities: list[str], sources: list[str]
) -> None:
    """Until ``subscriber`` (called ``who``) decoded enough of each identity's sources; fails after
    :data:`WAIT_S` naming what it decoded of each."""

    def enough() -> bool:
        frames = decoded(subscriber)
        return all(
            frames.get((identity, source), 0)
            >= (AUDIO_FRAMES if source == "microphone" else VIDEO_FRAMES)
            for identity in identities
            for source in sources
        )

    try:
        await until(enough, WAIT_S, f"{sources} of {identities} at {who}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; decoded frames: {decoded(subscriber)}") from None


async def test_a_subscriber_gets_the_audio_and_video_of_two_publishers_whenever_it_arrived(
    sfu: LiveclassServer, clients: list[ClassroomClient]
) -> None:
    both, sources = ["teacher", "student"], ["camera", "microphone"]
    early = Subscriber(await joined(sfu, clients, "early"))
    first = Publisher(await joined(sfu, clients, "teacher"), video=PatternVideoTrack(320, 240))
    second = Publisher(await joined(sfu, clients, "student"), video=PatternVideoTrack(320, 240))
    late: Subscriber | None = None
    try:
        await early.start()
        await first.start()
        await wait_for_all("early", early, ["teacher"], sources)
        # Renegotiated: a second video and a second audio m-line on a connected transport.
        await second.start()
        # One first offer with video, audio, video, audio.
        late = Subscriber(await joined(sfu, clients, "late"))
        await late.start()
        for who, subscriber in (("early", early), ("late", late)):
            await wait_for_all(who, subscriber, both, sources)
            assert subscriber.decode_errors == 0
    finally:
        for peer in (first, second, early, late):
            if peer is not None:
                await peer.close()


async def test_a_publisher_offering_its_microphone_before_camera_and_screen_gets_all_three_out(
    sfu: LiveclassServer, clients: list[ClassroomClient]
) -> None:
    watcher = Subscriber(await joined(sfu, clients, "watcher"))
    teacher = await joined(sfu, clients, "teacher")
    # One transport for every track offered, as the web client's publish connection.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    try:
        await watcher.start()
        tracks = {
            "microphone": ToneAudioTrack(),
            "camera": PatternVideoTrack(320, 240),
            "screen": PatternVideoTrack(320, 180),
        }
        mids = {
            source: pc.addTransceiver(track, direction="sendonly")
            for source, track in tracks.items()
        }
        await pc.setLocalDescription(await pc.createOffer())
        labels = {str(transceiver.mid): source for source, transceiver in mids.items()}
        answer = await teacher.publish_media(pc.localDescription.sdp, labels)
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await wait_for_all("watcher", watcher, ["teacher"], list(tracks))
        assert watcher.decode_errors == 0
    finally:
        await pc.close()
        await watcher.close()
