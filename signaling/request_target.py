"""Request targets: one parse of an HTTP request target decides both where a request goes and,
for a WebSocket, which message limit it gets.

Only the origin form of RFC 9112 section 3.2.1 (``absolute-path [ "?" query ]``) is served. The
absolute form (``http://x/ws``), the authority and asterisk forms, a path with an empty segment
(``//x/ws``, ``/ws/``), a dot segment (``..``, ``.``, also percent-encoded), a percent-encoded
``/`` or ``\\`` or control character, bad percent-encoding or non-UTF-8 bytes are refused with 400;
a well-formed path nothing serves is 404. Matching is exact and case-sensitive (``/WS`` is not
``/ws``). HAProxy passes targets through unchanged (``mode tcp``), so this is where they are
refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import unquote

# RFC 3986 pchar (unreserved, pct-encoded, sub-delims, ":", "@") plus "/" between segments.
_PATH = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*")
# A query may hold anything visible but "#" (the fragment never travels).
_QUERY = re.compile(r"[\x21-\x22\x24-\x7e]*")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_FORBIDDEN_DECODED = re.compile(r"[/\\\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class WsTarget:
    """``/ws``: the classroom WebSocket."""

    query: str


@dataclass(frozen=True, slots=True)
class BoardTarget:
    """``/whiteboard/<room>/<board>``: a y-websocket connection (room and board decoded)."""

    room: str
    board: str
    query: str


@dataclass(frozen=True, slots=True)
class SnapshotTarget:
    """``/whiteboard/<room>/<board>/snapshots/<id>``: a snapshot download (plain HTTP)."""

    room: str
    board: str
    snapshot: str
    query: str


@dataclass(frozen=True, slots=True)
class ExportTarget:
    """``/rooms/<room>/export.json`` or ``/rooms/<room>/export.csv``: the class export
    (plain HTTP, a staff access token in ``Authorization: Bearer``)."""

    room: str
    format: str
    query: str


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """Any other well-formed path: answered by :class:`signaling.http.HttpRoutes` (or 404)."""

    path: str
    query: str


@dataclass(frozen=True, slots=True)
class BadTarget:
    """A target that is refused before any upgrade, with this status and plain-text reason."""

    status: HTTPStatus
    reason: str


Target = WsTarget | BoardTarget | SnapshotTarget | ExportTarget | HttpTarget | BadTarget


def parse_target(target: str) -> Target:
    """Route one request target (the request line's second word, as received).

    Returns:
        the route; :class:`BadTarget` (400 or 404) for anything not served.
    """
    if not target.startswith("/"):
        return BadTarget(HTTPStatus.BAD_REQUEST, "the request target must be a path (origin form)")
    path, _, query = target.partition("?")
    if not _PATH.fullmatch(path) or not _QUERY.fullmatch(query):
        return BadTarget(HTTPStatus.BAD_REQUEST, "the request target has characters not allowed")
    if path == "/":
        return HttpTarget(path, query)
    segments = path[1:].split("/")
    decoded = [_decode(segment) for segment in segments]
    for segment in decoded:
        if segment is None:
            return BadTarget(HTTPStatus.BAD_REQUEST, "bad percent-encoding in the path")
        if segment in ("", ".", ".."):
            return BadTarget(HTTPStatus.BAD_REQUEST, "empty or dot segments are not allowed")
        if _FORBIDDEN_DECODED.search(segment):
            return BadTarget(
                HTTPStatus.BAD_REQUEST, "encoded slashes or control characters are not allowed"
            )
    names = [s for s in decoded if s is not None]
    if segments[0] == "ws":
        return WsTarget(query) if len(segments) == 1 else _not_found()
    if segments[0] == "whiteboard":
        if len(segments) == 3:
            return BoardTarget(names[1], names[2], query)
        if len(segments) == 5 and segments[3] == "snapshots":
            return SnapshotTarget(names[1], names[2], names[4], query)
        return _not_found()
    if segments[0] == "rooms":
        if len(segments) == 3 and segments[2] in ("export.json", "export.csv"):
            return ExportTarget(names[1], segments[2].removeprefix("export."), query)
        return _not_found()
    return HttpTarget(path, query)


def _decode(segment: str) -> str | None:
    """A path segment percent-decoded as UTF-8; None when that is not possible."""
    if _PERCENT.search(segment):
        return None
    try:
        return unquote(segment, errors="strict")
    except UnicodeDecodeError:
        return None


def _not_found() -> BadTarget:
    return BadTarget(HTTPStatus.NOT_FOUND, "not found")
