"""The media scenario's bot process: aiortc publishers and subscribers (loadtest/media_bot.py) of
the swarm's rooms, on asyncio, beside locust (which runs gevent, where asyncio does not run).

The locustfile starts one or more of these at the test's start and stops them at its stop
(``--media-publishers``, ``--media-subscribers``); it can also run alone:

    LIVECLASS_SECRETS=k1:... python -m loadtest.media_swarm --ws-url ws://127.0.0.1:8080/ws \\
        --rooms 1 --publishers 2 --subscribers 10 --max-s 30

Each bot joins its room over ``/ws`` with a token minted in this process (loadtest/tokens.py);
publishers (staff, so they publish in any media mode) send a synthetic camera (VP8) and
microphone (Opus), subscribers subscribe to everything and decode it. The process writes one
JSON object per line on stdout:

- ``{"t": "join", "bot", "role", "ms", "error"}``: a bot's join (``error`` null when it joined);
- ``{"t": "bot", ...}``: at the end, each bot's measures (see :func:`subscriber_report` and
  :func:`publisher_report`).
- ``{"t": "done"}`` last.

It stops on SIGINT or SIGTERM, after ``--max-s``, or with ``--stop-on-eof`` when its stdin
closes (the locust process that started it is gone); then it reports and closes every peer
connection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.stats import (
    RTCInboundRtpStreamStats,
    RTCOutboundRtpStreamStats,
    RTCTransportStats,
)

from clients import ClassroomClient
from loadtest.media_bot import PatternVideoTrack, Publisher, Subscriber
from loadtest.tokens import TokenMinter


@dataclass(frozen=True)
class BotSpec:
    """One bot: its room, role in the scenario (``publisher``/``subscriber``) and number."""

    room: str
    role: str
    n: int

    @property
    def identity(self) -> str:
        return f"media-{self.role[:3]}-{self.room}-{self.n}"


def bot_specs(rooms: list[str], publishers: int, subscribers: int) -> list[BotSpec]:
    """Every bot of the scenario, subscribers first in each room (they then see each producer
    appear, so the time to first frame counts from the offer naming it)."""
    out: list[BotSpec] = []
    for room in rooms:
        out += [BotSpec(room, "subscriber", i) for i in range(subscribers)]
        out += [BotSpec(room, "publisher", i) for i in range(publishers)]
    return out


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


@dataclass
class Bot:
    spec: BotSpec
    client: ClassroomClient
    publisher: Publisher | None = None
    subscriber: Subscriber | None = None
    #: producer id -> when the first ``media.offer`` naming it arrived (monotonic s).
    offered: dict[str, float] = field(default_factory=dict)
    #: producer id -> when its first frame was decoded (monotonic s).
    first_frames: dict[str, float] = field(default_factory=dict)

    def on_offer(self, msg: dict[str, Any]) -> None:
        now = time.monotonic()
        for producer in (msg.get("producers") or {}).values():
            self.offered.setdefault(str(producer.get("producer_id")), now)


async def _stats(pc: RTCPeerConnection) -> tuple[int, int, int, int]:
    """(bytes received, bytes sent, RTP packets received, RTP packets lost) of a connection."""
    received = sent = packets = lost = 0
    with contextlib.suppress(Exception):
        for stat in (await pc.getStats()).values():
            if isinstance(stat, RTCTransportStats):
                received += stat.bytesReceived
                sent += stat.bytesSent
            elif isinstance(stat, RTCInboundRtpStreamStats):
                packets += stat.packetsReceived
                lost += max(0, stat.packetsLost)
    return received, sent, packets, lost


async def subscriber_report(bot: Bot, publishers: int, now: float) -> dict[str, Any]:
    """A subscriber's measures: per producer (identity, kind) the frames decoded, the decoded
    frames per second from its first frame to now, and the time from the offer naming it to its
    first decoded frame; the bytes and RTP packets its connection received; decode errors; and
    ``missing``: how many of the room's publishers' video it decoded no frame of."""
    sub = bot.subscriber
    assert sub is not None
    tracks = []
    videos_from: set[str] = set()
    for producer_id, got in sub.received.items():
        first = None if got.first_frame_s is None else sub.started + got.first_frame_s
        offered = bot.offered.get(producer_id)
        span = None if first is None else now - first
        tracks.append(
            {
                "producer": producer_id,
                "identity": got.producer.get("identity"),
                "kind": got.producer.get("kind"),
                "frames": got.frames,
                "fps": (got.frames - 1) / span if span and got.frames > 1 else 0.0,
                "first_frame_ms": (
                    None
                    if first is None
                    else (first - (offered if offered is not None else sub.started)) * 1000
                ),
                "sizes": sorted(list(s) for s in got.sizes),
            }
        )
        if got.producer.get("kind") == "video" and got.frames > 0:
            videos_from.add(str(got.producer.get("identity")))
    received, _, packets, lost = await _stats(sub.pc)
    return {
        "t": "bot",
        "role": "subscriber",
        "bot": bot.spec.identity,
        "room": bot.spec.room,
        "tracks": tracks,
        "bytes_received": received,
        "packets_received": packets,
        "packets_lost": lost,
        "decode_errors": sub.decode_errors,
        "resets": sub.resets,
        "rejoins": sub.rejoins,
        "missing": max(0, publishers - len(videos_from)),
    }


async def publisher_report(bot: Bot) -> dict[str, Any]:
    pub = bot.publisher
    assert pub is not None
    _, sent, _, _ = await _stats(pub.pc)
    packets: dict[str, int] = {}
    with contextlib.suppress(Exception):
        for stat in (await pub.pc.getStats()).values():
            if isinstance(stat, RTCOutboundRtpStreamStats):
                packets[stat.kind] = packets.get(stat.kind, 0) + stat.packetsSent
    return {
        "t": "bot",
        "role": "publisher",
        "bot": bot.spec.identity,
        "room": bot.spec.room,
        "bytes_sent": sent,
        "packets_sent": packets,
        "resets": pub.resets,
        "rejoins": pub.rejoins,
    }


async def start_bot(
    spec: BotSpec, url: str, minter: TokenMinter, opts: argparse.Namespace
) -> Bot | None:
    """Join and publish or subscribe; report the join. None when it failed."""
    role = "assistant" if spec.role == "publisher" else "student"
    token = minter.token(
        spec.room,
        spec.identity,
        role,
        ttl_s=4 * 3600,
        can_publish=spec.role == "publisher",
        can_subscribe=spec.role == "subscriber",
    )
    client = ClassroomClient(url, token, spec.room)
    started = time.perf_counter()
    try:
        await client.connect()
        bot = Bot(spec, client)
        if spec.role == "publisher":
            video = PatternVideoTrack(opts.width, opts.height, opts.fps)
            bot.publisher = Publisher(client, video=video)
            await bot.publisher.start(camera=True, microphone=opts.audio)
        else:
            client.media_offer_listeners.append(bot.on_offer)
            bot.subscriber = Subscriber(client)
            await bot.subscriber.start()
    except Exception as exc:  # every failure of a bot is reported, none stops the others
        emit({"t": "join", "bot": spec.identity, "role": spec.role, "ms": None, "error": repr(exc)})
        with contextlib.suppress(Exception):
            await client.close()
        return None
    ms = (time.perf_counter() - started) * 1000
    emit({"t": "join", "bot": spec.identity, "role": spec.role, "ms": ms, "error": None})
    return bot


async def _stop_signal(max_s: float, stdin: bool) -> None:
    """Until SIGINT/SIGTERM, ``max_s``, or (with ``stdin``) stdin's end."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def watch_stdin() -> None:
        with contextlib.suppress(Exception):
            sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    if stdin:
        # a daemon thread: asyncio.run's end does not wait for it as it would for an executor's
        threading.Thread(target=watch_stdin, name="stdin watch", daemon=True).start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max_s)


