"""The loadtest media bots start their media again after their signalling node restarts.

A SIGTERMed node sends no ``media.reset``: its SFU went with it, and the bots' clients reconnect
and resume (the room survives in the node's SQLite data dir). The bots must then publish and
subscribe again on new peer connections, as the web app does on every ``resumed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from clients import ClassroomClient
from loadtest.media_bot import PatternVideoTrack, Publisher, Subscriber
from tests.integration.media_peers import joined, loopback_ice, until  # noqa: F401
from tests.server import LiveclassServer

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(90)]

#: How soon after the restarted node is ready the subscriber must decode video again (s).
RESUME_WITHIN_S = 15.0


def video_frames(subscriber: Subscriber) -> int:
    """Every video frame the subscriber decoded, over its connections so far."""
    rounds = [*subscriber.previous, subscriber.received]
    return sum(
        r.frames for received in rounds for r in received.values() if r.producer["kind"] == "video"
    )


async def test_media_bots_publish_and_subscribe_again_after_their_node_restarts(
    make_server: Callable[..., LiveclassServer], clients: list[ClassroomClient]
) -> None:
    server = make_server("--sfu-listen-ips", "127.0.0.1", "--rate-per-s", "200")
    teacher = await joined(server, clients, "teacher")
    student = await joined(server, clients, "student")
    publisher = Publisher(teacher, video=PatternVideoTrack(320, 240))
    subscriber = Subscriber(student)
    try:
        await subscriber.start()
        await publisher.start(camera=True, microphone=False)
        await until(lambda: video_frames(subscriber) >= 20, 20, "video before the restart")

        assert server.terminate() == 0
        server.start()
        ready = time.monotonic()
        before = video_frames(subscriber)
        await until(
            lambda: video_frames(subscriber) >= before + 20,
            RESUME_WITHIN_S,
            "video again after the node restarted",
        )
        print(f"\nvideo again {time.monotonic() - ready:.2f} s after the node was ready")
        assert teacher.session.resumes >= 1 and student.session.resumes >= 1
        assert publisher.rejoins >= 1 and subscriber.rejoins >= 1
        assert publisher.resets == 0 and subscriber.resets == 0, "no media.reset came"
        assert subscriber.decode_errors == 0
    finally:
        await publisher.close()
        await subscriber.close()
