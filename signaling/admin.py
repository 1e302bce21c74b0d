"""The operators' status page and admin API, in the style of LiveKit's RoomService.

Every path here needs the deployment's admin token (``--admin-token-file`` or
``LIVECLASS_ADMIN_TOKEN``) in ``Authorization: Bearer``, compared in constant time; a classroom
access token is not one (401 without a bearer, 403 with a wrong one). Without an admin token
configured these paths answer 404: the API is off. See docs/operations.md, "Status page and admin
API", and docs/decisions/0028-admin-api.md.

- ``GET /status`` (plain HTML, server-rendered, no script) and ``GET /status.json``;
- ``GET /admin/rooms``: the rooms open on this node and their participants online here;
- ``GET /admin/rooms/<room>/participants``;
- ``GET /admin/rooms/<room>/end?reason=...``: the same as the teacher's ``session.end``;
- ``GET /admin/rooms/<room>/remove?identity=...&reason=...``: the same as a staff
  ``participant.remove``.

Actions go through the room's command path (decide, then append), as :data:`ADMIN`, so every
node and the room log agree on them. websockets' HTTP parser reads GET only, hence GET actions:
they need the bearer token, which no browser sends by itself (no cookie is involved).
"""

from __future__ import annotations

import hmac
import html
import json
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol
from urllib.parse import parse_qs

from websockets.http11 import Request, Response

from rooms import Command, Participant, ParticipantRemove, Role, RoomError, SessionEnd

from .http import as_json, respond, text
from .redis_cluster import ClusterUnavailable
from .store import StoreUnavailable

#: The actor of every admin action in the room log (``by`` of the events). The ``@`` keeps it
#: apart from an identity a participant's token names in practice.
ADMIN = Participant("@admin", "Administrator", Role.TEACHER)
#: At most this many rooms of a node, and participants of a room, are listed (counts are whole).
ROOMS_LISTED = 500
PARTICIPANTS_LISTED = 200
#: Shortest admin token accepted (characters): an operator's secret, not a password.
ADMIN_TOKEN_MIN = 16


def _version() -> str:
    try:
        return version("liveclass")
    except PackageNotFoundError:  # run from a checkout without installing
        return "unknown"


#: This process's liveclass version.
VERSION = _version()


class NoSuchRoom(LookupError):
    """An action named a room with no log (never joined): nothing is created for it."""


