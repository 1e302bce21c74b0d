"""Rebalancing a tier of nodes: a node over its share asks some clients to reconnect elsewhere.

A rolling restart leaves the nodes uneven (the last node restarted holds nobody: its clients
reconnected to the others, and nothing moves them back). Each node on a Redis Cluster therefore:

- publishes how many joined ``/ws`` connections it holds every ``interval_s``
  (:class:`LoadBoard`: ``{balance}:nodes``, a sorted set node id -> expiry, and
  ``{balance}:load``, a hash node id -> connections; one script writes its own entry, sweeps
  nodes whose entry expired and returns every live node's count);
- compares itself with the fair share (the live nodes' total over their number): past
  ``fair x (1 + tolerance)`` it starts shedding down to the fair share (:class:`ShedPlan`, pure:
  the hysteresis, the quiet period after the node started or the set of nodes changed, the
  back-off when the balancer sends the asked clients back);
- asks at most ``batch`` clients per round, each at a random moment within ``spread_s``, with a
  ``reconnect{reason: "rebalance"}`` frame and close 1012 (docs/protocol.md, "Close codes"). The
  client reconnects through the balancer and resumes from its last event id, so nothing is lost.
  A node never asks one identity of a room twice within ``hold_s``.

Which node the client reaches is the balancer's choice: with ``balance leastconn``
(deploy/haproxy/haproxy.cfg) the least-loaded one. Under a source-address hash it would come back
to the same node; :class:`ShedPlan` sees them come back and backs off
(docs/decisions/0027-rebalance-and-placement.md).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from rooms import CloseCode

from .codec import encode_reconnect
from .hub import Member
from .redis_cluster import ClusterRouter, ClusterUnavailable, as_text

log = logging.getLogger(__name__)

NODES = "{balance}:nodes"
LOAD = "{balance}:load"

#: ``reconnect`` reason and close reason of a rebalancing ask (docs/protocol.md).
REASON = "rebalance"
#: The ``retry_after_ms`` a rebalancing ask carries: soon, the asks are spread already.
RETRY_AFTER_MS = 200

#: KEYS: nodes, load. ARGV: node id, ttl ms, connections. Returns {node, count, ...} of the live
#: nodes (this one included) after sweeping the expired ones.
REPORT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('ZREM', KEYS[1], gone)
  redis.call('HDEL', KEYS[2], gone)
end
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  table.insert(out, id)
  table.insert(out, redis.call('HGET', KEYS[2], id) or '0')
end
return out
"""

#: KEYS: nodes, load. ARGV: node id. A draining node leaves the count at once.
LEAVE_SCRIPT = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""


@dataclass(frozen=True, slots=True)
class BalanceSettings:
    """How a node rebalances (flags ``--rebalance-*`` in liveclass/config.py).

    ``interval_s``: seconds between two reports (and rounds); ``quiet_s``: no shedding this long
    after the node started or the set of live nodes changed; ``tolerance``: shedding starts past
    ``fair x (1 + tolerance)`` and goes down to the fair share; ``batch``: clients asked per
    round at most; ``spread_s``: a round's asks are spread at random over this long; ``hold_s``:
    an identity asked is not asked again by this node for this long. ``enabled`` False: the node
    reports its count and never asks.
    """

    enabled: bool = True
    interval_s: float = 2.0
    quiet_s: float = 30.0
    tolerance: float = 0.1
    batch: int = 10
    spread_s: float = 5.0
    hold_s: float = 600.0

    @property
    def ttl_ms(self) -> int:
        """A node whose report is older than three intervals is gone."""
        return max(300, int(self.interval_s * 3000))


def fair_share(loads: Mapping[str, int]) -> float:
    """The connections each live node would hold if they were even."""
    return sum(loads.values()) / len(loads) if loads else 0.0


