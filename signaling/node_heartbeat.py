"""Each node's facts for the status page, in the Redis Cluster, and the deployment's status.

Every key shares the hash tag ``{status}`` (one slot):

- ``{status}:nodes``: a sorted set, node id -> when its facts expire (ms, the node's clock);
- ``{status}:node:<id>``: the node's facts (JSON, :meth:`signaling.node.SignalingNode.node_facts`),
  written every ``ttl / 3`` with a ``PX`` of ``ttl``: a dead node's facts go by themselves.

The facts are bounded (:data:`signaling.admin.ROOMS_LISTED`, ``PARTICIPANTS_LISTED``), so a
heartbeat stays small whatever the node holds. This is the status page's own heartbeat:
placement's worker registry (signaling/sfu_registry.py) is read, never written, here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from .admin import status_document
from .redis_cluster import ClusterRouter, ClusterUnavailable, as_text, parse_cluster_nodes
from .sfu_registry import DRAINING, LOAD, URLS, WORKERS

log = logging.getLogger(__name__)

NODES = "{status}:nodes"
FACTS_PREFIX = "{status}:node:"
#: How long a node's facts outlive its last heartbeat (ms); it beats every third of it.
TTL_MS = 6000


class NodeHeartbeat:
    """Writes this node's facts every ``ttl_ms / 3`` and reads the deployment's status.

    Args:
        router: the node's slot map.
        node_id: this node's id (the bus's).
        facts: returns this node's facts (JSON-able).
    """

    def __init__(
        self,
        router: ClusterRouter,
        node_id: str,
        facts: Callable[[], dict[str, Any]],
        ttl_ms: int = TTL_MS,
    ) -> None:
        self.router = router
        self.node_id = node_id
        self.facts = facts
        self.ttl_ms = ttl_ms
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    async def start(self) -> None:
        """Write the facts now, then every ``ttl_ms / 3`` until :meth:`close`."""
        await self._beat()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="node heartbeat")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            await self._beat()

    async def _beat(self) -> None:
        body = json.dumps(self.facts())
        expires = int(time.time() * 1000) + self.ttl_ms

        def build(pipe: Any) -> None:
            pipe.set(FACTS_PREFIX + self.node_id, body, px=self.ttl_ms)
            pipe.zadd(NODES, {self.node_id: expires})

        try:
            await self.router.run(NODES, build)
        except (ClusterUnavailable, RedisError) as exc:
            if not self._failing:  # one line per change of state, not one per beat
                log.warning("node heartbeat: cannot write this node's status: %s", exc)
            self._failing = True
            return
        if self._failing:
            log.info("node heartbeat: writing this node's status again")
        self._failing = False

    async def close(self) -> None:
        """Stop beating and take this node's facts out (it is leaving)."""
        if self._task is not None:
            self._task.cancel()
        try:
            await self.router.run(
                NODES,
                lambda pipe: (
                    pipe.delete(FACTS_PREFIX + self.node_id),
                    pipe.zrem(NODES, self.node_id),
                ),
            )
        except (ClusterUnavailable, RedisError):
            pass  # its facts expire by themselves

    async def nodes(self) -> list[dict[str, Any]]:
        """The facts of every node alive (by id).

        Raises:
            ClusterUnavailable: the cluster did not answer.
        """
        now = int(time.time() * 1000)
        _, ids = await self.router.run(
            NODES,
            lambda pipe: (pipe.zremrangebyscore(NODES, "-inf", now), pipe.zrange(NODES, 0, -1)),
        )
        if not ids:
            return []
        keys = [FACTS_PREFIX + as_text(i) for i in ids]
        (bodies,) = await self.router.run(NODES, lambda pipe: pipe.mget(keys))
        return sorted(
            (json.loads(body) for body in bodies if body is not None), key=lambda n: str(n["id"])
        )

    async def workers(self) -> list[dict[str, Any]]:
        """The SFU workers registered: id, RPC URL, load (peers held), state (``live``,
        ``draining``: taken out of placement, or ``expired``).

        Raises:
            ClusterUnavailable: the cluster did not answer.
        """
        now = int(time.time() * 1000)
        expiries, urls, loads, draining = await self.router.run(
            WORKERS,
            lambda pipe: (
                pipe.zrange(WORKERS, 0, -1, withscores=True),
                pipe.hgetall(URLS),
                pipe.hgetall(LOAD),
                pipe.smembers(DRAINING),
            ),
        )
        found = []
        for raw_id, expires in expiries:
            worker = as_text(raw_id)
            found.append(
                {
                    "id": worker,
                    "url": as_text(urls.get(raw_id, b"")),
                    "load": int(loads.get(raw_id, 0) or 0),
                    "state": (
                        "expired"
                        if expires <= now
                        else "draining"
                        if raw_id in draining
                        else "live"
                    ),
                }
            )
        return sorted(found, key=lambda w: str(w["id"]))

    async def cluster_state(self) -> dict[str, Any]:
        """``CLUSTER INFO``'s state and ``CLUSTER NODES``' masters, replicas and failing nodes,
        from the first node of the slot map that answers; ``{"cluster_state": "unreachable"}``
        when none does."""
        for address in self.router.seeds:
            client = self.router.client(address)
            try:
                info = as_text(await client.execute_command("CLUSTER", "INFO"))
                listing = as_text(await client.execute_command("CLUSTER", "NODES"))
            except (RedisError, OSError):
                continue
            facts = dict(
                line.split(":", 1) for line in info.splitlines() if ":" in line and line.strip()
            )
            nodes = parse_cluster_nodes(listing)
            return {
                "cluster_state": facts.get("cluster_state", "unknown").strip(),
                "slots_ok": int(facts.get("cluster_slots_ok", "0")),
                "masters": sorted(f"{n.address[0]}:{n.address[1]}" for n in nodes if n.master),
                "replicas": sorted(f"{n.address[0]}:{n.address[1]}" for n in nodes if not n.master),
                "failing": sorted(f"{n.address[0]}:{n.address[1]}" for n in nodes if n.failed),
            }
        return {"cluster_state": "unreachable"}

    async def document(self) -> dict[str, Any]:
        """The deployment's ``/status.json`` (:func:`signaling.admin.status_document`)."""
        return status_document(await self.nodes(), await self.workers(), await self.cluster_state())
