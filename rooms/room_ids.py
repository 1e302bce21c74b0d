"""Room ids: 1-64 ASCII letters, digits, ``_`` or ``-`` (the whiteboard names' alphabet).

A room id goes into URL paths (``/whiteboard/<room>/<board>``), Redis keys and hash tags, and the
ids of its media rooms (:func:`rooms.router_id`), so it holds no ``/``, ``{``, ``}`` or spaces.
Tokens are minted and verified only for such ids, and a ``join`` names one.
"""

import re

_ROOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_room_id(room_id: str) -> bool:
    """True for 1-64 ASCII letters, digits, ``_`` or ``-``."""
    return _ROOM_ID.fullmatch(room_id) is not None
