"""Media through the SFU inside a real ``liveclass serve``, with real aiortc peers in this process.

The server gathers ICE candidates on 127.0.0.1 only (``--sfu-listen-ips``) and so do the peers
here (:func:`sfu.ice.use_host_addresses`): no candidate leaves loopback. The peers encode and
decode for real (the pass-through hooks live only in the server process).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from clients import ClassroomClient, CommandFailed
from loadtest.media_bot import Publisher, Subscriber, ice_config
from tests.integration.media_peers import joined, loopback_ice, until  # noqa: F401
from tests.server import LiveclassServer
from tests.turn import Coturn
from turn_config import mint as mint_turn

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(120)]

SUBSCRIBERS = 8


def metric(server: LiveclassServer, name: str) -> float:
    _, body, _ = server.get("/metrics")
    found = re.search(rf"^{name} (\S+)$".encode(), body, re.M)
    assert found is not None, f"no {name} in /metrics"
    return float(found.group(1))


async def test_vp8_and_opus_reach_eight_decoding_subscribers_and_the_sfu_never_encodes(
    sfu: LiveclassServer, clients: list[ClassroomClient]
) -> None:
    subscribers = []
    for i in range(SUBSCRIBERS):
        subscriber = Subscriber(await joined(sfu, clients, f"s{i}"))
        await subscriber.start()
        subscribers.append(subscriber)
    publisher = Publisher(await joined(sfu, clients, "teacher"))
    started = time.monotonic()
    try:
        await publisher.start()
        await until(
            lambda: all(
                s.frames("video") and min(s.frames("video")) >= 90 and min(s.frames("audio")) >= 100
                for s in subscribers
            ),
            30,
            "3 s of video and 2 s of audio at every subscriber",
        )
        first_frames = [
            r.first_frame_s + s.started - started
            for s in subscribers
            for r in s.received.values()
            if r.producer["kind"] == "video" and r.first_frame_s is not None
        ]
        for s in subscribers:
            kinds = sorted(r.producer["kind"] for r in s.received.values())
            assert kinds == ["audio", "video"], "each subscriber gets one video and one audio"
            assert {r.producer["identity"] for r in s.received.values()} == {"teacher"}
            video = next(r for r in s.received.values() if r.producer["kind"] == "video")
            assert video.sizes == {(640, 480)}
            assert s.decode_errors == 0
        # Forwarded, not transcoded: every frame the SFU took in came through the pass-through
        # receiver (a decoded frame would not be counted there) and nothing asked it to encode.
        assert metric(sfu, "liveclass_sfu_frames_received_total") >= 90 + 100
        assert metric(sfu, "liveclass_sfu_encode_refusals_total") == 0
        assert metric(sfu, "liveclass_sfu_producers") == 2
        assert metric(sfu, "liveclass_sfu_consumers") == 2 * SUBSCRIBERS
        print(f"\nfirst video frame after publish: max {max(first_frames) * 1000:.0f} ms")
        assert max(first_frames) < 3.0
    finally:
        await publisher.close()
        for s in subscribers:
            await s.close()


PCMU_ONLY_OFFER_TAIL = "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"


async def test_bad_media_input_gets_a_clear_error_and_the_room_media_goes_on(
    sfu: LiveclassServer, clients: list[ClassroomClient]
) -> None:
    subscriber = Subscriber(await joined(sfu, clients, "watcher"))
    await subscriber.start()
    publisher = Publisher(await joined(sfu, clients, "teacher"))
    try:
        await publisher.start()
        await until(lambda: sum(subscriber.frames("video")) >= 30, 20, "video at the watcher")
        rogue = await joined(sfu, clients, "rogue")

        async def refused(type_: str, **fields: object) -> str:
            with pytest.raises(CommandFailed) as failed:
                await rogue.request(type_, **fields)
            return failed.value.code

        assert await refused("media.publish", sdp="hello", sources={}) == "bad_sdp"
        offer = publisher.pc.localDescription.sdp
        mid_lines = re.findall(r"a=mid:(\S+)", offer)
        sources = {mid: "camera" for mid in mid_lines}
        assert await refused("media.publish", sdp=offer, sources={}) == "bad_field"
        assert await refused("media.publish", sdp=offer, sources=sources) == "bad_field"
        pcmu = re.sub(r"m=audio (\d+) (\S+) [\d ]+", r"m=audio \1 \2 0", offer)
        pcmu = re.sub(r"a=rtpmap:\d+ opus/48000/2\r\n", "a=rtpmap:0 PCMU/8000\r\n", pcmu)
        pcmu_sources = {m: ("camera" if i == 0 else "microphone") for i, m in enumerate(mid_lines)}
        assert await refused("media.publish", sdp=pcmu, sources=pcmu_sources) == (
            "unsupported_codec"
        )
        assert await refused("media.answer", version=1, sdp="v=0\r\n") == "no_transport"
        assert await refused("media.candidate", transport="publish", candidate="", sdp_mid="0") == (
            "no_transport"
        )
        offers: list[dict[str, object]] = []
        rogue.media_offer_listeners.append(offers.append)
        await rogue.request("media.subscribe")
        assert await refused("media.answer", version=99, sdp="v=0\r\n") == "stale_answer"
        await rogue.wait_until(lambda: bool(offers))
        assert await refused(
            "media.candidate", transport="sideways", candidate="", sdp_mid="0"
        ) == ("no_transport")
        assert await refused("media.candidate", candidate="") == "missing_field"
        assert await refused(
            "media.candidate", transport="subscribe", candidate="candidate:what", sdp_mid="0"
        ) == ("bad_field")
        host = "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host"
        assert await refused(
            "media.candidate", transport="subscribe", candidate=host, sdp_mid="nope"
        ) == ("bad_field")
        mid = re.findall(r"a=mid:(\S+)", str(offers[0]["sdp"]))[0]
        await rogue.request("media.candidate", transport="subscribe", candidate=host, sdp_mid=mid)
        assert await refused("media.publish", sdp=offer) == "missing_field"
        listener = await joined(sfu, clients, "listener", can_publish=False)
        with pytest.raises(CommandFailed) as failed:
            await listener.request("media.publish", sdp=offer, sources=sources)
        assert failed.value.code == "not_allowed"

        # The room's media is unaffected: the watcher keeps decoding, the rogue is still joined.
        before = sum(subscriber.frames("video"))
        await until(lambda: sum(subscriber.frames("video")) >= before + 30, 10, "more video")
        assert subscriber.decode_errors == 0
        await rogue.chat("still here")
    finally:
        await publisher.close()
        await subscriber.close()


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    server = Coturn(tmp_path / "coturn").start()
    yield server
    server.stop()


async def test_a_relay_only_publisher_reaches_the_sfu_through_coturn_with_join_credentials(
    make_server: Callable[..., LiveclassServer], coturn: Coturn, clients: list[ClassroomClient]
) -> None:
    sfu = make_server(
        *("--sfu-listen-ips", "127.0.0.1", "--turn-servers", coturn.servers_option()),
        *("--turn-secret", coturn.secrets[0], "--turn-ttl-s", "300"),
    )
    subscriber = Subscriber(await joined(sfu, clients, "watcher"))
    await subscriber.start()
    teacher = await joined(sfu, clients, "teacher")
    servers = teacher.session.ice_servers
    assert servers and servers[0]["username"].endswith(":teacher")
    assert int(servers[0]["username"].split(":")[0]) - time.time() == pytest.approx(300, abs=5)
    publisher = Publisher(teacher, ice_config(servers, relay_only=True))
    try:
        await publisher.start()
        candidates = re.findall(r"a=candidate:.*", publisher.pc.localDescription.sdp)
        assert candidates and all(" typ relay" in c for c in candidates), candidates
        await until(lambda: sum(subscriber.frames("video")) >= 30, 20, "relayed video")
        assert subscriber.decode_errors == 0
    finally:
        await publisher.close()
        await subscriber.close()

    # A credential past its expiry gets no relay: the allocation is refused (401).
    expired = mint_turn(coturn.secrets[0].encode(), "teacher", 600, now=time.time() - 3600)
    stale = [{**servers[0], "username": expired.username, "credential": expired.password}]
    refused = Publisher(await joined(sfu, clients, "late"), ice_config(stale, relay_only=True))
    try:
        refused.pc.addTransceiver(refused.video, direction="sendonly")
        await refused.pc.setLocalDescription(await refused.pc.createOffer())
        assert "typ relay" not in refused.pc.localDescription.sdp
    finally:
        await refused.close()


async def test_camera_and_screen_share_from_one_participant_are_both_forwarded(
    sfu: LiveclassServer, clients: list[ClassroomClient]
) -> None:
    subscriber = Subscriber(await joined(sfu, clients, "watcher"))
    await subscriber.start()
    publisher = Publisher(await joined(sfu, clients, "teacher"))
    try:
        await publisher.start(camera=True, microphone=True, screen=True)
        await until(
            lambda: len(subscriber.frames("video")) == 2 and min(subscriber.frames("video")) >= 30,
            20,
            "camera and screen at the watcher",
        )
        by_source = {r.producer["source"]: r for r in subscriber.received.values()}
        assert sorted(by_source) == ["camera", "microphone", "screen"]
        assert by_source["camera"].sizes == {(640, 480)}
        assert by_source["screen"].sizes == {(640, 360)}
        assert subscriber.decode_errors == 0
    finally:
        await publisher.close()
        await subscriber.close()


async def test_an_sfu_listening_on_every_address_is_reached_at_its_announced_address(
    make_server: Callable[..., LiveclassServer], clients: list[ClassroomClient]
) -> None:
    """mediasoup's listenIp 0.0.0.0 + announcedIp: the SFU binds the wildcard address and every
    host candidate it hands out names the announced one (here loopback, the only address a
    test may use), so the peers connect to it and nothing else."""
    sfu = make_server(
        "--sfu-listen-ips", "0.0.0.0", "--sfu-announced-ip", "127.0.0.1", "--rate-per-s", "200"
    )
    subscriber = Subscriber(await joined(sfu, clients, "watcher"))
    offers: list[str] = []
    subscriber.client.media_offer_listeners.append(lambda msg: offers.append(msg["sdp"]))
    await subscriber.start()
    publisher = Publisher(await joined(sfu, clients, "teacher"))
    try:
        await publisher.start(microphone=False)
        await until(lambda: sum(subscriber.frames("video")) >= 30, 20, "video at the watcher")
        answer = publisher.pc.remoteDescription.sdp
        for sdp in (answer, *offers):
            candidates = re.findall(r"a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ (\S+)", sdp)
            assert candidates and set(candidates) == {("127.0.0.1", "host")}, candidates
        assert subscriber.decode_errors == 0
    finally:
        await publisher.close()
        await subscriber.close()
