"""The SFU answers ICE checks and starts none (issue 12, item 10): a real ``liveclass serve``, real
aiortc peers.

A client that names candidates, in its SDP or trickled with ``media.candidate``, must not make the
SFU send anything to them. Every decoy candidate here is a UDP socket of this test on 127.0.0.1
(the network rule: no packet ever leaves loopback, even on a server without the fix), listed first
and at the highest priority so that an SFU that checks the client's candidates checks them first.
The peers still connect, through the peer-reflexive candidates the SFU learns from their checks,
and media flows; no decoy receives a single datagram.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aioice import stun

from clients import ClassroomClient
from loadtest.media_bot import Publisher, Subscriber
from tests.integration.media_peers import joined, loopback_ice, until  # noqa: F401
from tests.server import LiveclassServer

pytestmark = [pytest.mark.usefixtures("loopback_ice"), pytest.mark.timeout(120)]

DECOYS_PER_SDP = 12


class Decoy(asyncio.DatagramProtocol):
    """A UDP socket on 127.0.0.1 that counts what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, Any]] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append((data, addr))


@pytest.fixture
async def decoys() -> AsyncIterator[list[tuple[Decoy, int]]]:
    loop = asyncio.get_running_loop()
    made: list[tuple[asyncio.DatagramTransport, Decoy, int]] = []
    for _ in range(2 * DECOYS_PER_SDP + 2):
        transport, decoy = await loop.create_datagram_endpoint(Decoy, local_addr=("127.0.0.1", 0))
        made.append((transport, decoy, transport.get_extra_info("sockname")[1]))
    yield [(decoy, port) for _, decoy, port in made]
    for transport, _, _ in made:
        transport.close()


def candidate_line(foundation: str, port: int) -> str:
    return f"a=candidate:{foundation} 1 udp 2130706431 127.0.0.1 {port} typ host"


def with_decoys(sdp: str, ports: list[int]) -> str:
    """``sdp`` with a candidate for each port before the first m-section's own candidates."""
    lines = "".join(candidate_line(f"decoy{port}", port) + "\r\n" for port in ports)
    first = sdp.index("a=candidate:")
    return sdp[:first] + lines + sdp[first:]


async def test_the_sfu_sends_nothing_to_candidates_a_client_names(
    sfu: LiveclassServer,
    clients: list[ClassroomClient],
    decoys: list[tuple[Decoy, int]],
) -> None:
    ports = [port for _, port in decoys]
    publish_decoys, subscribe_decoys = ports[:DECOYS_PER_SDP], ports[DECOYS_PER_SDP:-2]

    watcher = await joined(sfu, clients, "watcher")
    answer_media = watcher.answer_media

    async def answer_with_decoys(version: int, sdp: str) -> None:
        await answer_media(version, with_decoys(sdp, subscribe_decoys))

    watcher.answer_media = answer_with_decoys  # type: ignore[method-assign]
    subscriber = Subscriber(watcher)
    await subscriber.start()

    teacher = await joined(sfu, clients, "teacher")
    publish_media = teacher.publish_media

    async def publish_with_decoys(sdp: str, sources: dict[str, str]) -> str:
        return await publish_media(with_decoys(sdp, publish_decoys), sources)

    teacher.publish_media = publish_with_decoys  # type: ignore[method-assign]
    publisher = Publisher(teacher)
    try:
        await publisher.start(microphone=False)
        offer = publisher.pc.localDescription.sdp
        mid = re.findall(r"a=mid:(\S+)", offer)[0]
        for port in ports[-2:]:  # trickled too: acknowledged, and never used
            await teacher.request(
                "media.candidate",
                transport="publish",
                candidate=candidate_line("trickled", port).removeprefix("a="),
                sdp_mid=mid,
            )
        await until(lambda: sum(subscriber.frames("video")) >= 30, 20, "video at the watcher")
        await asyncio.sleep(1.5)  # an SFU checking candidates would have hit them by now
        hit = {port: len(decoy.received) for decoy, port in decoys if decoy.received}
        assert hit == {}, f"the SFU sent datagrams to candidates a client named: {hit}"
        assert subscriber.decode_errors == 0
        # Participants' addresses are logged at debug only (the server runs at info).
        logged = [line for line in sfu.log().splitlines() if "127.0.0.1" in line]
        assert not any("andidate" in line for line in logged), logged
    finally:
        await publisher.close()
        await subscriber.close()


def ice_credentials(sdp: str) -> tuple[str, str, int]:
    """The ICE ufrag, password and (first) host candidate port of an SDP."""
    ufrag = re.search(r"a=ice-ufrag:(\S+)", sdp)
    pwd = re.search(r"a=ice-pwd:(\S+)", sdp)
    port = re.search(r"a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host", sdp)
    assert ufrag and pwd and port, sdp
    return ufrag.group(1), pwd.group(1), int(port.group(1))


@pytest.mark.parametrize("limit", [8, 3])
async def test_the_sfu_answers_checks_from_a_bounded_number_of_addresses(
    make_server: Callable[..., LiveclassServer],
    clients: list[ClassroomClient],
    limit: int,
) -> None:
    """A client that sends authenticated checks from many ports (or spoofs their source) gets
    answers, and triggered checks back, for at most ``--sfu-ice-max-addresses`` (8 by default)
    addresses per connection, its own included."""
    flag = () if limit == 8 else ("--sfu-ice-max-addresses", str(limit))
    sfu = make_server("--sfu-listen-ips", "127.0.0.1", *flag)
    publisher = Publisher(await joined(sfu, clients, "teacher"))
    try:
        await publisher.start(microphone=False)
        await until(lambda: publisher.pc.connectionState == "connected", 10, "connected")
        sfu_ufrag, sfu_pwd, sfu_port = ice_credentials(publisher.pc.remoteDescription.sdp)
        client_ufrag = re.findall(r"a=ice-ufrag:(\S+)", publisher.pc.localDescription.sdp)[0]
        loop = asyncio.get_running_loop()
        transports = [
            await loop.create_datagram_endpoint(Decoy, local_addr=("127.0.0.1", 0))
            for _ in range(16)
        ]
        try:
            for transport, _ in transports:
                request = stun.Message(
                    message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST
                )
                request.attributes["USERNAME"] = f"{sfu_ufrag}:{client_ufrag}"
                request.attributes["PRIORITY"] = 1853824767
                request.attributes["ICE-CONTROLLING"] = 1
                request.add_message_integrity(sfu_pwd.encode())
                request.add_fingerprint()
                transport.sendto(bytes(request), ("127.0.0.1", sfu_port))
            await asyncio.sleep(1.0)
            answered = 0
            for _, checker in transports:
                messages = [stun.parse_message(data) for data, _ in checker.received]
                if any(m.message_class == stun.Class.RESPONSE for m in messages):
                    answered += 1
            print(f"\nchecks from 16 new addresses: {answered} answered")
            assert answered == limit - 1, f"{answered} of 16 addresses answered"
        finally:
            for transport, _ in transports:
                transport.close()
    finally:
        await publisher.close()