def iso_time(unix_s: float) -> str:
    """``unix_s`` as ISO 8601 UTC to the second (``2026-12-04T18:40:00Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix_s))


def status_document(
    nodes: list[dict[str, Any]],
    workers: list[dict[str, Any]],
    redis: dict[str, Any] | None,
) -> dict[str, Any]:
    """The whole of ``/status.json``: ``mode`` (``embedded`` or ``cluster``), ``version``,
    ``at``, ``nodes`` (:meth:`signaling.node.SignalingNode.node_facts` each), ``sfu_workers``
    and ``redis`` (the cluster's state; ``{}`` embedded)."""
    return {
        "mode": "embedded" if redis is None else "cluster",
        "version": VERSION,
        "at": iso_time(time.time()),
        "nodes": nodes,
        "sfu_workers": workers,
        "redis": redis or {},
    }


def is_admin_path(path: str) -> bool:
    """Whether ``path`` belongs to the status page or the admin API."""
    return path in ("/status", "/status.json") or path.startswith("/admin/") or path == "/admin"


def check_admin_token(token: str) -> str:
    """The admin token, checked: empty (the API off) or at least :data:`ADMIN_TOKEN_MIN` long.

    Raises:
        ValueError: too short.
    """
    token = token.strip()
    if token and len(token) < ADMIN_TOKEN_MIN:
        raise ValueError(f"the admin token must be at least {ADMIN_TOKEN_MIN} characters")
    return token


class AdminNode(Protocol):
    """What the API needs of the node (:class:`signaling.node.SignalingNode`)."""

    def status(self) -> Awaitable[dict[str, Any]]: ...

    def admin_command(self, room: str, command: Command) -> Awaitable[int]: ...

    def drain_worker(self, worker_id: str, draining: bool) -> Awaitable[bool]: ...


class AdminApi:
    """Answers the status and admin paths for one node.

    Args:
        token: the admin token ('' : the API is off and answers 404).
        node: the node's status and command path.
    """

    def __init__(self, token: str, node: AdminNode) -> None:
        self._token = token.encode()
        self.node = node

    def refusal(self, request: Request) -> Response | None:
        """401 without a bearer token, 403 with one that is not the admin token (a classroom
        access token included), 404 when the API is off; None when allowed."""
        if not self._token:
            return text(HTTPStatus.NOT_FOUND, "not found (the admin API is off)\n")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return text(HTTPStatus.UNAUTHORIZED, "the admin token is needed (Bearer)\n")
        if not hmac.compare_digest(token.strip().encode(), self._token):
            return text(HTTPStatus.FORBIDDEN, "not the admin token\n")
        return None

    async def __call__(self, path: str, query: str, request: Request) -> Response:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        args = {k: v[0] for k, v in parse_qs(query).items()}
        try:
            if path == "/status.json":
                return as_json(HTTPStatus.OK, await self.node.status())
            if path == "/status":
                page = render_status(await self.node.status()).encode()
                return respond(HTTPStatus.OK, page, "text/html; charset=utf-8")
            if path == "/admin/rooms":
                status = await self.node.status()
                return as_json(HTTPStatus.OK, {"rooms": all_rooms(status)})
            return await self._room_path(path, args)
        except (StoreUnavailable, ClusterUnavailable):
            return _error(HTTPStatus.SERVICE_UNAVAILABLE, "unavailable", "the room store is down")

    async def _room_path(self, path: str, args: dict[str, str]) -> Response:
        parts = path.split("/")  # "", "admin", "rooms", room, action
        if len(parts) == 5 and parts[2] == "workers" and parts[4] == "drain":
            draining = args.get("undo", "") not in ("1", "true", "yes")
            if not await self.node.drain_worker(parts[3], draining):
                return _error(
                    HTTPStatus.NOT_FOUND, "no_such_worker", f"no SFU worker {parts[3]} registered"
                )
            return as_json(HTTPStatus.OK, {"worker": parts[3], "draining": draining})
        if len(parts) != 5 or parts[2] != "rooms":
            return text(HTTPStatus.NOT_FOUND, "not found\n")
        room, action = parts[3], parts[4]
        if action == "participants":
            rooms = all_rooms(await self.node.status())
            found = next((r for r in rooms if r["room"] == room), None)
            if found is None:
                return _error(HTTPStatus.NOT_FOUND, "no_such_room", f"{room} is open nowhere")
            return as_json(HTTPStatus.OK, found)
        actions: dict[str, Callable[[], Command]] = {
            "end": lambda: SessionEnd(args.get("reason", "")),
            "remove": lambda: ParticipantRemove(args.get("identity", ""), args.get("reason", "")),
        }
        if action not in actions:
            return text(HTTPStatus.NOT_FOUND, "not found\n")
        if action == "remove" and not args.get("identity"):
            return _error(HTTPStatus.BAD_REQUEST, "bad_field", "identity= is required")
        try:
            events = await self.node.admin_command(room, actions[action]())
        except NoSuchRoom as exc:
            return _error(HTTPStatus.NOT_FOUND, "no_such_room", str(exc))
        except RoomError as exc:
            return _error(HTTPStatus.CONFLICT, exc.code, str(exc))
        return as_json(HTTPStatus.OK, {"room": room, "action": action, "events": events})


def _error(status: HTTPStatus, code: str, message: str) -> Response:
    return as_json(status, {"error": code, "message": message})


def all_rooms(status: dict[str, Any]) -> list[dict[str, Any]]:
    """Every room of the status, its participants merged over the nodes holding them."""
    merged: dict[str, dict[str, Any]] = {}
    for node in status["nodes"]:
        for room in node.get("rooms_open", []):
            entry = merged.setdefault(
                room["room"], {"room": room["room"], "online": 0, "participants": []}
            )
            entry["online"] += room.get("online", len(room["participants"]))
            entry["participants"].extend({**p, "node": node["id"]} for p in room["participants"])
    return sorted(merged.values(), key=lambda r: str(r["room"]))


def _cells(values: list[Any], tag: str = "td") -> str:
    return "".join(f"<{tag}>{html.escape(str(v))}</{tag}>" for v in values)


def _table(headings: list[str], rows: list[list[Any]]) -> str:
    body = "".join(f"<tr>{_cells(row)}</tr>" for row in rows) or (
        f'<tr><td colspan="{len(headings)}">none</td></tr>'
    )
    return f"<table><tr>{_cells(headings, 'th')}</tr>{body}</table>"


def render_status(status: dict[str, Any]) -> str:
    """The status page: plain HTML, every value escaped, no script."""
    nodes = [
        [
            n["id"],
            n["address"],
            n["connections"],
            n["rooms"],
            n["version"],
            n["started"],
            "ready" if n["ready"] else "NOT READY",
        ]
        for n in status["nodes"]
    ]
    rooms = [
        [r["room"], r["online"], ", ".join(p["identity"] for p in r["participants"])]
        for r in all_rooms(status)
    ]
    workers = [
        [w["id"], w["url"], w.get("rooms", ""), w.get("load", ""), w.get("state", "")]
        for w in status["sfu_workers"]
    ]
    redis = status["redis"]
    redis_rows = [[k, json.dumps(v) if not isinstance(v, str) else v] for k, v in redis.items()]
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>liveclass status</title></head>"
        f"<body><h1>liveclass status</h1><p>mode: {html.escape(status['mode'])}; "
        f"version {html.escape(status['version'])}; at {html.escape(status['at'])}</p>"
        "<h2>Nodes</h2>"
        + _table(["id", "address", "connections", "rooms", "version", "started", "ready"], nodes)
        + "<h2>Rooms</h2>"
        + _table(["room", "participants", "who"], rooms)
        + "<h2>SFU workers</h2>"
        + _table(["id", "url", "rooms", "load", "state"], workers)
        + "<h2>Redis Cluster</h2>"
        + _table(["fact", "value"], redis_rows)
        + "</body></html>\n"
    )
