"""The asyncio edge of liveclass: WebSocket server, wire codec, tokens, fan-out, presence,
resume, HTTP endpoints, and the bus and store interfaces with their embedded adapters."""

from .auth import Grants, Keyring, decode_claims, mint, verify
from .boards import BoardEndpoint, OpenRoom
from .bus import Bus, LocalBus
from .codec import CLIENT_TYPES, SERVER_TYPES, decode, pack, unpack
from .errors import SIGNALING_ERRORS, ClientError
from .http import HttpSettings
from .hub import HubSettings, RoomHub
from .node import NodeSettings, SignalingNode
from .outbox import Outbox, wire_frame
from .ratelimit import TokenBucket
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
    "EventStore",
    "Grants",
    "HttpSettings",
    "HubSettings",
    "Keyring",
    "LocalBus",
    "NodeSettings",
    "OpenRoom",
    "Outbox",
    "RoomHub",
    "SignalingNode",
    "SqliteEventStore",
    "StoreUnavailable",
    "TokenBucket",
    "decode",
    "decode_claims",
    "mint",
    "pack",
    "unpack",
    "verify",
    "wire_frame",
]
