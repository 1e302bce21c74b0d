"""Plain HTTP on the WebSocket port: the web app, health, readiness, metrics and the dev pages.

The node routes each request once (:mod:`signaling.request_target`); every well-formed path but
the WebSocket endpoints and snapshots is answered here (GET only, as websockets' HTTP/1.1 parser
accepts), and every answer of the port gets the security headers (:meth:`HttpRoutes.secure`).
See docs/protocol.md, "HTTP endpoints".
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from rooms import CLASS_NAME_MAX, Role

from .auth import Grants, Keyring, decode_claims, mint
from .errors import ClientError
from .static_site import STATIC_PREFIX, StaticSite

_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)
_NAME_MAX = 60
_ROOM_SLUG = re.compile(r"[^a-z0-9]+")


def respond(status: HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers(_SECURITY_HEADERS)
    headers["Content-Type"] = content_type
    headers["Content-Length"] = str(len(body))
    return Response(status.value, status.phrase, headers, body)


def text(status: HTTPStatus, body: str) -> Response:
    return respond(status, body.encode(), "text/plain; charset=utf-8")


def as_json(status: HTTPStatus, body: dict[str, Any]) -> Response:
    return respond(status, json.dumps(body).encode(), "application/json")


def inline_script_hashes(html: str) -> list[str]:
    """CSP hash sources (``'sha256-<base64>'``, CSP Level 3 section 2.3.1) of the inline
    scripts of one page (the web app's import map): their text exactly as between the tags."""
    return [
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in _INLINE_SCRIPT.findall(html)
    ]


def content_security_policy(script_hashes: list[str]) -> str:
    """The Content-Security-Policy of every response (CSP Level 3).

    Nothing loads but what this server serves: scripts are the app's modules and vendored
    files plus the inline scripts named by hash (no other inline script, no ``eval``); styles are
    the app's stylesheet (style properties set from script are CSSOM, which CSP allows);
    ``connect-src 'self'`` covers ``ws(s)://`` to the page's own host and port; ``data:`` images
    are the empty favicon; ``blob:`` the whiteboard's PNG export. Camera and microphone streams
    are ``srcObject``, which CSP does not govern. No page may frame ours.
    """
    scripts = " ".join(["'self'", *script_hashes])
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {scripts}",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob:",
            "connect-src 'self'",
            "font-src 'self'",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
        ]
    )


@dataclass(frozen=True, slots=True)
class HttpSettings:
    web_root: Path
    dev: bool
    public_url: str
    teacher_ttl_s: int = 6 * 3600
    student_ttl_s: int = 6 * 3600
    #: The operators' admin token (signaling/admin.py); empty: the status page and API are off.
    admin_token: str = field(default="", repr=False)