async def run(opts: argparse.Namespace) -> None:
    if opts.ice_addresses:
        from sfu.ice import use_host_addresses

        use_host_addresses(opts.ice_addresses.split(","))
    minter = TokenMinter.from_environment()
    rooms = opts.room.split(",")
    specs = bot_specs(rooms, opts.publishers, opts.subscribers)
    mine = [s for i, s in enumerate(specs) if i % opts.of == opts.index]
    starting = asyncio.gather(*(start_bot(s, opts.ws_url, minter, opts) for s in mine))
    stopping = asyncio.ensure_future(_stop_signal(opts.max_s, opts.stop_on_eof))
    bots: list[Bot] = []
    waiting: list[asyncio.Future[Any]] = [starting, stopping]
    done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    if starting in done:
        bots = [b for b in starting.result() if b is not None]
        await stopping
    else:
        starting.cancel()
        with contextlib.suppress(BaseException):
            await starting
    now = time.monotonic()
    for bot in bots:
        if bot.subscriber is not None:
            emit(await subscriber_report(bot, opts.publishers, now))
        else:
            emit(await publisher_report(bot))
    emit({"t": "done"})
    for bot in bots:
        with contextlib.suppress(Exception):
            if bot.subscriber is not None:
                await bot.subscriber.close()
            if bot.publisher is not None:
                await bot.publisher.close()
            await bot.client.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m loadtest.media_swarm", description=__doc__)
    p.add_argument("--ws-url", required=True, help="the server's /ws URL")
    p.add_argument("--room", default="lt-0", help="comma list of rooms")
    p.add_argument("--publishers", type=int, default=1, help="per room")
    p.add_argument("--subscribers", type=int, default=1, help="per room")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--fps", type=float, default=15.0)
    p.add_argument("--no-audio", dest="audio", action="store_false", help="publish no microphone")
    p.add_argument(
        "--ice-addresses",
        default="",
        help="gather ICE candidates only on these addresses (comma list; '' = aiortc's default)",
    )
    p.add_argument("--max-s", type=float, default=3600.0, help="stop by itself after this")
    p.add_argument(
        "--stop-on-eof", action="store_true", help="stop when stdin closes (the parent is gone)"
    )
    p.add_argument("--index", type=int, default=0, help="this process's share of the bots")
    p.add_argument("--of", type=int, default=1, help="bot processes in all")
    opts = p.parse_args(argv)
    asyncio.run(run(opts))


if __name__ == "__main__":
    main()
