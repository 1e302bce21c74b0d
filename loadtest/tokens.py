"""Access tokens minted inside the swarm from the nodes' shared secrets: no subprocess per user.

The secrets are read as the server reads them (``LIVECLASS_SECRETS``, ``kid:secret,...``, signed
with ``LIVECLASS_SIGNING_KID`` or the first) by :func:`liveclass.config.load_keyring`, and tokens
are signed by :func:`signaling.auth.mint`, the code ``liveclass token`` runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from liveclass.config import ConfigError, load_keyring
from rooms import Role
from signaling.auth import Grants, Keyring, mint


@dataclass(frozen=True)
class TokenMinter:
    keyring: Keyring

    @classmethod
    def from_environment(cls) -> TokenMinter:
        """The keyring of ``LIVECLASS_SECRETS`` (and ``LIVECLASS_SIGNING_KID``).

        Raises:
            ConfigError: the variable is unset or malformed.
        """
        spec = os.environ.get("LIVECLASS_SECRETS", "")
        if not spec:
            raise ConfigError("set LIVECLASS_SECRETS to the nodes' secrets (kid:secret,...)")
        values = {"secrets": spec, "signing_kid": os.environ.get("LIVECLASS_SIGNING_KID", "")}
        return cls(load_keyring(values, Path("."), create=False))

    def token(
        self,
        room: str,
        identity: str,
        role: str,
        *,
        ttl_s: int,
        can_publish: bool = False,
        can_subscribe: bool = False,
    ) -> str:
        grants = Grants(room, Role(role), can_publish=can_publish, can_subscribe=can_subscribe)
        return mint(self.keyring, identity=identity, name=identity, grants=grants, ttl_s=ttl_s)
