"""The asyncio edge of liveclass: WebSocket server, wire codec, tokens, fan-out, presence,
resume, HTTP endpoints, and the bus and store interfaces with their adapters: embedded (in-process
bus, SQLite) and Redis Cluster."""

from .auth import Grants, Keyring, decode_claims, mint, verify
from .boards import BoardEndpoint, OpenRoom
from .bus import Bus, LocalBus
from .codec import CLIENT_TYPES, SERVER_TYPES, decode, pack, unpack
from .errors import SIGNALING_ERRORS, ClientError
from .http import HttpSettings
from .hub import HubSettings, RoomHub
from .node import NodeSettings, SignalingNode
from .origins import OriginPolicy, loopback_origins, normalize_origin
from .outbox import Outbox, wire_frame
from .ratelimit import TokenBucket
from .redis_bus import RedisBus
from .redis_cluster import (
    ClusterRouter,
    ClusterUnavailable,
    RedisAccess,
    parse_access,
    parse_seeds,
)
from .redis_store import RedisEventStore
from .sqlite_store import SqliteEventStore
from .store import AppendConflict, EventStore, StoreUnavailable

__all__ = [
    "CLIENT_TYPES",
    "SERVER_TYPES",
    "SIGNALING_ERRORS",
    "AppendConflict",
    "BoardEndpoint",
    "Bus",
    "ClientError",
    "ClusterRouter",
    "ClusterUnavailable",
    "EventStore",
    "Grants",
    "HttpSettings",
    "HubSettings",
    "Keyring",
    "LocalBus",
    "NodeSettings",
    "OpenRoom",
    "OriginPolicy",
    "Outbox",
    "RedisAccess",
    "RedisBus",
    "RedisEventStore",
    "RoomHub",
    "SignalingNode",
    "SqliteEventStore",
    "StoreUnavailable",
    "TokenBucket",
    "decode",
    "decode_claims",
    "loopback_origins",
    "mint",
    "normalize_origin",
    "pack",
    "parse_access",
    "parse_seeds",
    "unpack",
    "verify",
    "wire_frame",
]
