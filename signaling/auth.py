"""Access tokens: JWTs (RFC 7519) signed with HS256 (RFC 7518 section 3.2), via pyjwt.

Claims follow docs/protocol.md ("Access tokens"): ``sub`` (identity), ``name``, ``iat``/``nbf``/
``exp``, ``iss`` and ``grants`` (room, role, can_publish, can_subscribe), in the style of LiveKit's
video grant. The header's ``kid`` names which secret of the :class:`Keyring` signed the token, so a
new secret can be added, made the signing one, and the old one dropped later.

The same keyring signs the short-lived tokens a node presents to an SFU worker's RPC endpoint
(:func:`mint_worker_token`, :func:`verify_worker_token`): audience :data:`WORKER_AUDIENCE`, subject
the worker's id. The audience keeps the two kinds apart: an access token has no ``aud`` and a
worker refuses it; a worker token has one and :func:`decode_claims` refuses it as an access token.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from rooms import CLASS_NAME_MAX, Participant, Role, is_room_id

from .errors import TokenExpired, TokenInvalid, TokenWrongRoom

ISSUER = "liveclass"
ALGORITHM = "HS256"
#: Clock skew allowed on ``exp``/``nbf`` (seconds).
LEEWAY_S = 5
_MIN_SECRET_BYTES = 32
#: The ``aud`` of the tokens a node presents to an SFU worker (``liveclass sfu``).
WORKER_AUDIENCE = "liveclass-sfu"
#: Lifetime of a worker token (s). It is checked once, at the RPC handshake; each connection
#: (and reconnection) mints its own.
WORKER_TOKEN_TTL_S = 60
#: The longest lifetime (``exp`` - ``iat``, or - ``nbf`` if earlier; s) a worker accepts: a worker
#: token leaked from a node's memory or a proxy's log is good for minutes, not years.
WORKER_TOKEN_MAX_TTL_S = 300


@dataclass(frozen=True, slots=True)
class Keyring:
    """HS256 secrets by key id; ``signing_kid`` names the one new tokens are signed with.

    Raises:
        ValueError: no secrets, an unknown signing kid, or a secret shorter than 32 bytes.
    """

    secrets: Mapping[str, bytes]
    signing_kid: str

    def __post_init__(self) -> None:
        if not self.secrets:
            raise ValueError("at least one secret is required")
        if self.signing_kid not in self.secrets:
            raise ValueError(f"signing key id {self.signing_kid!r} has no secret")
        for kid, secret in self.secrets.items():
            if len(secret) < _MIN_SECRET_BYTES:
                raise ValueError(f"secret {kid!r} is shorter than {_MIN_SECRET_BYTES} bytes")


@dataclass(frozen=True, slots=True)
class Grants:
    """What a token allows: one room, one role, and media rights."""

    room: str
    role: Role
    can_publish: bool = True
    can_subscribe: bool = True


def mint(
    keyring: Keyring,
    *,
    identity: str,
    name: str,
    grants: Grants,
    ttl_s: int,
    now: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Sign an access token valid for ``ttl_s`` seconds from ``now`` (Unix seconds).

    Raises:
        ValueError: ``grants.room`` is not a room id (1-64 of ``A-Za-z0-9_-``), or ``identity``
            is empty: no server would accept the token.
    """
    if not is_room_id(grants.room):
        raise ValueError(f"room {grants.room!r}: a room id is 1-64 letters, digits, '_' or '-'")
    if not identity:
        raise ValueError("the identity is empty")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": identity,
        "name": name,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_s,
        "grants": {
            "room": grants.room,
            "role": grants.role.value,
            "can_publish": grants.can_publish,
            "can_subscribe": grants.can_subscribe,
        },
    }
    if extra:
        claims.update(extra)
    return jwt.encode(
        claims,
        keyring.secrets[keyring.signing_kid],
        algorithm=ALGORITHM,
        headers={"kid": keyring.signing_kid},
    )


