"""TURN REST API credentials: short-lived TURN usernames and passwords minted from a shared secret.

The scheme is draft-uberti-behave-turn-rest-00 ("A REST API for Access to TURN Services"),
section 2.2, as coturn implements it with ``use-auth-secret`` and ``static-auth-secret``
(turnserver(1), "TURN REST API")::

    username = "<expiry>:<identity>"        # expiry: unix time in seconds
    password = base64(HMAC-SHA1(secret, username))

The client hands both to the TURN server as ordinary long-term credentials (RFC 8656); coturn
recomputes the password from its copy of the secret and refuses (401) a username whose expiry
is in the past. It checks the expiry when a TURN session authenticates, not afterwards: an
allocation made with a credential keeps being refreshed, and keeps relaying to new peers, after
the credential expired (tests/integration/test_coturn.py proves both). So the TTL bounds how
long a leaked credential opens new allocations, not how long a class can last.

What coturn 4.6.1 does with the username, which the checks below follow:

- It reads the expiry from the digits before the first ``:``, so an identity may itself hold
  ``:`` (``"1700000600:a:b"`` expires at 1700000600).
- It refuses a username holding a space, a tab, ``'``, ``"``, ``\\``, CR or LF, or both the words
  "union" and "select" in any case (``is_secure_username``, against SQL injection into its user
  databases), and does not answer such a request at all: the client sees a timeout, not a 401.
- It counts ``user-quota`` per identity (the part after the expiry), across credentials.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from dataclasses import dataclass
from urllib.parse import quote

from turn_config.errors import InvalidIdentity, InvalidSecret, InvalidTtl

#: Default credential lifetime (s). A credential only has to be valid when a client makes its
#: allocations, seconds after it got the credential; 10 minutes leaves room for clock skew
#: between liveclass and coturn and for a slow ICE start, and limits what a leaked credential
#: is good for.
DEFAULT_TTL_S = 600
#: Shortest lifetime accepted (s): below a minute, clock skew between liveclass and coturn
#: alone can make a fresh credential arrive expired.
MIN_TTL_S = 60
#: Longest lifetime accepted (s): the one day the draft suggests as a typical value.
MAX_TTL_S = 86_400
#: Longest identity in a username (characters). RFC 8489 section 14.3 and coturn cap USERNAME at
#: 512 bytes; 256 leaves room for the expiry and any later prefix.
MAX_IDENTITY_CHARS = 256

#: What coturn's ``is_secure_username`` refuses, besides "union" together with "select".
_REFUSED_CHARS = frozenset(" \t\r\n'\"\\")
#: Characters :func:`turn_identity` keeps as they are: RFC 3986 unreserved and sub-delims
#: without ``'``, plus ``:`` ``@`` ``/``. Everything else, ``%`` included, is percent-encoded.
_KEPT_CHARS = "-._~!$&()*+,;=:@/"
_SELECT = re.compile("select", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class TurnCredential:
    """One TURN REST API credential.

    Attributes:
        username: ``"<expires_at>:<identity>"``, the RTCIceServer ``username``.
        password: base64 HMAC-SHA1 of ``username`` under the shared secret (28 characters),
            the RTCIceServer ``credential``.
        expires_at: unix time (s) of its last valid second: coturn compares whole seconds and
            refuses it for new allocations from ``expires_at + 1``.
    """

    username: str
    password: str
    expires_at: int


def mint(secret: bytes, identity: str, ttl_s: int, now: float) -> TurnCredential:
    """A credential for ``identity``, valid from ``now`` for ``ttl_s`` seconds.

    Args:
        secret: the shared secret, the bytes of coturn's ``static-auth-secret`` value.
        identity: who the credential is for, shown in coturn's logs and counted by its
            ``user-quota``; used verbatim, so it must be a string coturn accepts (see
            :func:`turn_identity` to make one from any participant identity).
        ttl_s: lifetime in seconds, ``MIN_TTL_S``..``MAX_TTL_S``.
        now: the current unix time in seconds (``time.time()``); the expiry is
            ``floor(now) + ttl_s``.

    Returns:
        The credential; ``expires_at`` is an integer unix time in seconds.

    Raises:
        InvalidSecret: ``secret`` is empty.
        InvalidIdentity: ``identity`` is empty, longer than ``MAX_IDENTITY_CHARS``, not printable
            ASCII, or holds what coturn refuses in a username.
        InvalidTtl: ``ttl_s`` is not an integer in ``MIN_TTL_S``..``MAX_TTL_S``.
        ValueError: ``now`` is not a finite, non-negative number.
    """
    if not secret:
        raise InvalidSecret("the TURN secret is empty")
    check_identity(identity)
    check_ttl(ttl_s)
    if not math.isfinite(now) or now < 0:
        raise ValueError(f"now must be a unix time in seconds: {now!r}")
    expires_at = math.floor(now) + ttl_s
    username = f"{expires_at}:{identity}"
    digest = hmac.new(secret, username.encode("ascii"), hashlib.sha1).digest()
    return TurnCredential(username, base64.b64encode(digest).decode("ascii"), expires_at)


def check_ttl(ttl_s: int) -> None:
    """Check a credential lifetime (``--turn-ttl-s``).

    Raises:
        InvalidTtl: ``ttl_s`` is not an integer number of seconds in ``MIN_TTL_S``..``MAX_TTL_S``.
    """
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int):
        raise InvalidTtl(f"--turn-ttl-s must be an integer number of seconds: {ttl_s!r}")
    if not MIN_TTL_S <= ttl_s <= MAX_TTL_S:
        raise InvalidTtl(
            f"--turn-ttl-s {ttl_s} is outside {MIN_TTL_S}..{MAX_TTL_S} s (clock skew makes "
            "shorter credentials arrive expired; longer ones are worth more to whoever leaks them)"
        )


def check_identity(identity: str) -> None:
    """Check that ``identity`` can go verbatim into a TURN REST API username.

    Raises:
        InvalidIdentity: it is empty, longer than ``MAX_IDENTITY_CHARS``, holds a character
            outside printable ASCII (``!``..``~``) or one coturn refuses (``'`` ``"`` ``\\``), or
            holds both "union" and "select" (coturn drops such requests without an answer).
    """
    if not isinstance(identity, str) or not identity:
        raise InvalidIdentity(f"TURN identity must be a non-empty string: {identity!r}")
    if len(identity) > MAX_IDENTITY_CHARS:
        raise InvalidIdentity(
            f"TURN identity is {len(identity)} characters, more than {MAX_IDENTITY_CHARS}"
        )
    bad = sorted({c for c in identity if not "!" <= c <= "~" or c in _REFUSED_CHARS})
    if bad:
        raise InvalidIdentity(
            f"TURN identity {identity!r} holds {''.join(bad)!r}: only printable ASCII without "
            "quotes or backslash goes into a TURN username (use turn_identity())"
        )
    lowered = identity.lower()
    if "union" in lowered and "select" in lowered:
        raise InvalidIdentity(
            f"TURN identity {identity!r} holds both 'union' and 'select', which coturn refuses "
            "(use turn_identity())"
        )


def turn_identity(identity: str) -> str:
    """``identity`` made fit for :func:`mint`: percent-encoded where coturn would refuse it.

    ASCII letters, digits and ``-._~!$&()*+,;=:@/`` stay as they are; every other character
    (``%``, space, quotes, non-ASCII) becomes its UTF-8 bytes in ``%XX`` form, and when the
    result holds both "union" and "select", the second letter of each "select" is
    percent-encoded too (``s%65lect``). So ``urllib.parse.unquote`` gives the identity back, and
    distinct identities stay distinct: ``turn_identity("zoë b") == "zo%C3%AB%20b"``.

    Raises:
        InvalidIdentity: ``identity`` is empty, or longer than ``MAX_IDENTITY_CHARS`` once
            encoded.
    """
    if not isinstance(identity, str) or not identity:
        raise InvalidIdentity(f"TURN identity must be a non-empty string: {identity!r}")
    encoded = quote(identity, safe=_KEPT_CHARS)
    lowered = encoded.lower()
    if "union" in lowered and "select" in lowered:
        encoded = _SELECT.sub(lambda m: f"{m[0][0]}%{ord(m[0][1]):02X}{m[0][2:]}", encoded)
    check_identity(encoded)
    return encoded
