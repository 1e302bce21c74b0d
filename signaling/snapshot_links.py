"""Snapshot links: short-lived, single-use URLs for downloading one saved whiteboard snapshot.

A staff member asks for a link over ``/ws`` (``board.snapshot_link``, docs/protocol.md); the
answer is a path ``/whiteboard/<room>/<board>/snapshots/<id>?token=<link token>`` whose token is a
JWT (RFC 7519, HS256, the node's keyring) with audience :data:`SNAPSHOT_AUDIENCE`, naming the
room, the board, the snapshot and the identity, valid for :data:`SNAPSHOT_LINK_TTL_S` seconds.
An access token has no audience, so it is refused at the download; a link token has one, so
:func:`signaling.auth.decode_claims` refuses it everywhere else. The access token never travels
in a download URL (address bars, browser history, proxies' logs). See
docs/decisions/0007-short-lived-snapshot-links.md.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import jwt

from rooms import ParticipantRemoved, RoomError, RoomState, SessionEnded

from .auth import ALGORITHM, ISSUER, Keyring, check_lifetime, decode_claims
from .errors import TokenInvalid

#: The ``aud`` of a snapshot link's token.
SNAPSHOT_AUDIENCE = "liveclass-snapshot"
#: How long a snapshot link works (s); a token minted for longer is refused.
SNAPSHOT_LINK_TTL_S = 60
#: Link tokens remembered as used at once on a node; past it new downloads wait for old links
#: to expire (at most :data:`SNAPSHOT_LINK_TTL_S`).
MAX_USED_LINKS = 65_536


@dataclass(frozen=True, slots=True)
class SnapshotGrant:
    """What a verified link token allows: ``identity`` downloads one snapshot, once."""

    identity: str
    link_id: str
    expires: float


def snapshot_path(room: str, board: str, snapshot_id: int, token: str) -> str:
    """The download path of a link (the token is a JWT: base64url and dots)."""
    where = f"/whiteboard/{quote(room, safe='')}/{quote(board, safe='')}"
    return f"{where}/snapshots/{snapshot_id}?token={token}"


def mint_snapshot_token(
    keyring: Keyring,
    *,
    room: str,
    board: str,
    snapshot_id: int,
    identity: str,
    ttl_s: int = SNAPSHOT_LINK_TTL_S,
    now: float | None = None,
) -> str:
    """Sign a link token for one snapshot, valid ``ttl_s`` seconds from ``now`` (Unix s)."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": ISSUER,
        "aud": SNAPSHOT_AUDIENCE,
        "sub": identity,
        "jti": secrets.token_urlsafe(12),
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_s,
        "room": room,
        "board": board,
        "snapshot": snapshot_id,
    }
    return jwt.encode(
        claims,
        keyring.secrets[keyring.signing_kid],
        algorithm=ALGORITHM,
        headers={"kid": keyring.signing_kid},
    )


def verify_snapshot_token(
    keyring: Keyring, token: str, *, room: str, board: str, snapshot_id: int
) -> SnapshotGrant:
    """Check a link token for one snapshot.

    Raises:
        TokenExpired: the link expired.
        TokenInvalid: as :func:`signaling.auth.decode_claims` (an access token is refused: it
            has no audience), a token for another room, board or snapshot, or one minted for
            longer than :data:`SNAPSHOT_LINK_TTL_S`.
    """
    claims = decode_claims(keyring, token, audience=SNAPSHOT_AUDIENCE)
    if (claims.get("room"), claims.get("board"), claims.get("snapshot")) != (
        room,
        board,
        snapshot_id,
    ):
        raise TokenInvalid("this link is for another snapshot")
    check_lifetime(claims, SNAPSHOT_LINK_TTL_S)
    identity, link_id = claims.get("sub"), claims.get("jti")
    if not isinstance(identity, str) or not isinstance(link_id, str) or not link_id:
        raise TokenInvalid("link token has no identity or id")
    return SnapshotGrant(identity, link_id, float(claims["exp"]))


def download_refusal(state: RoomState, identity: str) -> RoomError | None:
    """Why ``identity`` may not have a room's snapshots now (``SessionEnded``,
    ``ParticipantRemoved``); None when it may. A token outlives a removal and the session's end;
    the room's state does not."""
    if state.ended is not None:
        return SessionEnded("the session has ended")
    if identity in state.removed:
        return ParticipantRemoved("you were removed from this session")
    return None


@dataclass
class UsedLinks:
    """The link tokens already used on this node, each kept until it expires (bounded)."""

    capacity: int = MAX_USED_LINKS
    _used: dict[str, float] = field(default_factory=dict)

    def claim(self, grant: SnapshotGrant, now: float | None = None) -> bool:
        """Mark ``grant``'s link used; False when it was used already or the table is full."""
        now = time.time() if now is None else now
        if grant.link_id in self._used:
            return False
        if len(self._used) >= self.capacity:
            self._used = {k: exp for k, exp in self._used.items() if exp >= now}
            if len(self._used) >= self.capacity:
                return False
        self._used[grant.link_id] = grant.expires
        return True

    def release(self, grant: SnapshotGrant) -> None:
        """Give a link back (the download failed on the server's side: it may be retried)."""
        self._used.pop(grant.link_id, None)
