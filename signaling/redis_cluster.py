"""A small Redis Cluster router: the slot map, one client per master, and redirect handling.

liveclass routes its own room commands instead of using redis-py's ``RedisCluster`` for them,
because an acknowledged append must be replicated before the ack (``WAIT`` on the connection
that wrote, which a cluster client cannot pin) and because the sharded subscriber needs the same
slot map. Redirects follow the Redis Cluster specification (https://redis.io/docs/latest/
operate/oss_and_stack/reference/cluster-spec/): ``MOVED`` refreshes the map and retries,
``ASK`` retries once on the importing node after ``ASKING``, ``TRYAGAIN`` (a slot migrating
mid-command) and ``CLUSTERDOWN`` retry after a short backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

SLOTS = 16384
Address = tuple[str, int]


def as_text(value: Any) -> str:
    """A reply item as text (replies are bytes: clients do not decode responses)."""
    return value.decode() if isinstance(value, bytes) else str(value)


class ClusterUnavailable(Exception):
    """The cluster did not answer, or the slot's owner failed and redirects did not settle."""


@dataclass(frozen=True, slots=True)
class RedisAccess:
    """How every connection to the cluster authenticates: ``AUTH [username] password`` (Redis
    ACLs; no username: the ``default`` user) and TLS (``rediss://``), verified against
    ``ca_file`` (None: the system's CAs) with the host name checked; ``cert_file``/``key_file``
    present a client certificate when the cluster asks for one (``tls-auth-clients``)."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def connection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``redis.asyncio.Redis`` and its connection classes."""
        kwargs: dict[str, Any] = {}
        if self.password is not None:
            kwargs["password"] = self.password
            if self.username:
                kwargs["username"] = self.username
        if self.tls:
            kwargs.update(
                ssl_ca_certs=self.ca_file,
                ssl_certfile=self.cert_file,
                ssl_keyfile=self.key_file,
                ssl_cert_reqs="required",
                ssl_check_hostname=True,
            )
        return kwargs


def _split_seed(seed: str) -> tuple[str, str | None, str | None, Address]:
    """One seed as (scheme, username, password, address)."""
    text = seed.strip()
    scheme = "redis"
    if "://" in text:
        scheme, _, text = text.partition("://")
        scheme = scheme.lower()
        if scheme not in ("redis", "rediss"):
            raise ValueError(f"scheme must be redis:// or rediss://, not {scheme}://")
    userinfo, at, address = text.rstrip("/").rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username, password = (unquote(user) or None, unquote(secret)) if colon else (None, user)
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"not host:port: {address!r}")
    return scheme, username, password, (host.strip("[]"), int(port))


def parse_seeds(seeds: str) -> list[Address]:
    """``redis://[user:password@]host:port[,...]`` (or ``rediss://`` for TLS; the scheme is
    optional) as addresses.

    Raises:
        ValueError: an empty list, an address without a port, or another scheme.
    """
    addresses = [_split_seed(seed)[3] for seed in seeds.split(",") if seed.strip()]
    if not addresses:
        raise ValueError("no cluster address given")
    return addresses


def parse_access(seeds: str) -> RedisAccess:
    """The credentials and TLS the seeds name: ``rediss://`` on every seed (or none), and the
    username and password of the seeds that give one (they must agree).

    Raises:
        ValueError: as :func:`parse_seeds`, mixed schemes, or different credentials.
    """
    parts = [_split_seed(seed) for seed in seeds.split(",") if seed.strip()]
    if not parts:
        raise ValueError("no cluster address given")
    schemes = {scheme for scheme, _, _, _ in parts}
    if len(schemes) > 1:
        raise ValueError("seeds mix redis:// and rediss://")
    credentials = {(user, password) for _, user, password, _ in parts if password is not None}
    if len(credentials) > 1:
        raise ValueError("seeds name different credentials")
    username, password = next(iter(credentials), (None, None))
    return RedisAccess(username=username, password=password, tls=schemes == {"rediss"})


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """One line of ``CLUSTER NODES``."""

    node_id: str
    address: Address
    master: bool
    failed: bool
    slots: tuple[tuple[int, int], ...]
    #: A replica's master's node id ('' for a master).
    master_id: str = ""