@dataclass(slots=True)
class ShedPlan:
    """When and how many connections a node sheds: the decisions of :class:`Rebalancer`, pure.

    Args:
        settings: thresholds and timings.
        started: the node's start (monotonic seconds).
    """

    settings: BalanceSettings
    started: float
    shedding: bool = False
    quiet_until: float = 0.0
    #: Rounds are this many intervals apart: doubled while the asked come back (at most 32).
    pause: int = 1
    next_round: float = 0.0
    nodes: frozenset[str] = frozenset()
    #: (room, identity) -> when it was asked (monotonic s); pruned after ``hold_s``.
    asked: dict[tuple[str, str], float] = field(default_factory=dict)
    asked_last_round: int = 0
    returned_since: int = 0

    def __post_init__(self) -> None:
        self.quiet_until = self.started + self.settings.quiet_s

    def shed(self, now: float, node_id: str, loads: Mapping[str, int], leaving: int) -> int:
        """How many connections to ask now, given every live node's count (``loads``, this
        node's included) and the ``leaving`` ones this node asked that are still connected.

        Returns 0 during the quiet period (after the start, or after a node joined or left the
        tier), between rounds, below the threshold, and once back at the fair share.
        """
        s = self.settings
        nodes = frozenset(loads)
        if nodes != self.nodes:
            self.nodes = nodes
            self.quiet_until = max(self.quiet_until, now + s.quiet_s)
        for key in [k for k, at in self.asked.items() if now - at >= s.hold_s]:
            del self.asked[key]
        if now < self.quiet_until or now < self.next_round or node_id not in loads:
            return 0
        own = loads[node_id] - leaving
        fair = fair_share(loads)
        if not self.shedding and own <= fair * (1 + s.tolerance):
            return 0
        excess = own - math.ceil(fair)
        if excess <= 0:
            self.shedding = False
            self.pause = 1
            return 0
        self.shedding = True
        if self.asked_last_round and 2 * self.returned_since >= self.asked_last_round:
            # Half the asked came back here: the balancer does not move them; ask less often.
            self.pause = min(32, self.pause * 2)
        self.returned_since = 0
        self.next_round = now + self.pause * s.interval_s
        return min(s.batch, excess)

    def askable(self, key: tuple[str, str]) -> bool:
        """Not asked within ``hold_s``."""
        return key not in self.asked

    def mark_asked(self, now: float, keys: Sequence[tuple[str, str]]) -> None:
        for key in keys:
            self.asked[key] = now
        self.asked_last_round = len(keys)

    def joined(self, key: tuple[str, str]) -> None:
        """A connection joined this node: one this node asked came back if ``key`` is held."""
        if key in self.asked:
            self.returned_since += 1


def pick(
    members: Sequence[tuple[str, Member]],
    count: int,
    askable: Callable[[tuple[str, str]], bool],
    rng: random.Random,
) -> list[tuple[str, Member]]:
    """``count`` members to ask: students before staff (a teacher's reconnect is felt by the
    whole class), at random among equals, never one already closing or held by ``askable``."""
    candidates = [
        (room, m)
        for room, m in members
        if not m.closing and askable((room, m.participant.identity))
    ]
    rng.shuffle(candidates)
    candidates.sort(key=lambda item: item[1].participant.is_staff)
    return candidates[:count]


class BalanceUnavailable(Exception):
    """The cluster cannot be asked now."""


class LoadBoard:
    """Every node's connection count on the cluster's ``{balance}`` slot (module docstring)."""

    def __init__(self, router: ClusterRouter) -> None:
        self.router = router

    async def _eval(self, script: str, args: list[Any]) -> Any:
        keys = [NODES, LOAD]
        try:
            replies = await self.router.run(
                NODES, lambda pipe: pipe.eval(script, len(keys), *keys, *args)
            )
        except (ClusterUnavailable, RedisError) as exc:
            raise BalanceUnavailable(f"the load board is unavailable: {exc}") from exc
        return replies[0]

    async def report(self, node_id: str, connections: int, ttl_ms: int) -> dict[str, int]:
        """Publish this node's count; returns every live node's (this one's included).

        Raises:
            BalanceUnavailable: the cluster did not answer.
        """
        reply = await self._eval(REPORT_SCRIPT, [node_id, ttl_ms, connections])
        return {as_text(reply[i]): int(as_text(reply[i + 1])) for i in range(0, len(reply), 2)}

    async def leave(self, node_id: str) -> None:
        """Leave the count (a draining node).

        Raises:
            BalanceUnavailable: the cluster did not answer.
        """
        await self._eval(LEAVE_SCRIPT, [node_id])


