"""How a ``bench.sfu`` media peer talks to each SFU under test: one class per side, same methods.

- :class:`LiveclassSignaling`: liveclass's ``/ws`` through the SDK (``clients/sdk.py``):
  ``media.publish`` (the peer offers), ``media.subscribe`` then ``media.offer`` / ``media.answer``
  (the SFU offers). docs/protocol.md, "Media".
- :class:`RelaySignaling`: the MediaRelay reference peer (``bench/peers/mediarelay/relay.py``): the
  peer offers in both directions over plain HTTP (``POST /publish``, ``/subscribe``,
  ``/unsubscribe``, JSON ``{sdp}``).
- :class:`JanusSignaling`: Janus's HTTP API (sessions, handles, long-poll events) and the VideoRoom
  plugin: ``join`` as publisher + ``publish`` with the offer; ``join`` as subscriber to the
  publisher's feed (Janus offers) + ``start`` with the answer.

Every side is used the same way: :meth:`connect` (not timed: the WebSocket join, the Janus session
and handle), then :meth:`publish` or :meth:`subscribe` (timed from its call in the time-to-first-
frame trials), then :meth:`close`. No ICE candidate is trickled: aiortc puts them all in its SDP.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription

from clients import ClassroomClient

#: Janus VideoRoom's "No such feed": the publisher's connection is not up yet (retry).
JANUS_NO_SUCH_FEED = 428


class SignalingError(RuntimeError):
    """The SFU refused or did not answer a signaling step."""


class LiveclassSignaling:
    """One participant on liveclass's ``/ws`` (``url``, ``room``, ``token``)."""

    def __init__(self, url: str, room: str, token: str) -> None:
        self.client = ClassroomClient(url, token, room, reconnect=False)
        #: Applied to each of the SFU's offers before it is answered (``bench.bad_network`` puts
        #: the media on an impaired path by rewriting its candidates).
        self.remote_sdp: Callable[[str], Awaitable[str]] | None = None
        self._pc: RTCPeerConnection | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.answered = asyncio.Event()

    async def connect(self) -> None:
        await self.client.connect()

    async def publish(self, pc: RTCPeerConnection) -> dict[str, Any]:
        """Offer ``pc``'s transceivers, each video m-line labelled ``camera``, each audio one
        ``microphone``."""
        await pc.setLocalDescription(await pc.createOffer())
        label = {"video": "camera", "audio": "microphone"}
        sources = {str(t.mid): label[t.kind] for t in pc.getTransceivers()}
        answer = await self.client.publish_media(pc.localDescription.sdp, sources)
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        return {}

    async def subscribe(self, pc: RTCPeerConnection) -> None:
        """Send ``media.subscribe``; every ``media.offer`` that follows is answered on ``pc``."""
        self._pc = pc
        self.client.media_offer_listeners.append(self._on_offer)
        await self.client.subscribe_media()

    def _on_offer(self, msg: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg: dict[str, Any]) -> None:
        pc = self._pc
        assert pc is not None
        async with self._lock:
            sdp = msg["sdp"] if self.remote_sdp is None else await self.remote_sdp(msg["sdp"])
            await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await self.client.answer_media(msg["version"], pc.localDescription.sdp)
        self.answered.set()

    async def close(self) -> None:
        for task in tuple(self._tasks):
            task.cancel()
        await self.client.close()