def parse_cluster_nodes(text: str) -> list[ClusterNode]:
    """Parse a ``CLUSTER NODES`` reply (https://redis.io/commands/cluster-nodes/).

    Migration markers (``[slot->-id]``, ``[slot-<-id]``) are skipped: a slot belongs to the node
    listing it plainly.
    """
    nodes = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        hostport = parts[1].split("@", 1)[0].split(",", 1)[0]
        host, _, port = hostport.rpartition(":")
        if not port.isdigit():
            continue  # a node without an address (handshake)
        flags = set(parts[2].split(","))
        slots = []
        for item in parts[8:]:
            if item.startswith("["):
                continue
            first, _, last = item.partition("-")
            slots.append((int(first), int(last or first)))
        nodes.append(
            ClusterNode(
                node_id=parts[0],
                address=(host or "127.0.0.1", int(port)),
                master="master" in flags,
                failed="fail" in flags,
                slots=tuple(slots),
                master_id="" if parts[3] == "-" else parts[3],
            )
        )
    return nodes


class ClusterRouter:
    """Routes commands for a key to the master that owns its slot.

    Args:
        seeds: addresses to learn the cluster from (any node of it).
        access: credentials and TLS for every connection (default: none, plain TCP).
        timeout_s: connect and read timeout of every command.
        redirect_budget_s: how long redirects, ``TRYAGAIN`` and ``CLUSTERDOWN`` are retried
            before :class:`ClusterUnavailable`.
    """

    def __init__(
        self,
        seeds: Sequence[Address],
        *,
        access: RedisAccess | None = None,
        timeout_s: float = 2.0,
        redirect_budget_s: float = 2.0,
    ) -> None:
        self.seeds = list(seeds)
        self.access = access or RedisAccess()
        self.timeout_s = timeout_s
        self.redirect_budget_s = redirect_budget_s
        self._owners: list[Address | None] = [None] * SLOTS
        self._clients: dict[Address, Redis] = {}
        self._known: list[Address] = list(seeds)
        self._refreshing: asyncio.Task[None] | None = None
        #: Every slot has a master that is not failed.
        self.covered = False
        #: Some slot has a master that is not failed: the node can serve (``/readyz``). A
        #: failover of one shard leaves the others serving, so it does not make every node
        #: unready at once (docs/operations.md, "Health checks").
        self.serving = False
        #: Masters with no replica that is not failed: a write to them is acknowledged without
        #: waiting for a replica (:meth:`has_replica`), and said once, not once per write.
        self.without_replica: frozenset[Address] = frozenset()
        #: Masters serving slots, failed or not (a failover replaces one of them).
        self._serving_masters: frozenset[Address] = frozenset()
        #: Commands that raised :class:`ClusterUnavailable` (``liveclass_redis_errors_total``).
        self.errors = 0
        #: Masters seen to stop serving their slots (``liveclass_redis_failovers_total``).
        self.failovers = 0

    # -- the slot map --------------------------------------------------------------------------

    async def start(self) -> None:
        """Learn the slot map.

        Raises:
            ClusterUnavailable: no seed answered ``CLUSTER NODES``.
        """
        await self.refresh()

    def owner(self, key: str) -> Address | None:
        return self._owners[key_slot(key.encode())]

    async def refresh(self) -> None:
        """Re-read the slot map (concurrent callers share one refresh).

        Raises:
            ClusterUnavailable: no known node answered.
        """
        if self._refreshing is None:
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
        task = self._refreshing
        try:
            await asyncio.shield(task)
        finally:
            if task.done() and self._refreshing is task:
                self._refreshing = None

    async def _refresh(self) -> None:
        errors = []
        candidates = list(dict.fromkeys([*self._masters(), *self._known, *self.seeds]))
        for address in candidates:
            try:
                text = await self.client(address).execute_command("CLUSTER", "NODES")
            except RedisError as exc:
                errors.append(f"{address[0]}:{address[1]}: {exc}")
                continue
            if isinstance(text, bytes):
                text = text.decode()
            self._apply(parse_cluster_nodes(str(text)))
            return
        self.serving = False
        raise ClusterUnavailable("no Redis Cluster node answered: " + "; ".join(errors))

    def _apply(self, nodes: list[ClusterNode]) -> None:
        owners: list[Address | None] = [None] * SLOTS
        failed_slots = 0
        for node in nodes:
            if not node.master:
                continue
            for first, last in node.slots:
                for slot in range(first, last + 1):
                    owners[slot] = node.address
                if node.failed:
                    failed_slots += last - first + 1
        self._owners = owners
        self._known = [n.address for n in nodes if not n.failed] or self._known
        live_masters = {n.node_id: n.address for n in nodes if n.master and not n.failed}
        replicated = {
            live_masters[n.master_id]
            for n in nodes
            if not n.master and not n.failed and n.master_id in live_masters
        }
        alone = (
            frozenset(n.address for n in nodes if n.master and not n.failed and n.slots)
            - replicated
        )
        for address in sorted(alone - self.without_replica):
            log.warning(
                "redis master %s:%s has no replica: its writes are acknowledged without one",
                *address,
            )
        for address in sorted(self.without_replica - alone):
            if address in live_masters.values():
                log.info("redis master %s:%s has a replica again", *address)
        self.without_replica = alone
        serving_masters = frozenset(n.address for n in nodes if n.master and n.slots)
        live = frozenset(live_masters.values())
        if self._serving_masters:
            # A master that served slots and now serves none, or is failed: a failover (or a
            # resharding that emptied it, which moves its rooms all the same).
            self.failovers += len(self._serving_masters - (serving_masters & live))
        self._serving_masters = serving_masters & live
        self.serving = any(n.master and not n.failed and n.slots for n in nodes)
        covered = failed_slots == 0 and all(o is not None for o in owners)
        if covered != self.covered:
            log.log(
                logging.INFO if covered else logging.WARNING,
                "redis cluster %s",
                "covers every slot" if covered else "has slots without a live master",
            )
        self.covered = covered

    def has_replica(self, key: str) -> bool:
        """Whether the master of ``key``'s slot has a live replica, as the slot map last said
        (unknown owner: True, so a write still waits for one)."""
        owner = self.owner(key)
        return owner is None or owner not in self.without_replica

    def _masters(self) -> list[Address]:
        return list(dict.fromkeys(o for o in self._owners if o is not None))

    def client(self, address: Address) -> Redis:
        client = self._clients.get(address)
        if client is None:
            client = self._clients[address] = Redis(
                host=address[0],
                port=address[1],
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
                protocol=2,
                max_connections=64,
                # One immediate retry (a pooled connection the server closed); redis-py's
                # default backs off for seconds, which would stall a room through a failover.
                retry=Retry(NoBackoff(), 1),
                ssl=self.access.tls,
                **self.access.connection_kwargs(),
            )
        return client

    # -- commands ------------------------------------------------------------------------------

    async def run(self, key: str, build: Callable[[Pipeline], Any]) -> list[Any]:
        """Run the commands ``build(pipeline)`` queues, on one connection of ``key``'s owner.

        Returns the pipeline's replies. Redirects are followed within the budget.

        Raises:
            ClusterUnavailable: the owner cannot be reached or redirects did not settle.
            redis.exceptions.ResponseError: a command failed for another reason.
        """
        deadline = time.monotonic() + self.redirect_budget_s
        delay = 0.01
        asking: Address | None = None
        last_error: Exception | None = None
        while True:
            address = asking or self.owner(key)
            if address is None:
                await self._refresh_quietly()
                address = self.owner(key)
            if address is not None:
                try:
                    async with self.client(address).pipeline(transaction=False) as pipe:
                        if asking is not None:
                            pipe.execute_command("ASKING")
                        build(pipe)
                        replies = await pipe.execute()
                    return replies[1:] if asking is not None else replies
                except AskError as exc:  # MovedError is an AskError
                    last_error = exc
                    if isinstance(exc, MovedError):
                        asking = None
                        self._owners[exc.slot_id] = exc.node_addr
                        await self._refresh_quietly()
                        continue
                    asking = exc.node_addr
                    continue
                except (TryAgainError, ClusterDownError) as exc:
                    last_error = exc
                except (RedisConnectionError, RedisTimeoutError, OSError, RuntimeError) as exc:
                    # RuntimeError: writing to a transport a killed master closed under uvloop
                    # ("unable to perform operation on <TCPTransport closed=True>").
                    last_error = exc
                    self.errors += 1
                    await self._refresh_quietly()
                    raise ClusterUnavailable(f"redis {address[0]}:{address[1]}: {exc}") from exc
            asking = None
            if time.monotonic() + delay > deadline:
                self.errors += 1
                raise ClusterUnavailable(f"redis cluster did not settle: {last_error}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except ClusterUnavailable as exc:
            log.warning("%s", exc)

    async def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
