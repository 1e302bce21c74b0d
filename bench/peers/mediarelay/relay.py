"""aiortc's MediaRelay as a reference SFU for bench/sfu.py.

    PYTHONPATH=. python bench/peers/mediarelay/relay.py PORT LISTEN_IP

What aiortc offers for fanning one track out to several peers: the publisher's track is received
and **decoded** (aiortc's receiver always decodes), ``aiortc.contrib.media.MediaRelay`` hands the
decoded frames to one proxy track per subscriber, and each subscriber's ``RTCRtpSender`` **encodes**
them again with its own VP8 encoder: one decode plus N encodes. Proxies are unbuffered
(``buffered=False``: a subscriber whose encoder falls behind gets the newest frame, not a growing
queue), as a live relay would use them.

Signaling is plain HTTP on 127.0.0.1, the peer offering in both directions (JSON bodies):
``POST /publish {sdp}`` -> ``{sdp}``; ``POST /subscribe {sdp}`` (one ``recvonly`` video m-line)
-> ``{sdp, id}``; ``POST /unsubscribe {id}``. ICE host candidates only on LISTEN_IP
(``sfu.ice.use_host_addresses``), no STUN/TURN. Prints ``ready PORT`` once listening; stops on
SIGTERM/SIGINT or when stdin closes (the harness died).
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import sys

import uvloop
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole, MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from sfu.ice import use_host_addresses


class Relay:
    """One published video track relayed to every subscriber."""

    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.source: MediaStreamTrack | None = None
        self.has_source = asyncio.Event()
        self.subscribers: dict[str, RTCPeerConnection] = {}
        self.others: set[RTCPeerConnection] = set()
        self._ids = itertools.count(1)
        # The remote track's queue is unbounded: something must read it even with no subscriber.
        self.sink = MediaBlackhole()

    @staticmethod
    def new_pc() -> RTCPeerConnection:
        return RTCPeerConnection(RTCConfiguration(iceServers=[]))

    async def publish(self, request: web.Request) -> web.Response:
        offer = await request.json()
        pc = self.new_pc()
        self.others.add(pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video" and self.source is None:
                self.source = track
                self.sink.addTrack(self.relay.subscribe(track, buffered=False))
                self.has_source.set()

        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await self.sink.start()
        return web.json_response({"sdp": pc.localDescription.sdp})

    async def subscribe(self, request: web.Request) -> web.Response:
        offer = await request.json()
        try:
            async with asyncio.timeout(10):
                await self.has_source.wait()
        except TimeoutError:
            raise web.HTTPConflict(text="nothing published") from None
        assert self.source is not None
        pc = self.new_pc()
        sub_id = f"s{next(self._ids)}"
        self.subscribers[sub_id] = pc
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        pc.addTrack(self.relay.subscribe(self.source, buffered=False))
        await pc.setLocalDescription(await pc.createAnswer())
        return web.json_response({"sdp": pc.localDescription.sdp, "id": sub_id})

    async def unsubscribe(self, request: web.Request) -> web.Response:
        body = await request.json()
        pc = self.subscribers.pop(str(body.get("id")), None)
        if pc is not None:
            await pc.close()
        return web.json_response({})

    async def close(self) -> None:
        await self.sink.stop()
        for pc in [*self.subscribers.values(), *self.others]:
            await pc.close()


async def main(port: int, listen_ip: str) -> None:
    use_host_addresses([listen_ip])
    relay = Relay()
    app = web.Application()
    app.router.add_post("/publish", relay.publish)
    app.router.add_post("/subscribe", relay.subscribe)
    app.router.add_post("/unsubscribe", relay.unsubscribe)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"ready {runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def stdin_closed() -> None:
        while await reader.read(4096):
            pass
        stop.set()

    watcher = asyncio.create_task(stdin_closed())
    try:
        await stop.wait()
    finally:
        watcher.cancel()
        await relay.close()
        await runner.cleanup()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"))
