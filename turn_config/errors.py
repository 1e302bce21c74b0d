"""The errors of :mod:`turn_config`: one small hierarchy under :class:`TurnConfigError`.

Every error is a :class:`ValueError` (the input was wrong, not the world), and its message names
the option or value at fault, so an operator can fix ``--turn-servers`` or ``--turn-secret`` from
the message alone.
"""

from __future__ import annotations


class TurnConfigError(ValueError):
    """A TURN option, secret, identity or TTL was rejected; the message says which and why."""


class InvalidServers(TurnConfigError):
    """``--turn-servers`` does not parse: a bad region name, a bad URL, a duplicate."""


class InvalidSecret(TurnConfigError):
    """The TURN REST API secret is missing, too short or has characters coturn would mangle."""


class InvalidTtl(TurnConfigError):
    """A credential lifetime outside ``MIN_TTL_S``..``MAX_TTL_S`` seconds, or not an integer."""


class InvalidIdentity(TurnConfigError):
    """An identity that cannot be put in a TURN username (empty, too long, not printable ASCII)."""
