"""A subscriber that names the same lost packets again and again (NACK, RFC 4585 section 6.2.1)
gets each resent a few times at most, not once per NACK (sfu/nack.py).

Real aiortc peers and a real server. The subscriber is an aiortc peer that, besides receiving,
sends a NACK every 20 ms naming the last 100 packets of the teacher's video: what a receiver on a
lossy link does when its NACKs keep failing, or one that wants to make the SFU send its whole
history back. The SFU resends through RTX (RFC 4588), so each resend is counted on the RTX
stream apart from the video's own packets.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from typing import Any

import pytest

from sfu.nack import MAX_RESENDS
from tests.integration.media_peers import (
    flowing,
    joined,
    loopback_ice,
    peers_fixture,
    publishing,
    until,
    watching,
)
from tests.server import LiveclassServer

__all__ = ["loopback_ice", "peers_fixture"]

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("loopback_ice")]

#: The storm: a NACK every :data:`EVERY_S` naming the last :data:`NAMED` packets, for
#: :data:`STORM_S`.
EVERY_S = 0.02
NAMED = 100
STORM_S = 2.0


async def test_packets_named_again_and_again_are_resent_a_few_times_not_once_per_nack(
    sfu: LiveclassServer, peers: list[Any]
) -> None:
    teacher = await joined(sfu, peers, "teacher", can_publish=True)
    student = await joined(sfu, peers, "student", can_subscribe=True)
    await publishing(teacher, peers)
    watcher = await watching(student, peers)
    camera = ("teacher", "camera")
    await flowing(watcher, camera)

    # The video's stream and its RTX stream, as the SFU's offer pairs them (RFC 4588 FID).
    groups = re.findall(r"a=ssrc-group:FID (\d+) (\d+)", watcher.offers[-1])
    assert len(groups) == 1, "the SFU offers the video with RTX"
    media_ssrc, rtx_ssrc = (int(ssrc) for ssrc in groups[0])
    [receiver] = [
        t.receiver for t in watcher.pc.getTransceivers() if t.receiver.track.kind == "video"
    ]
    arrived: Counter[int] = Counter()
    highest = {"seq": -1}
    handle = receiver._handle_rtp_packet

    async def counting(packet: Any, arrival_time_ms: int) -> None:
        arrived[packet.ssrc] += 1
        if packet.ssrc == media_ssrc:
            highest["seq"] = packet.sequence_number
        await handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = counting
    await until(lambda: highest["seq"] >= 0, 5, "the video's packets counted")

    before = Counter(arrived)
    named: set[int] = set()
    nacks = 0
    end = time.monotonic() + STORM_S
    while time.monotonic() < end:
        lost = [(highest["seq"] - back) & 0xFFFF for back in range(NAMED, 0, -1)]
        named.update(lost)
        await receiver._send_rtcp_nack(media_ssrc, lost)
        nacks += 1
        await asyncio.sleep(EVERY_S)
    await asyncio.sleep(0.5)  # the last resends arrive
    video = arrived[media_ssrc] - before[media_ssrc]
    resent = arrived[rtx_ssrc] - before[rtx_ssrc]
    print(
        f"\n{nacks} NACKs named {nacks * NAMED} packets ({len(named)} distinct); "
        f"{video} video packets came, {resent} resent"
    )
    # A storm: each packet was named again and again (unlimited, each NACK would bring its 100
    # packets back, as aiortc keeps the last 128: thousands of resends).
    assert nacks * NAMED >= 10 * len(named)
    # Each packet named was resent, at most MAX_RESENDS times.
    assert resent >= min(len(named), video) * 0.9, "the NACKs were not answered"
    assert resent <= MAX_RESENDS * len(named)
    # And the video went on.
    await flowing(watcher, camera)
