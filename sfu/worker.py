"""The SFU Worker: one process's Routers and the participants' transports on them.

When embedded, one Worker runs inside ``liveclass serve`` (the signaling node calls it directly).
A Worker installs :mod:`sfu.passthrough` (it never decodes or encodes forwarded media) and, when
given ``listen_ips``, gathers ICE host candidates only on those addresses (:mod:`sfu.ice`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import ip_address

from aiortc import RTCIceServer

from . import ice, passthrough, red
from .router import Router
from .transport import MediaError, PublishTransport, SubscribeTransport

log = logging.getLogger(__name__)


@dataclass
class Peer:
    """One connection's media: its publish and subscribe transports (either may be absent), and
    the sources of its that are not forwarded (``blocked``)."""

    peer_id: str
    router: Router
    identity: str
    blocked: frozenset[str] = frozenset()
    publish: PublishTransport | None = None
    subscribe: SubscribeTransport | None = None
    #: The videos the client shows (``media.view``): "all", "none" or producer ids.
    video: str | frozenset[str] = "all"


class Worker:
    """Routers by id (a room's id, or ``<room>/<breakout>``) and the peers on them.

    Args:
        listen_ips: the addresses ICE host candidates are gathered on (None: aioice's default,
            every address but 127.0.0.1). Tests pass ``["127.0.0.1"]``.
        ice_servers: STUN/TURN servers of the SFU's own peer connections (usually none).
        announced_ip: the address clients reach the SFU by, put in place of the gathered host
            candidates (mediasoup's ``announcedIp``: behind 1:1 NAT, or listening on 0.0.0.0).
        ice_max_addresses: remote addresses whose ICE checks one transport answers
            (:func:`sfu.ice.limit_remote_addresses`).
    """

    def __init__(
        self,
        listen_ips: Sequence[str] | None = None,
        ice_servers: Sequence[RTCIceServer] = (),
        announced_ip: str | None = None,
        ice_max_addresses: int = ice.MAX_REMOTE_ADDRESSES,
    ) -> None:
        passthrough.install()
        red.install()
        if listen_ips is not None:
            ice.use_host_addresses(listen_ips)
        self.ice_servers = list(ice_servers)
        # ValueError here, at start-up, rather than at the first offer.
        self.announced_ip = None if announced_ip is None else str(ip_address(announced_ip))
        self.ice_max_addresses = ice_max_addresses
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
        self,
        peer_id: str,
        router_id: str,
        identity: str,
        offer: str,
        sources: Mapping[str, str],
        blocked: Collection[str] = (),
    ) -> str:
        """Answer a publish offer (see :meth:`sfu.transport.PublishTransport.answer`);
        ``blocked`` sources are negotiated but not forwarded (see :meth:`restrict`).

        Raises:
            MediaError: the offer is refused; other peers' media is unaffected.
        """
        peer = self.peer(peer_id, router_id, identity)
        peer.blocked = frozenset(blocked)
        if peer.publish is not None and not peer.publish.closed:
            peer.publish.restrict(peer.blocked)
            return await peer.publish.answer(offer, sources)
        transport = PublishTransport(peer.router, identity, self.ice_servers, peer.blocked)
        transport.announced_ip = self.announced_ip
        transport.max_remote_addresses = self.ice_max_addresses
        try:
            answer = await transport.answer(offer, sources)
        except BaseException:
            await transport.close()  # a refused first offer leaves no connection behind
            raise
        peer.publish = transport
        return answer

    async def subscribe(
        self,
        peer_id: str,
        router_id: str,
        identity: str,
        send_offer: Callable[[str, int, dict[str, dict[str, str]]], None],
        send_layers: Callable[[dict[str, str]], None] | None = None,
    ) -> None:
        """Start forwarding the Router's other producers to this peer; offers go to
        ``send_offer`` (see :class:`sfu.transport.SubscribeTransport`), and the video layers
        its link lets through, as they change, to ``send_layers`` ({producer id: layer})."""
        peer = self.peer(peer_id, router_id, identity)
        if peer.subscribe is None or peer.subscribe.closed:
            peer.subscribe = SubscribeTransport(peer.router, identity, self.ice_servers, send_offer)
            if send_layers is not None:
                peer.subscribe.on_layers = send_layers
            peer.subscribe.view(peer.video)
            peer.subscribe.announced_ip = self.announced_ip
            peer.subscribe.max_remote_addresses = self.ice_max_addresses
        peer.subscribe.update()

    async def unpublish(self, peer_id: str, source: str) -> None:
        """Stop publishing the peer's ``source`` (see
        :meth:`sfu.transport.PublishTransport.unpublish`); a later ``publish`` naming its m-line
        publishes it again.

        Raises:
            MediaError: ``no_transport`` (this peer has no publish transport).
        """
        peer = self.peers.get(peer_id)
        if peer is None or peer.publish is None or peer.publish.closed:
            raise MediaError("no_transport", "no publish transport: send media.publish first")
        await peer.publish.unpublish(source)

    async def restrict(self, peer_id: str, blocked: Collection[str]) -> None:
        """Stop forwarding the peer's ``blocked`` sources and resume the others (a staff mute,
        lecture mode). Unknown peers are ignored (nothing is published yet)."""
        peer = self.peers.get(peer_id)
        if peer is None:
            return
        peer.blocked = frozenset(blocked)
        if peer.publish is not None and not peer.publish.closed:
            peer.publish.restrict(peer.blocked)

    async def view(self, peer_id: str, video: str | list[str]) -> None:
        """The videos the peer's client shows: ``"all"``, ``"none"`` (audio only) or those
        producer ids (the tiles on its screen); the others are not forwarded to it, audio
        always is. Kept for a subscribe connection started later. Unknown peers are ignored."""
        peer = self.peers.get(peer_id)
        if peer is None:
            return
        peer.video = video if isinstance(video, str) else frozenset(video)
        if peer.subscribe is not None and not peer.subscribe.closed:
            peer.subscribe.view(peer.video)

    async def move(self, peer_id: str, router_id: str) -> None:
        """Move the peer to Router ``router_id`` (a breakout room or back): its producers go
        there and its subscription switches to that Router's producers, on the same
        connections (no new ICE). Unknown peers are ignored."""
        peer = self.peers.get(peer_id)
        if peer is None or peer.router.id == router_id:
            return
        old, peer.router = peer.router, self.router(router_id)
        if peer.publish is not None:
            peer.publish.move(peer.router)
        if peer.subscribe is not None:
            peer.subscribe.move(peer.router)
        self._drop_if_unused(old)

    async def candidate(
        self, peer_id: str, transport: str, candidate: str, sdp_mid: str | None
    ) -> None:
        """Add a remote ICE candidate the client trickled for its ``transport``
        (``"publish"`` or ``"subscribe"``).

        Raises:
            MediaError: ``no_transport`` (no such transport on this peer), ``bad_field``.
        """
        peer = self.peers.get(peer_id)
        target = None
        if peer is not None and transport in ("publish", "subscribe"):
            target = peer.publish if transport == "publish" else peer.subscribe
        if target is None or target.closed:
            raise MediaError("no_transport", f"no {transport!r} transport for this connection")
        await target.add_candidate(candidate, sdp_mid)

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
        self._drop_if_unused(peer.router)

    def _drop_if_unused(self, router: Router) -> None:
        if not router.producers and not any(p.router is router for p in self.peers.values()):
            self.routers.pop(router.id, None)

    async def close(self) -> None:
        for peer_id in list(self.peers):
            await self.close_peer(peer_id)
        for router in list(self.routers.values()):
            await router.close()
        self.routers.clear()