class HttpRoutes:
    """Answers every non-WebSocket request.

    Args:
        ready: whether the node accepts joins (``/readyz``).
        metrics: returns the registry to expose at ``/metrics``.
    """

    def __init__(
        self,
        settings: HttpSettings,
        keyring: Keyring,
        ready: Callable[[], bool],
        registry: Any,
    ) -> None:
        self.settings = settings
        self.keyring = keyring
        self.ready = ready
        self.registry = registry
        self.site = StaticSite(settings.web_root)
        pages = self.site.page_texts()
        hashes = sorted({h for page in pages for h in inline_script_hashes(page)})
        self.security_headers = {
            **_SECURITY_HEADERS,
            "Content-Security-Policy": content_security_policy(hashes),
        }

    def secure(self, response: Response) -> Response:
        """Add the security headers ``response`` lacks: every HTTP answer of the port (pages,
        files, 304, errors, and the refusals websockets writes itself) carries them."""
        if response.status_code == HTTPStatus.SWITCHING_PROTOCOLS:
            return response
        for name, value in self.security_headers.items():
            if name not in response.headers:
                response.headers[name] = value
        return response

    def __call__(self, request: Request) -> Response:
        url = urlsplit(request.path)
        path = url.path
        if path == "/healthz":
            return text(HTTPStatus.OK, "ok\n")
        if path == "/readyz":
            if self.ready():
                return text(HTTPStatus.OK, "ready\n")
            return text(HTTPStatus.SERVICE_UNAVAILABLE, "not ready\n")
        if path == "/metrics":
            return respond(HTTPStatus.OK, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        if path == "/":
            return self._page("index.html", request.headers)
        if path.startswith(STATIC_PREFIX):
            found = self.site.file(path.removeprefix(STATIC_PREFIX), request.headers)
            return found or text(HTTPStatus.NOT_FOUND, "not found\n")
        if path == "/dev" or path.startswith("/dev/"):
            if not self.settings.dev:
                return text(HTTPStatus.NOT_FOUND, "not found (the dev pages need --dev)\n")
            return self._dev(path, parse_qs(url.query), request.headers)
        return text(HTTPStatus.NOT_FOUND, "not found\n")

    def _page(self, name: str, headers: Headers) -> Response:
        """A page of the web app (:mod:`signaling.static_site`: revalidated, its files hashed)."""
        return self.site.page(name, headers) or text(HTTPStatus.NOT_FOUND, "not found\n")

    # -- dev pages: create a room, hand out links --------------------------------------------------

    def _dev(self, path: str, query: dict[str, list[str]], headers: Headers) -> Response:
        if path == "/dev":
            return self._page("dev.html", headers)
        if path == "/dev/join":
            return self._page("join.html", headers)
        if path == "/dev/api/new-room":
            teacher_name = _arg(query, "teacher_name") or "Teacher"
            return self._new_room(teacher_name, _arg(query, "class_name"))
        if path == "/dev/api/student-token":
            return self._student_token(_arg(query, "invite"), _arg(query, "name"))
        if path == "/dev/api/personal-invite":
            return self._personal_invite(_arg(query, "teacher"), _arg(query, "name"))
        return text(HTTPStatus.NOT_FOUND, "not found\n")

    def _new_room(self, teacher_name: str, class_name: str) -> Response:
        name = teacher_name.strip()[:_NAME_MAX] or "Teacher"
        titled = class_name.strip()[:CLASS_NAME_MAX]
        # The class's name goes in every token of the room: the teacher's names the room
        # (room.named); the invite's and the students' let their pages show it before joining.
        named = {"class_name": titled} if titled else {}
        # The class link's id: student tokens traded for it carry it, so staff can revoke the
        # link (invite.revoke) and no new identity comes in through it; the teacher's token
        # carries it so their page can.
        link_id = secrets.token_hex(6)
        slug = _ROOM_SLUG.sub("-", (titled or name).lower()).strip("-")[:20] or "class"
        room = f"{slug}-{secrets.token_hex(3)}"
        teacher = mint(
            self.keyring,
            identity=f"t-{secrets.token_hex(4)}",
            name=name,
            grants=Grants(room, Role.TEACHER),
            ttl_s=self.settings.teacher_ttl_s,
            extra={**named, "invite_id": link_id},
        )
        invite = mint(
            self.keyring,
            identity="invite",
            name="invite",
            grants=Grants(room, Role.STUDENT),
            ttl_s=self.settings.student_ttl_s,
            # The teacher's name is only shown on the join page, before the student joins.
            extra={"invite": True, "invite_id": link_id, "teacher_name": name, **named},
        )
        base = self.settings.public_url.rstrip("/")
        return as_json(
            HTTPStatus.OK,
            {
                "room": room,
                "teacher_link": f"{base}/#token={teacher}",
                "student_link": f"{base}/dev/join?invite={invite}",
            },
        )

    def _name_and_claims(self, token: str, name: str) -> tuple[str, dict[str, Any]] | Response:
        """The typed name (trimmed, required) and ``token``'s verified claims, or the dev API's
        JSON error: 400 ``bad_field`` without a name, 403 with the token's error code."""
        name = name.strip()[:_NAME_MAX]
        if not name:
            return as_json(
                HTTPStatus.BAD_REQUEST, {"error": "bad_field", "message": "a name is required"}
            )
        try:
            return name, decode_claims(self.keyring, token)
        except ClientError as exc:
            return as_json(HTTPStatus.FORBIDDEN, {"error": exc.code, "message": exc.message})

    def _student_token(self, invite: str, name: str) -> Response:
        """Trade an invite for a student token. A personal invite (``invite_sub``) always gives
        the same identity, whatever name is typed: a removed student stays removed."""
        checked = self._name_and_claims(invite, name)
        if isinstance(checked, Response):
            return checked
        name, claims = checked
        grants = claims.get("grants")
        if not claims.get("invite") or not isinstance(grants, dict):
            return as_json(
                HTTPStatus.FORBIDDEN, {"error": "token_invalid", "message": "not an invite"}
            )
        personal = claims.get("invite_sub")
        identity = personal if isinstance(personal, str) else f"s-{secrets.token_hex(4)}"
        extra = _class_name_claim(claims)
        if isinstance(claims.get("invite_id"), str):
            extra["invite_id"] = claims["invite_id"]
        token = mint(
            self.keyring,
            identity=identity,
            name=name,
            grants=Grants(str(grants.get("room")), Role.STUDENT),
            ttl_s=self.settings.student_ttl_s,
            extra=extra,
        )
        base = self.settings.public_url.rstrip("/")
        return as_json(HTTPStatus.OK, {"token": token, "link": f"{base}/#token={token}"})

    def _personal_invite(self, teacher: str, name: str) -> Response:
        """A join link for one student, asked for with a staff token of the room: whoever opens
        it is always the same identity, so removing them keeps them out."""
        checked = self._name_and_claims(teacher, name)
        if isinstance(checked, Response):
            return checked
        name, claims = checked
        grants = claims.get("grants")
        if (
            claims.get("invite")
            or not isinstance(grants, dict)
            or grants.get("role") not in (Role.TEACHER.value, Role.ASSISTANT.value)
        ):
            return as_json(
                HTTPStatus.FORBIDDEN, {"error": "not_allowed", "message": "staff hand out links"}
            )
        room = str(grants.get("room"))
        invite = mint(
            self.keyring,
            identity="invite",
            name=name,
            grants=Grants(room, Role.STUDENT),
            ttl_s=self.settings.student_ttl_s,
            extra={
                "invite": True,
                "invite_sub": f"s-{secrets.token_hex(4)}",
                "teacher_name": str(claims.get("name", ""))[:_NAME_MAX],
                **_class_name_claim(claims),
            },
        )
        base = self.settings.public_url.rstrip("/")
        return as_json(
            HTTPStatus.OK,
            {"name": name, "link": f"{base}/dev/join?invite={invite}&name={quote(name)}"},
        )


def _class_name_claim(claims: dict[str, Any]) -> dict[str, Any]:
    """The invite's ``class_name`` claim for the student token it is traded for (if valid)."""
    value = claims.get("class_name")
    if isinstance(value, str) and 0 < len(value) <= CLASS_NAME_MAX:
        return {"class_name": value}
    return {}


def _arg(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    return values[0] if values else ""
