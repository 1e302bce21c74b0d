"""What the media tests share: loopback-only ICE in this process, joining with media grants, and
bounded waits, and watchers that attribute every decoded frame to its publisher. Use
``pytestmark = pytest.mark.usefixtures("loopback_ice")`` and import the fixtures
(``loopback_ice``, ``peers_fixture``) into the test module."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from clients import ClassroomClient
from loadtest.impair import UdpPortMap, rewrite_candidates
from loadtest.media_bot import PatternVideoTrack, Publisher
from rooms import Role
from sfu.ice import use_host_addresses
from signaling.auth import Grants, mint
from tests.server import LiveclassServer


@pytest.fixture
def loopback_ice() -> Iterator[None]:
    """Every aiortc peer of this process gathers ICE candidates on 127.0.0.1 only."""
    use_host_addresses(["127.0.0.1"])
    yield
    use_host_addresses(None)


async def joined(
    server: LiveclassServer,
    made: list[Any],
    identity: str,
    room: str = "class",
    role: str | None = None,
    **grants: bool,
) -> ClassroomClient:
    """A connected client of ``room`` (appended to ``made`` to be closed); the role is the
    teacher's for identity ``"teacher"``, else a student's; ``grants`` are the token's media
    grants (``can_publish``, ``can_subscribe``)."""
    role = role or ("teacher" if identity == "teacher" else "student")
    token = mint(
        server.keyring,
        identity=identity,
        name=identity,
        grants=Grants(room, Role(role), **grants),
        ttl_s=600,
    )
    client = ClassroomClient(server.ws_url, token, room)
    made.append(client)
    await client.connect()
    return client


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait (polling every 50 ms) until ``condition()`` holds; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


#: Frames a stopped stream may still deliver (in flight and in the jitter buffer) in a window.
STRAGGLERS = 5


class Watcher:
    """Subscribes through ``client`` and decodes everything; ``frames`` counts decoded frames by
    ``(identity, source)`` of the producer the m-line carries in the latest offer."""

    def __init__(self, client: ClassroomClient) -> None:
        self.client = client
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.producers: dict[str, dict[str, str]] = {}
        self.frames: Counter[tuple[str, str]] = Counter()
        self.offers: list[str] = []
        #: Everyone whose media any offer so far forwarded.
        self.seen: set[str] = set()
        self._lock = asyncio.Lock()
        #: Called as ``listener((identity, source), frame)`` with each decoded frame.
        self.frame_listeners: list[Callable[[tuple[str, str], Any], None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.pc.on("track", self._on_track)
        client.media_offer_listeners.append(self._on_offer)

    async def start(self) -> None:
        await self.client.subscribe_media()

    def identities(self) -> set[str]:
        """Whose media the latest offer forwards."""
        return {p["identity"] for p in self.producers.values()}

    def connection(self) -> set[tuple[int, int, tuple[str, int], tuple[str, int]]]:
        """What identifies the connection's transports: each DTLS transport's object id, and its
        ICE transport's object id and nominated candidate pair (local and remote address). A new
        ICE or DTLS session (an ICE restart, a new peer connection) changes it."""
        found = set()
        for transceiver in self.pc.getTransceivers():
            dtls = transceiver.receiver.transport
            ice = dtls.transport
            pair = ice._connection._nominated.get(1)
            if pair is None:
                continue
            local, remote = pair.local_candidate, pair.remote_candidate
            found.add((id(dtls), id(ice), (local.host, local.port), (remote.host, remote.port)))
        return found

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_offer(self, msg: dict[str, Any]) -> None:
        self._spawn(self._answer(msg))

    async def _answer(self, msg: dict[str, Any]) -> None:
        async with self._lock:
            self.offers.append(msg["sdp"])
            await self.pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            self.producers = msg["producers"]
            self.seen |= self.identities()
            await self.client.answer_media(msg["version"], self.pc.localDescription.sdp)

    def _on_track(self, track: Any) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        self._spawn(self._consume(track, transceiver))

    async def _consume(self, track: Any, transceiver: Any) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                producer = self.producers.get(str(transceiver.mid))
                if producer is not None:
                    key = (producer["identity"], producer["source"])
                    self.frames[key] += 1
                    for listener in tuple(self.frame_listeners):
                        listener(key, frame)

    async def close(self) -> None:
        for task in tuple(self._tasks):
            task.cancel()
        await self.pc.close()


class ImpairedWatcher(Watcher):
    """A :class:`Watcher` whose media crosses a UDP proxy per SFU candidate
    (:class:`loadtest.impair.UdpPortMap`): the SFU's candidates in each offer are rewritten to
    the proxies, so every packet both ways crosses the shaped link."""

    def __init__(self, client: ClassroomClient, ports: UdpPortMap) -> None:
        super().__init__(client)
        self.ports = ports

    async def _answer(self, msg: dict[str, Any]) -> None:
        async with self._lock:
            mapping = await self.ports.cover(msg["sdp"])
            sdp = rewrite_candidates(msg["sdp"], mapping)
            self.offers.append(sdp)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            self.producers = msg["producers"]
            self.seen |= self.identities()
            await self.client.answer_media(msg["version"], self.pc.localDescription.sdp)


@pytest.fixture(name="peers")
async def peers_fixture() -> AsyncIterator[list[Any]]:
    """Clients, publishers and watchers made by a test; all closed after it."""
    made: list[Any] = []
    yield made
    for peer in reversed(made):
        with contextlib.suppress(Exception):
            await peer.close()


async def publishing(
    client: ClassroomClient, peers: list[Any], microphone: bool = False
) -> Publisher:
    publisher = Publisher(client)
    publisher.video = PatternVideoTrack(320, 240)
    peers.append(publisher)
    await publisher.start(camera=True, microphone=microphone)
    return publisher


async def watching(client: ClassroomClient, peers: list[Any]) -> Watcher:
    watcher = Watcher(client)
    peers.append(watcher)
    await watcher.start()
    return watcher


async def flowing(watcher: Watcher, key: tuple[str, str], frames: int = 20) -> None:
    """``frames`` more frames of ``key`` arrive at ``watcher`` (within 10 s)."""
    start = watcher.frames[key]
    await until(lambda: watcher.frames[key] >= start + frames, 10, f"{key} flowing")


async def stopped(watcher: Watcher, key: tuple[str, str]) -> None:
    """``key`` stops arriving at ``watcher``: within 3 s no frame comes for half a second (a
    live stream brings one every 20-133 ms, a base layer too), and then a 1 s window brings at
    most a few stragglers (a live 30 fps stream brings ~30)."""
    deadline = time.monotonic() + 3.0
    last, quiet_since = watcher.frames[key], time.monotonic()
    while time.monotonic() - quiet_since < 0.5:
        assert time.monotonic() < deadline, f"{key} still forwarded"
        await asyncio.sleep(0.05)
        if watcher.frames[key] != last:
            last, quiet_since = watcher.frames[key], time.monotonic()
    await asyncio.sleep(1.0)
    assert watcher.frames[key] - last <= STRAGGLERS, f"{key} still forwarded"


def ice_session(sdp: str) -> tuple[str, str]:
    """The ICE username fragment and DTLS fingerprint of an SDP (new ones: a new connection)."""
    ufrag = re.search(r"a=ice-ufrag:(\S+)", sdp)
    fingerprint = re.search(r"a=fingerprint:(.+)", sdp)
    assert ufrag is not None and fingerprint is not None
    return ufrag.group(1), fingerprint.group(1).strip()
