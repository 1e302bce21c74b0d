"""ICE server lists per region, with TURN REST API credentials: a client's ``iceServers``.

:meth:`TurnConfig.ice_servers` answers what a client passes to ``new RTCPeerConnection({
iceServers })`` (W3C webrtc-pc, section 4.2.2 "RTCIceServer Dictionary"): the TURN (and STUN) URLs
of the client's region, with a credential minted for the client (:mod:`turn_config.credentials`).

The ``--turn-servers`` option (``servers`` below) lists the URLs per region::

    eu=turn:turn-eu.example.org:3478,turn:turn-eu.example.org:3478?transport=tcp,turns:turn-eu.example.org:443?transport=tcp;
    us=turn:turn-us.example.org:3478,turns:turn-us.example.org:443?transport=tcp

- Regions are separated by ``;`` (or line breaks), URLs within a region by ``,``; blanks around
  them and empty entries are ignored.
- A region is ``NAME=URL[,URL...]``. Names are letters, digits, ``.``, ``_`` and ``-``, and match
  case-insensitively. With a single region, ``NAME=`` may be left out: it is called "default".
- **The first region is the fallback** for a client whose region is not given or not listed.
- URLs follow RFC 7064 / RFC 7065 (:mod:`turn_config.urls`). Every region needs at least one
  ``turn:`` or ``turns:`` URL. Clients get the URLs in the order given: list
  ``turn:...:3478`` (UDP) first, because aiortc uses only the first TURN URL it can use, and
  ``turns:...:443?transport=tcp`` for networks that let only HTTPS out (:meth:`warnings`
  names a region without one).
- An empty string turns TURN off: clients get ``[]`` and use host candidates only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from turn_config.credentials import (
    DEFAULT_TTL_S,
    TurnCredential,
    check_ttl,
    mint,
    turn_identity,
)
from turn_config.errors import InvalidSecret, InvalidServers
from turn_config.urls import IceUrl, parse_url

#: The name of the one region of a ``--turn-servers`` value that names none.
DEFAULT_REGION = "default"
#: Shortest shared secret accepted (characters). The secret is all that stands between the
#: internet and free use of the relays, and HMAC-SHA1 outputs are public in every credential.
MIN_SECRET_CHARS = 16

_REGION_SEPARATOR = re.compile(r"[;\n]")
_NAMED_REGION = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*=(.*)", re.DOTALL)
_FORMAT = "NAME=URL[,URL...] separated by ';'"


@dataclass(frozen=True, slots=True)
class TurnRegion:
    """The ICE server URLs of one region.

    Attributes:
        name: the region's name, in lower case.
        urls: its STUN/TURN URLs in the order clients get them.
    """

    name: str
    urls: tuple[IceUrl, ...]


def parse_servers(text: str) -> tuple[TurnRegion, ...]:
    """Parse a ``--turn-servers`` value (format in the module docstring).

    Returns:
        The regions in the order given (the first is the fallback); ``()`` for an empty value.

    Raises:
        InvalidServers: a region or URL does not parse, a region or a URL within a region is
            listed twice, a region has no TURN URL, or several regions are given and one has
            no name. The message names the region.
    """
    entries = [entry.strip() for entry in _REGION_SEPARATOR.split(text)]
    entries = [entry for entry in entries if entry]
    regions: list[TurnRegion] = []
    for entry in entries:
        named = _NAMED_REGION.fullmatch(entry)
        head, equals, _ = entry.partition("=")
        if named is None and equals and ":" not in head:
            raise InvalidServers(
                f"--turn-servers: {head.strip()!r} is not a region name "
                "(letters, digits, '.', '_' and '-')"
            )
        if named is not None:
            name, urls_text = named[1].lower(), named[2]
        elif len(entries) == 1:
            name, urls_text = DEFAULT_REGION, entry
        else:
            raise InvalidServers(f"--turn-servers: {entry!r} has no region name ({_FORMAT})")
        if any(region.name == name for region in regions):
            raise InvalidServers(f"--turn-servers: region {name!r} is listed twice")
        urls: list[IceUrl] = []
        for url_text in (part.strip() for part in urls_text.split(",")):
            if not url_text:
                continue
            try:
                url = parse_url(url_text)
            except InvalidServers as exc:
                raise InvalidServers(f"--turn-servers region {name!r}: {exc}") from None
            if any(known.text == url.text for known in urls):
                raise InvalidServers(f"--turn-servers region {name!r}: {url.text} is listed twice")
            urls.append(url)
        if not any(url.is_turn for url in urls):
            raise InvalidServers(
                f"--turn-servers region {name!r} has no turn: or turns: URL ({_FORMAT})"
            )
        regions.append(TurnRegion(name, tuple(urls)))
    return tuple(regions)


def check_secret(secret: str) -> bytes:
    """The bytes of a ``--turn-secret`` value, which must equal coturn's ``static-auth-secret``.

    coturn takes the rest of the config line after ``static-auth-secret=`` as the secret, quotes
    and ``#`` included; blanks at either end would be lost somewhere between a shell, an
    environment file and that line, so they are refused, as is anything outside printable ASCII.

    Raises:
        InvalidSecret: empty, shorter than ``MIN_SECRET_CHARS``, or holding blanks or characters
            outside printable ASCII.
    """
    if not secret:
        raise InvalidSecret("--turn-secret is required with --turn-servers")
    if len(secret) < MIN_SECRET_CHARS:
        raise InvalidSecret(
            f"--turn-secret is {len(secret)} characters; use at least {MIN_SECRET_CHARS} "
            "(e.g. openssl rand -hex 32)"
        )
    if not all("!" <= c <= "~" for c in secret):
        raise InvalidSecret(
            "--turn-secret must be printable ASCII without blanks (e.g. openssl rand -hex 32)"
        )
    return secret.encode("ascii")


@dataclass(frozen=True, slots=True)
class TurnConfig:
    """TURN servers per region and the secret to mint their credentials: what ``--turn-servers``,
    ``--turn-secret`` and ``--turn-ttl-s`` configure. ``TurnConfig()`` is TURN turned off.

    Attributes:
        regions: the regions in configured order; the first is the fallback. Empty: TURN off.
        secret: coturn's ``static-auth-secret`` (never shown in ``repr``).
        ttl_s: lifetime of each minted credential, in seconds.
    """

    regions: tuple[TurnRegion, ...] = ()
    secret: bytes = field(default=b"", repr=False)
    ttl_s: int = DEFAULT_TTL_S

    def __post_init__(self) -> None:
        check_ttl(self.ttl_s)
        if self.regions and not self.secret:
            raise InvalidSecret("--turn-secret is required with --turn-servers")

    @classmethod
    def from_options(cls, servers: str, secret: str, ttl_s: int = DEFAULT_TTL_S) -> TurnConfig:
        """The configuration from the three option values, checked.

        Args:
            servers: the ``--turn-servers`` value (module docstring); ``""``: TURN off.
            secret: the ``--turn-secret`` value: coturn's ``static-auth-secret``.
            ttl_s: the ``--turn-ttl-s`` value: credential lifetime in seconds.

        Raises:
            InvalidServers: ``servers`` does not parse (see :func:`parse_servers`).
            InvalidSecret: a secret without servers, servers without a secret, or a secret
                :func:`check_secret` refuses.
            InvalidTtl: ``ttl_s`` outside ``MIN_TTL_S``..``MAX_TTL_S``.
        """
        regions = parse_servers(servers)
        if not regions:
            if secret:
                raise InvalidSecret(
                    "--turn-secret is set but --turn-servers is empty: set both or neither"
                )
            return cls(ttl_s=ttl_s)
        return cls(regions, check_secret(secret), ttl_s)

    @property
    def enabled(self) -> bool:
        """TURN servers are configured."""
        return bool(self.regions)

    def region(self, name: str | None) -> TurnRegion:
        """The region called ``name`` (any case), else the first region.

        Raises:
            LookupError: TURN is off (no regions).
        """
        if not self.regions:
            raise LookupError("no TURN servers are configured")
        if name:
            wanted = name.lower()
            for region in self.regions:
                if region.name == wanted:
                    return region
        return self.regions[0]

    def credential(self, identity: str, now: float) -> TurnCredential:
        """A credential for participant ``identity``, valid from ``now`` (unix s) for ``ttl_s``.

        Any non-empty identity works: it goes into the TURN username through
        :func:`turn_identity` (percent-encoded where coturn would refuse it).

        Raises:
            InvalidIdentity: ``identity`` is empty or too long (``MAX_IDENTITY_CHARS`` once
                encoded).
            InvalidSecret: TURN is off (there is no secret).
        """
        return mint(self.secret, turn_identity(identity), self.ttl_s, now)

    def ice_servers(self, identity: str, region: str | None, now: float) -> list[dict[str, object]]:
        """The RTCIceServer dictionaries for a client: its ``RTCConfiguration.iceServers``.

        Args:
            identity: the participant's identity (any non-empty string), for the credential.
            region: the client's region, or None; unknown or None means the first region.
            now: the current unix time in seconds (``time.time()``).

        Returns:
            ``[]`` when TURN is off, else one dictionary
            ``{"urls": [url, ...], "username": "<expiry>:<identity>", "credential": password}``
            with the region's URLs in configured order. The credential admits new allocations
            until ``now + ttl_s``; allocations made before then keep working after it, so a
            client needs a fresh list only for a new RTCPeerConnection or an ICE restart.

        Raises:
            InvalidIdentity: ``identity`` is empty or too long.
        """
        if not self.regions:
            return []
        urls = [url.text for url in self.region(region).urls]
        credential = self.credential(identity, now)
        return [{"urls": urls, "username": credential.username, "credential": credential.password}]

    def warnings(self) -> list[str]:
        """Advice for the operator, one line each (log them at start-up); ``[]`` when none.

        Names every region without a ``turns:`` URL on port 443, which clients on networks that
        let only HTTPS out need.
        """
        return [
            f"TURN region {region.name!r} lists no turns: URL on port 443; clients on networks "
            "that let only HTTPS out cannot reach its relays"
            for region in self.regions
            if not any(url.scheme == "turns" and url.port == 443 for url in region.urls)
        ]
