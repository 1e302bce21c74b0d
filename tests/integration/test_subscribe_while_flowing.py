"""A subscriber whose connection takes a while to come up gets every stream in the codec it
answered, even when the SFU offers it more in the meantime.

aiortc starts the SFU's sender for an m-line once DTLS is up, with the codecs the transceiver
holds at that moment. A renegotiation's ``createOffer`` in between (a second publisher arrives
before the first's streams reach the subscriber) resets them to everything offered, redundant
audio (RED) first, so without care the sender starts sending RED to a subscriber that answered
Opus alone, and that subscriber never hears the first publisher (sfu/transport.py keeps each
sender to the codecs of the answer).

Real aiortc peers (they do not take RED) and a real server; the subscribers' media crosses a
:class:`loadtest.impair.UdpPortMap` with 150 ms each way, so each connection comes up 0.6 s or
more after its answer; a second publisher comes in the meantime, and the subscriber answers the
offer that brings it only after its connection is up.
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
    until,
)
from tests.server import LiveclassServer

__all__ = ["loopback_ice", "peers_fixture"]

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("loopback_ice")]

FAR = Impairment(up=LinkShape(delay_ms=150), down=LinkShape(delay_ms=150))


class SlowToAnswer(ImpairedWatcher):
    """Answers every offer after the first only once its connection is up (a busy phone): the
    SFU's senders of the first offer start between that offer and its answer."""

    async def _answer(self, msg: dict[str, Any]) -> None:
        if self.offers:
            await until(lambda: self.pc.connectionState == "connected", 10, "connected")
            await asyncio.sleep(0.3)
        await super()._answer(msg)


@pytest.fixture
async def ports() -> AsyncIterator[UdpPortMap]:
    ports = UdpPortMap((), FAR, seed=18)
    yield ports
    await ports.close()


async def test_a_far_subscriber_offered_more_before_its_connection_is_up_hears_everyone(
    sfu: LiveclassServer, peers: list[Any], ports: UdpPortMap
) -> None:
    first = await joined(sfu, peers, "first", can_publish=True)
    second = await joined(sfu, peers, "second", can_publish=True)
    client = await joined(sfu, peers, "far", can_subscribe=True)
    await publishing(first, peers, microphone=True)
    far = SlowToAnswer(client, ports)
    peers.append(far)
    await far.start()
    # The first offer is answered; the connection is not up yet when the second comes.
    await until(lambda: len(far.producers) == 2, 5, "the first publisher offered")
    await publishing(second, peers, microphone=True)
    for identity in ("first", "second"):
        await flowing(far, (identity, "microphone"), frames=50)
        await flowing(far, (identity, "camera"))
