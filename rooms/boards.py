"""Whiteboard names: the class board is ``main``, a breakout room's board is named after it."""

import re

#: The board every classroom has.
MAIN_BOARD = "main"

_BOARD_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_board_name(name: str) -> bool:
    """True for 1-64 ASCII letters, digits, ``_`` or ``-`` (safe in a URL path and a Redis key)."""
    return _BOARD_NAME.fullmatch(name) is not None
