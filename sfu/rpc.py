"""The RPC between signaling nodes and SFU worker processes: frames on one WebSocket per node.

A node opens ``ws://<worker>/rpc/<worker_id>`` (the worker refuses another id with HTTP 404, so a
node never talks to a restarted process at the same address as if it were the old one) with
``Authorization: Bearer <token>`` (RFC 6750 section 2.1) in the handshake: a token minted for that
worker id, per connection, by the node (:data:`MintToken`) and checked by the worker before the
upgrade (:data:`VerifyToken`). Without a token the worker accepts, it answers HTTP 401 and no
connection opens. What a token is (a JWT signed with the cluster's secrets) is the caller's
business: the worker and the node are handed these two callables. Frames are binary MessagePack
maps:

- node -> worker ``{t: "call", id: int, method: str, args: map}``: one call of a
  :class:`sfu.worker.Worker` method in :data:`METHODS`, keyword arguments by name
  (``peer_id`` is the node's own; the worker keeps peers apart per connection). ``subscribe``
  has no ``send_offer``: the worker pushes the offers back as ``offer`` frames.
- worker -> node ``{t: "result", id, value}`` (the method's return value, nil for None) or
  ``{t: "error", id, code, message}`` (``code`` a protocol error code from
  :class:`sfu.transport.MediaError`, or ``internal``).
- worker -> node ``{t: "offer", peer, sdp, version, producers}``: a subscribe offer for peer
  ``peer`` (the arguments of the ``send_offer`` callback).

Calls of one peer are carried out in the order they were sent; calls of different peers run
concurrently. When the connection closes, the worker closes every peer that node opened.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack

#: The Worker methods a node may call (the interface :class:`signaling.media.MediaSession` uses).
METHODS = frozenset(
    {
        "publish",
        "unpublish",
        "subscribe",
        "answer",
        "candidate",
        "restrict",
        "move",
        "view",
        "close_peer",
    }
)
#: The path prefix of the RPC endpoint; the worker's id follows.
PATH = "/rpc/"


#: ``mint(worker_id) -> token``: a fresh token for one connection to that worker (node side).
MintToken = Callable[[str], str]
#: ``verify(token, worker_id)``: raises :class:`Unauthorized` unless the token admits a node to
#: that worker (worker side).
VerifyToken = Callable[[str, str], None]


class RpcFrameError(ValueError):
    """A frame that is not one of the shapes above."""


class Unauthorized(Exception):
    """A node's token was refused (missing, invalid, expired, for another worker): HTTP 401."""


def bearer(token: str) -> str:
    """The ``Authorization`` header value that carries ``token``."""
    return f"Bearer {token}"


def bearer_token(values: list[str]) -> str:
    """The token of a request's ``Authorization`` header values.

    Raises:
        Unauthorized: no header, several, or not ``Bearer <token>``.
    """
    if len(values) != 1:
        raise Unauthorized(
            "no Authorization header" if not values else "several Authorization headers"
        )
    scheme, _, token = values[0].strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization is not 'Bearer <token>'")
    return token.strip()


def pack(frame: dict[str, Any]) -> bytes:
    return bytes(msgpack.packb(frame))


def unpack(data: bytes | str) -> dict[str, Any]:
    """Decode one frame.

    Raises:
        RpcFrameError: text, not MessagePack, not a map, or without a string ``t``.
    """
    if isinstance(data, str):
        raise RpcFrameError("text frame")
    try:
        frame = msgpack.unpackb(data, raw=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise RpcFrameError(f"not MessagePack: {exc}") from exc
    if not isinstance(frame, dict) or not isinstance(frame.get("t"), str):
        raise RpcFrameError("not a map with a type 't'")
    return frame


def call(call_id: int, method: str, args: dict[str, Any]) -> bytes:
    return pack({"t": "call", "id": call_id, "method": method, "args": args})


def result(call_id: int, value: Any) -> bytes:
    return pack({"t": "result", "id": call_id, "value": value})


def error(call_id: int, code: str, message: str) -> bytes:
    return pack({"t": "error", "id": call_id, "code": code, "message": message})


def layers(peer: str, producers: dict[str, str]) -> bytes:
    """A subscribe connection's video layer changes, ``{producer id: layer}``."""
    return pack({"t": "layers", "peer": peer, "producers": producers})


def offer(peer: str, sdp: str, version: int, producers: dict[str, dict[str, str]]) -> bytes:
    return pack(
        {"t": "offer", "peer": peer, "sdp": sdp, "version": version, "producers": producers}
    )