def decode_claims(keyring: Keyring, token: str, *, audience: str | None = None) -> dict[str, Any]:
    """Verify a token's signature, algorithm, issuer, times and audience; return its claims.

    Args:
        audience: the ``aud`` the token must carry; None (access tokens): it must carry none.

    Raises:
        TokenExpired: ``exp`` passed or ``nbf`` in the future.
        TokenInvalid: anything else wrong (malformed, ``alg`` not HS256, ``none``, unknown kid,
            bad signature, missing claims, another audience).
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenInvalid(f"malformed token: {exc}") from exc
    if header.get("alg") != ALGORITHM:
        raise TokenInvalid(f"token algorithm must be {ALGORITHM}")
    secret = keyring.secrets.get(str(header.get("kid")))
    if secret is None:
        raise TokenInvalid("token signed with an unknown key id")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            audience=audience,
            leeway=LEEWAY_S,
            options={"require": ["exp", "nbf", "iat", "sub", "iss"]},
        )
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError) as exc:
        raise TokenExpired(str(exc)) from exc
    except jwt.PyJWTError as exc:
        raise TokenInvalid(str(exc)) from exc
    return claims


@dataclass(frozen=True, slots=True)
class Access:
    """What a verified access token says: the participant it admits and the class's display name
    it carries (the optional ``class_name`` claim; None without one)."""

    participant: Participant
    class_name: str | None = None


def verify(keyring: Keyring, token: str, room: str) -> Participant:
    """Verify an access token for ``room`` and return the participant it admits (as
    :func:`verify_access`, without the class name)."""
    return verify_access(keyring, token, room).participant


def verify_access(keyring: Keyring, token: str, room: str) -> Access:
    """Verify an access token for ``room``; return the participant it admits and its class name.

    Every claim of docs/protocol.md ("Access tokens") must be present with its type: ``iat``,
    ``nbf`` and ``exp`` integers; ``sub`` and ``name`` non-empty strings; ``grants`` with
    ``room`` (a room id), ``role``, ``can_publish`` and ``can_subscribe`` (booleans). The
    optional ``class_name`` is a string of 1-100 characters when present, the optional
    ``invite_id`` (the invite link a dev student token was traded for) a string.

    Raises:
        TokenInvalid, TokenExpired: as :func:`decode_claims`, or a claim missing or mistyped.
        TokenWrongRoom: the token's ``grants.room`` is not ``room`` (which includes a ``room``
            that is no room id).
    """
    claims = decode_claims(keyring, token)
    for time_claim in ("iat", "nbf", "exp"):
        # pyjwt reads "exp": "1700000000" as a number; the protocol says an int (not a bool).
        if type(claims.get(time_claim)) is not int:
            raise TokenInvalid(f"token claim {time_claim!r} must be an integer")
    grants = claims.get("grants")
    if not isinstance(grants, dict) or claims.get("invite"):
        raise TokenInvalid("token carries no grants")
    identity, name = claims.get("sub"), claims.get("name")
    if not isinstance(identity, str) or not identity or not isinstance(name, str) or not name:
        raise TokenInvalid("token claims 'sub' and 'name' must be non-empty strings")
    try:
        role = Role(grants.get("role"))
    except ValueError as exc:
        raise TokenInvalid("token role must be teacher, assistant or student") from exc
    granted_room = grants.get("room")
    if not isinstance(granted_room, str) or not is_room_id(granted_room):
        raise TokenInvalid("token grants.room must be a room id (1-64 of A-Za-z0-9_-)")
    # A missing media grant is refused, never read as a permission.
    can_publish, can_subscribe = grants.get("can_publish"), grants.get("can_subscribe")
    if not isinstance(can_publish, bool) or not isinstance(can_subscribe, bool):
        raise TokenInvalid("token grants.can_publish and grants.can_subscribe must be booleans")
    class_name = claims.get("class_name")
    if class_name is not None and (
        not isinstance(class_name, str) or not 0 < len(class_name) <= CLASS_NAME_MAX
    ):
        raise TokenInvalid(f"token claim 'class_name' must be 1-{CLASS_NAME_MAX} characters")
    if granted_room != room:
        raise TokenWrongRoom("token is for another room")
    invite = claims.get("invite_id")
    if invite is not None and not isinstance(invite, str):
        raise TokenInvalid("token claim 'invite_id' must be a string")
    participant = Participant(identity, name, role, can_publish, can_subscribe, invite)
    return Access(participant, class_name)


def mint_worker_token(
    keyring: Keyring,
    worker_id: str,
    *,
    ttl_s: int = WORKER_TOKEN_TTL_S,
    now: float | None = None,
) -> str:
    """Sign the token a node presents to SFU worker ``worker_id`` (``Authorization: Bearer``),
    valid for ``ttl_s`` seconds from ``now`` (Unix seconds), with the keyring's signing kid."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": WORKER_AUDIENCE,
        "sub": worker_id,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_s,
    }
    return jwt.encode(
        claims,
        keyring.secrets[keyring.signing_kid],
        algorithm=ALGORITHM,
        headers={"kid": keyring.signing_kid},
    )


def verify_worker_token(keyring: Keyring, token: str, worker_id: str) -> None:
    """Check a node's token for SFU worker ``worker_id``; any kid of the keyring verifies.

    Raises:
        TokenExpired: ``exp`` passed or ``nbf`` in the future (beyond :data:`LEEWAY_S`).
        TokenInvalid: as :func:`decode_claims` (an access token has no audience, so it is
            refused here), the token is for another worker, or it lives longer than
            :data:`WORKER_TOKEN_MAX_TTL_S`.
    """
    claims = decode_claims(keyring, token, audience=WORKER_AUDIENCE)
    if claims.get("sub") != worker_id:
        raise TokenInvalid("token is for another worker")
    check_lifetime(claims, WORKER_TOKEN_MAX_TTL_S)


def check_lifetime(claims: Mapping[str, Any], max_ttl_s: int) -> None:
    """Refuse a token valid for longer than ``max_ttl_s`` seconds (from ``iat`` or ``nbf``,
    whichever is earlier, to ``exp``); the claims' types were checked by :func:`decode_claims`.

    Raises:
        TokenInvalid: the lifetime is longer, or a time claim is not a number.
    """
    times = [claims.get("exp"), claims.get("iat"), claims.get("nbf")]
    if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in times):
        raise TokenInvalid("token times must be numbers")
    exp, iat, nbf = (float(t) for t in times)  # type: ignore[arg-type]
    if exp - min(iat, nbf) > max_ttl_s:
        raise TokenInvalid(f"token lifetime is longer than {max_ttl_s} s")