class Rebalancer:
    """The node's rebalancing loop (module docstring).

    Args:
        board: the load board.
        node_id: this node's id (the bus's).
        members: ``() -> [(room id, member)]``, the node's joined ``/ws`` connections.
        settings: thresholds and timings.
        rng: the source of the asks' jitter and choice.
    """

    def __init__(
        self,
        board: LoadBoard,
        node_id: str,
        members: Callable[[], Sequence[tuple[str, Member]]],
        settings: BalanceSettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.board = board
        self.node_id = node_id
        self.members = members
        self.settings = settings or BalanceSettings()
        self.rng = rng or random.Random()
        self.plan = ShedPlan(self.settings, time.monotonic())
        self.loads: dict[str, int] = {}
        self._leaving: set[Member] = set()
        self._task: asyncio.Task[None] | None = None
        self._asks: set[asyncio.Task[None]] = set()
        #: Counter for /metrics.
        self.asked = 0

    def start(self) -> None:
        self.plan = ShedPlan(self.settings, time.monotonic())
        self._task = asyncio.get_running_loop().create_task(self._run())

    def joined(self, room_id: str, identity: str) -> None:
        """A connection joined this node (the plan counts the asked that came back)."""
        self.plan.joined((room_id, identity))

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except BalanceUnavailable as exc:
                log.debug("rebalance: %s", exc)
            except Exception:
                log.exception("rebalance: a round failed")
            await asyncio.sleep(self.settings.interval_s)

    async def round(self) -> int:
        """Report, decide, schedule the asks; returns how many were scheduled.

        Raises:
            BalanceUnavailable: the cluster did not answer.
        """
        members = self.members()
        current = {m for _, m in members}
        self._leaving &= current
        self.loads = await self.board.report(self.node_id, len(members), self.settings.ttl_ms)
        if not self.settings.enabled:
            return 0
        now = time.monotonic()
        count = self.plan.shed(now, self.node_id, self.loads, len(self._leaving))
        if not count:
            return 0
        chosen = pick(members, count, self.plan.askable, self.rng)
        self.plan.mark_asked(now, [(room, m.participant.identity) for room, m in chosen])
        log.info(
            "rebalance: %d connections here, fair share %.1f over %d nodes: asking %d to reconnect",
            self.loads.get(self.node_id, 0),
            fair_share(self.loads),
            len(self.loads),
            len(chosen),
        )
        loop = asyncio.get_running_loop()
        for _, member in chosen:
            self._leaving.add(member)
            ask = loop.create_task(
                self._ask_later(member, self.rng.uniform(0, self.settings.spread_s))
            )
            self._asks.add(ask)
            ask.add_done_callback(self._asks.discard)
        return len(chosen)

    async def _ask_later(self, member: Member, delay_s: float) -> None:
        """After ``delay_s``: the ``reconnect`` frame, then close 1012 (queued frames go first,
        so the client resumes from exactly what it has)."""
        await asyncio.sleep(delay_s)
        if member.closing or member.outbox.closed:
            return
        member.closing = True
        self.asked += 1
        retry_ms = RETRY_AFTER_MS + self.rng.randrange(RETRY_AFTER_MS)
        await member.outbox.close(
            CloseCode.SERVICE_RESTART, REASON, final_frame=encode_reconnect(REASON, retry_ms)
        )

    async def close(self) -> None:
        """Stop asking and leave the count (the node drains)."""
        if self._task is not None:
            self._task.cancel()
        for ask in tuple(self._asks):
            ask.cancel()
        try:
            async with asyncio.timeout(1.0):  # a drain does not wait on a failing cluster
                await self.board.leave(self.node_id)
        except (BalanceUnavailable, TimeoutError) as exc:
            log.warning("rebalance: could not leave the load board (it expires): %s", exc)


class BalanceCollector(Collector):
    """``liveclass_rebalance_asks_total`` and ``liveclass_node_fair_share_connections``."""

    def __init__(self, rebalancer: Rebalancer) -> None:
        self.rebalancer = rebalancer

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        r = self.rebalancer
        yield CounterMetricFamily(
            "liveclass_rebalance_asks",
            "Clients this node asked to reconnect elsewhere (reconnect reason rebalance)",
            value=r.asked,
        )
        yield GaugeMetricFamily(
            "liveclass_node_fair_share_connections",
            "The live nodes' joined connections over their number, as of the last report",
            fair_share(r.loads),
        )
