"""ICE server lists per region and TURN REST API credentials for coturn (``use-auth-secret``).

:class:`TurnConfig` is built once from the ``--turn-servers``, ``--turn-secret`` and
``--turn-ttl-s`` options (:meth:`TurnConfig.from_options`) and answers each client's
``iceServers`` (:meth:`TurnConfig.ice_servers`). :func:`mint` is the credential scheme itself
(draft-uberti-behave-turn-rest-00). Standard library only; errors are :class:`TurnConfigError`
(a ``ValueError``) subclasses. The coturn side: deploy/coturn/.
"""

from turn_config.credentials import (
    DEFAULT_TTL_S,
    MAX_IDENTITY_CHARS,
    MAX_TTL_S,
    MIN_TTL_S,
    TurnCredential,
    check_identity,
    check_ttl,
    mint,
    turn_identity,
)
from turn_config.errors import (
    InvalidIdentity,
    InvalidSecret,
    InvalidServers,
    InvalidTtl,
    TurnConfigError,
)
from turn_config.servers import (
    DEFAULT_REGION,
    MIN_SECRET_CHARS,
    TurnConfig,
    TurnRegion,
    check_secret,
    parse_servers,
)
from turn_config.urls import IceUrl, parse_url

__all__ = [
    "DEFAULT_REGION",
    "DEFAULT_TTL_S",
    "MAX_IDENTITY_CHARS",
    "MAX_TTL_S",
    "MIN_SECRET_CHARS",
    "MIN_TTL_S",
    "IceUrl",
    "InvalidIdentity",
    "InvalidSecret",
    "InvalidServers",
    "InvalidTtl",
    "TurnConfig",
    "TurnConfigError",
    "TurnCredential",
    "TurnRegion",
    "check_identity",
    "check_secret",
    "check_ttl",
    "mint",
    "parse_servers",
    "parse_url",
    "turn_identity",
]
