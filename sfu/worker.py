"""The SFU Worker: one process's Routers and the participants' transports on them.

When embedded, one Worker runs inside ``liveclass serve`` (the signaling node calls it directly).
A Worker installs :mod:`sfu.passthrough` (it never decodes or encodes forwarded media) and, when
given ``listen_ips``, gathers ICE host candidates only on those addresses (:mod:`sfu.ice`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aiortc import RTCIceServer

from . import ice, passthrough
from .router import Producer, Router
from .transport import MediaError, PublishTransport, SubscribeTransport

log = logging.getLogger(__name__)


@dataclass
class Peer:
    """One connection's media: its publish and subscribe transports (either may be absent)."""

    peer_id: str
    router: Router
    identity: str
    publish: PublishTransport | None = None
    subscribe: SubscribeTransport | None = None


class Worker:
    """Routers by id (a room's id, or ``<room>/<breakout>``) and the peers on them.

    Args:
        listen_ips: the addresses ICE host candidates are gathered on (None: aioice's default,
            every address but 127.0.0.1). Tests pass ``["127.0.0.1"]``.
        ice_servers: STUN/TURN servers of the SFU's own peer connections (usually none).
    """

    def __init__(
        self,
        listen_ips: Sequence[str] | None = None,
        ice_servers: Sequence[RTCIceServer] = (),
    ) -> None:
        passthrough.install()
        if listen_ips is not None:
            ice.use_host_addresses(listen_ips)
        self.ice_servers = list(ice_servers)
        self.routers: dict[str, Router] = {}
        self.peers: dict[str, Peer] = {}

    def router(self, router_id: str) -> Router:
        router = self.routers.get(router_id)
        if router is None:
            router = self.routers[router_id] = Router(router_id)
        return router

    def peer(self, peer_id: str, router_id: str, identity: str) -> Peer:
        peer = self.peers.get(peer_id)
        if peer is None:
            peer = self.peers[peer_id] = Peer(peer_id, self.router(router_id), identity)
        return peer

    async def publish(
        self, peer_id: str, router_id: str, identity: str, offer: str, sources: Mapping[str, str]
    ) -> str:
        """Answer a publish offer (see :meth:`sfu.transport.PublishTransport.answer`).

        Raises:
            MediaError: the offer is refused; other peers' media is unaffected.
        """
        peer = self.peer(peer_id, router_id, identity)
        if peer.publish is None or peer.publish.closed:
            peer.publish = PublishTransport(peer.router, identity, self.ice_servers)
        return await peer.publish.answer(offer, sources)

    def subscribe(
        self,
        peer_id: str,
        router_id: str,
        identity: str,
        send_offer: Callable[[str, int, dict[str, dict[str, str]]], None],
        allowed: Callable[[Producer], bool] | None = None,
    ) -> None:
        """Start forwarding the Router's other producers to this peer; offers go to
        ``send_offer`` (see :class:`sfu.transport.SubscribeTransport`)."""
        peer = self.peer(peer_id, router_id, identity)
        if peer.subscribe is None or peer.subscribe.closed:
            peer.subscribe = SubscribeTransport(
                peer.router, identity, self.ice_servers, send_offer, allowed
            )
        peer.subscribe.update()

    async def answer(self, peer_id: str, version: int, sdp: str) -> None:
        """The peer's answer to subscribe offer ``version``.

        Raises:
            MediaError: ``no_transport`` (not subscribed), ``stale_answer``, ``bad_sdp``.
        """
        peer = self.peers.get(peer_id)
        if peer is None or peer.subscribe is None or peer.subscribe.closed:
            raise MediaError("no_transport", "no subscribe transport: send media.subscribe first")
        await peer.subscribe.answer(version, sdp)

    async def close_peer(self, peer_id: str) -> None:
        """Close a peer's transports (its connection closed); its producers leave the Router."""
        peer = self.peers.pop(peer_id, None)
        if peer is None:
            return
        for transport in (peer.publish, peer.subscribe):
            if transport is not None:
                await transport.close()
        router = peer.router
        if not router.producers and not any(p.router is router for p in self.peers.values()):
            self.routers.pop(router.id, None)

    async def close(self) -> None:
        for peer_id in list(self.peers):
            await self.close_peer(peer_id)
        for router in list(self.routers.values()):
            await router.close()
        self.routers.clear()