class RelaySignaling:
    """A peer of the MediaRelay reference (``base``: ``http://127.0.0.1:<port>``)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self._http: aiohttp.ClientSession | None = None
        self._subscription: str | None = None

    async def connect(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self._http is not None
        async with self._http.post(self.base + path, json=body) as response:
            if response.status != 200:
                raise SignalingError(f"{path}: HTTP {response.status} {await response.text()}")
            result: dict[str, Any] = await response.json()
            return result

    async def publish(self, pc: RTCPeerConnection) -> dict[str, Any]:
        await pc.setLocalDescription(await pc.createOffer())
        answer = await self._post("/publish", {"sdp": pc.localDescription.sdp})
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        return {}

    async def subscribe(self, pc: RTCPeerConnection) -> None:
        """Offer one ``recvonly`` video m-line; the relay answers with a relayed track."""
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        answer = await self._post("/subscribe", {"sdp": pc.localDescription.sdp})
        self._subscription = answer["id"]
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    async def close(self) -> None:
        # Tell the relay: aiortc has no consent freshness, so it would go on encoding for a
        # subscriber that went away.
        if self._http is None:
            return
        try:
            if self._subscription is not None:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, SignalingError):
                    await self._post("/unsubscribe", {"id": self._subscription})
        finally:
            await self._http.close()


class JanusSignaling:
    """A Janus VideoRoom handle over the HTTP API (``base``: ``http://127.0.0.1:<port>/janus``);
    a subscriber's handle subscribes to the publisher's ``feed`` id."""

    _transactions = itertools.count(1)

    def __init__(self, base: str, room: int, feed: int | None = None) -> None:
        self.base = base
        self.room = room
        self.feed = feed
        self._http: aiohttp.ClientSession | None = None
        self._session_url = ""
        self._handle_url = ""
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._poll: asyncio.Task[None] | None = None

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self._http is not None
        async with self._http.post(url, json=body) as response:
            result: dict[str, Any] = await response.json(content_type=None)
        if result.get("janus") == "error":
            raise SignalingError(f"janus: {result.get('error')}")
        return result

    async def connect(self) -> None:
        """Create a session and attach a VideoRoom handle."""
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        created = await self._post(self.base, {"janus": "create", "transaction": self._tx()})
        self._session_url = f"{self.base}/{created['data']['id']}"
        self._poll = asyncio.get_running_loop().create_task(self._long_poll())
        attached = await self._post(
            self._session_url,
            {"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": self._tx()},
        )
        self._handle_url = f"{self._session_url}/{attached['data']['id']}"

    def _tx(self) -> str:
        return f"t{next(self._transactions)}"

    async def _long_poll(self) -> None:
        assert self._http is not None
        while True:
            async with self._http.get(self._session_url, params={"maxev": "10"}) as response:
                events = await response.json(content_type=None)
            for event in events if isinstance(events, list) else [events]:
                future = self._waiting.pop(event.get("transaction", ""), None)
                if future is not None and not future.done() and event.get("janus") == "event":
                    future.set_result(event)

    async def _message(self, body: dict[str, Any], jsep: dict[str, Any] | None = None) -> Any:
        """Send a plugin message; returns the plugin's event (its ``plugindata.data`` and
        ``jsep``), which arrives on the long poll after the ``ack``."""
        tx = self._tx()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[tx] = future
        msg: dict[str, Any] = {"janus": "message", "transaction": tx, "body": body}
        if jsep is not None:
            msg["jsep"] = jsep
        try:
            reply = await self._post(self._handle_url, msg)
            if reply.get("janus") == "success":  # synchronous requests answer at once
                return reply
            async with asyncio.timeout(20):
                return await future
        finally:
            self._waiting.pop(tx, None)

    @staticmethod
    def _data(event: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = event.get("plugindata", {}).get("data", {})
        return data

    async def publish(self, pc: RTCPeerConnection) -> dict[str, Any]:
        """Join the room as its publisher and publish ``pc``'s offer; returns ``{feed}``."""
        joined = self._data(
            await self._message({"request": "join", "ptype": "publisher", "room": self.room})
        )
        if "error" in joined:
            raise SignalingError(f"janus join: {joined['error']}")
        await pc.setLocalDescription(await pc.createOffer())
        offer = {"type": "offer", "sdp": pc.localDescription.sdp, "trickle": False}
        event = await self._message({"request": "publish", "audio": False, "video": True}, offer)
        if "jsep" not in event:
            raise SignalingError(f"janus publish: {self._data(event)}")
        await pc.setRemoteDescription(RTCSessionDescription(event["jsep"]["sdp"], "answer"))
        return {"feed": joined["id"]}

    async def subscribe(self, pc: RTCPeerConnection, retry_s: float = 10.0) -> None:
        """Join as a subscriber of the ``feed`` (retrying "No such feed" until the publisher's
        connection is up), answer Janus's offer and ``start``."""
        deadline = time.monotonic() + retry_s
        while True:
            request = {
                "request": "join",
                "ptype": "subscriber",
                "room": self.room,
                "streams": [{"feed": self.feed}],
            }
            event = await self._message(request)
            data = self._data(event)
            if "jsep" in event:
                break
            if data.get("error_code") != JANUS_NO_SUCH_FEED or time.monotonic() > deadline:
                raise SignalingError(f"janus subscribe: {data}")
            await asyncio.sleep(0.1)
        await pc.setRemoteDescription(RTCSessionDescription(event["jsep"]["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = {"type": "answer", "sdp": pc.localDescription.sdp, "trickle": False}
        started = self._data(await self._message({"request": "start"}, answer))
        if started.get("started") != "ok":
            raise SignalingError(f"janus start: {started}")

    async def close(self) -> None:
        """Destroy the session (Janus hangs up its peer connections)."""
        if self._poll is not None:
            self._poll.cancel()
        if self._http is None:
            return
        try:
            if self._session_url:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, SignalingError):
                    await self._post(
                        self._session_url, {"janus": "destroy", "transaction": self._tx()}
                    )
        finally:
            await self._http.close()


Signaling = LiveclassSignaling | RelaySignaling | JanusSignaling


def for_participant(cfg: dict[str, Any], index: int) -> Signaling:
    """The signaling of the ``index``-th participant a peer process plays.

    ``cfg``: ``side`` and, for ``liveclass``, ``url``, ``room`` and ``tokens`` (one per
    participant); for ``mediarelay``, ``base``; for ``janus``, ``base``, ``room`` and (for a
    subscriber) ``feed``.

    Raises:
        ValueError: an unknown side.
    """
    side = cfg["side"]
    if side == "liveclass":
        return LiveclassSignaling(cfg["url"], cfg["room"], cfg["tokens"][index])
    if side == "mediarelay":
        return RelaySignaling(cfg["base"])
    if side == "janus":
        return JanusSignaling(cfg["base"], int(cfg["room"]), cfg.get("feed"))
    raise ValueError(f"unknown side {side!r}")
