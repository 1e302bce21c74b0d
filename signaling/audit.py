"""The audit log: who did what to whom in which room, and what came of it, one JSON line each.

Lines are for an operator or a school answering "who removed this student?", "who keeps trying
tokens?": every moderation action, role-affecting change and breakout operation (accepted or
refused), every failed authentication, origin refusal and rate-limit block. Fields
(docs/operations.md, "The audit log"): ``ts``, ``node``, ``kind``, ``action``, ``actor``
(``identity`` and ``role``, or the peer ``address`` before a token verified), ``room``,
``target`` (an identity) when there is one, ``outcome`` (``ok``, ``refused`` or ``failed``),
``code`` (the error code of a refusal), and ``detail`` (a command's flags: never a message body,
a reason, a display name or a token).

Each line is one ``write`` to a file opened ``O_APPEND``: nothing accumulates in memory, lines of
several nodes sharing a file do not interleave, and logrotate's ``copytruncate`` is safe. A file
moved away (logrotate's default ``create``) is noticed at the next line, which opens a new one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

from rooms import Command, Participant, Record, RoomError

log = logging.getLogger(__name__)

#: Commands the audit log records, by wire type: their ``kind``.
AUDITED: Mapping[str, str] = {
    "participant.remove": "moderation",
    "chat.mute": "moderation",
    "room.lock": "moderation",
    "room.waiting_room": "moderation",
    "waiting.admit": "moderation",
    "waiting.deny": "moderation",
    "invite.revoke": "moderation",
    "question.dismiss": "moderation",
    "board.lock": "moderation",
    "board.clear": "moderation",
    "media.mode": "moderation",
    "media.mute": "moderation",
    "media.spotlight": "moderation",
    "session.end": "moderation",
    "hand.lower_all": "moderation",
    # Roles come from tokens; permission to publish is the one a command changes.
    "media.permit": "role",
    "breakout.open": "breakout",
    "breakout.assign": "breakout",
    "breakout.move": "breakout",
    "breakout.choose": "breakout",
    "breakout.timer": "breakout",
    "breakout.share_boards": "breakout",
    "breakout.close": "breakout",
    "breakout.broadcast": "breakout",
}

#: Command fields never copied into ``detail``: user text (reasons, broadcasts), the identity
#: (it is ``target``) and bulky structures (a saved set's name is a label, kept).
_NOT_DETAIL = frozenset({"identity", "reason", "text", "members", "auto", "rooms"})
#: The longest string a line copies from a request (an ``Origin`` header, a room id).
_TEXT_MAX = 200


def actor_of(participant: Participant) -> dict[str, str]:
    """An authenticated actor: identity and role (never the display name)."""
    return {"identity": participant.identity, "role": participant.role.value}


def actor_at(address: str) -> dict[str, str]:
    """An actor known only by its peer address (before a token verified)."""
    return {"address": address}


def command_detail(command: Command) -> dict[str, Any]:
    """The flags of an audited command (booleans, numbers, short names), never its user text."""
    detail: dict[str, Any] = {}
    for f in fields(command):  # type: ignore[arg-type]
        if f.name in _NOT_DETAIL:
            continue
        value = getattr(command, f.name)
        if value is None or isinstance(value, bool | int | float):
            if value is not None:
                detail[f.name] = value
        elif isinstance(value, str):
            detail[f.name] = value[:_TEXT_MAX]
    rooms = getattr(command, "rooms", None)
    if rooms:
        detail["rooms"] = len(rooms)
    members = getattr(command, "members", None)
    if members:
        detail["members"] = len(members)
    return detail


class AuditLog:
    """Writes audit lines; :meth:`off` writes none.

    Args:
        write: takes one line (with its newline); None: the log is off.
        node: this node's id, on every line.
    """

    def __init__(self, write: Callable[[bytes], None] | None = None, node: str = "") -> None:
        self._write = write
        self.node = node

    @classmethod
    def off(cls) -> AuditLog:
        return cls(None)

    @classmethod
    def open(cls, target: str, node: str = "") -> AuditLog:
        """The audit log on file ``target`` (made 0600 if new), ``-`` for stdout, or off for
        an empty ``target``.

        Raises:
            OSError: the file cannot be opened.
        """
        if not target:
            return cls.off()
        if target == "-":
            stdout = sys.stdout.buffer

            def to_stdout(line: bytes) -> None:
                stdout.write(line)
                stdout.flush()

            return cls(to_stdout, node)
        return cls(_AppendFile(target).write, node)

    @property
    def enabled(self) -> bool:
        return self._write is not None

    def record(
        self,
        kind: str,
        action: str,
        actor: Mapping[str, str],
        *,
        room: str | None = None,
        target: str | None = None,
        code: str | None = None,
        outcome: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Write one line. ``outcome`` defaults to ``refused`` with a ``code``, else ``ok``.
        A failed write is not the request's failure: it is logged (ERROR) and the line is lost."""
        if self._write is None:
            return
        line: dict[str, Any] = {"ts": _now(), "node": self.node, "kind": kind, "action": action}
        line["actor"] = dict(actor)
        if room is not None:
            line["room"] = room[:_TEXT_MAX]
        if target is not None:
            line["target"] = target
        line["outcome"] = outcome or ("refused" if code else "ok")
        if code is not None:
            line["code"] = code
        if detail:
            line["detail"] = dict(detail)
        data = json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            self._write(data.encode())
        except OSError as exc:
            log.error("audit log: a line was lost: %s", exc)

    def command(
        self,
        room: str,
        participant: Participant,
        command: Command,
        done: asyncio.Future[tuple[Record, ...]],
    ) -> None:
        """The line of an :data:`AUDITED` command once the room decided it (``done``: its
        records, or the RoomError it was refused with, or the store's failure)."""
        if done.cancelled():
            return
        exc = done.exception()
        refusal = exc.code if isinstance(exc, RoomError) else None
        failed = exc is not None and refusal is None
        self.record(
            AUDITED[command.type],
            command.type,
            actor_of(participant),
            room=room,
            target=getattr(command, "identity", None),
            code="unavailable" if failed else refusal,
            outcome="failed" if failed else None,
            detail=command_detail(command),
        )


class _AppendFile:
    """A file written one line per ``write``, opened ``O_APPEND``, reopened when it was moved."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = self._open()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def write(self, line: bytes) -> None:
        try:
            moved = os.stat(self.path).st_ino != os.fstat(self._fd).st_ino
        except FileNotFoundError:
            moved = True
        if moved:
            fresh = self._open()
            os.close(self._fd)
            self._fd = fresh
        os.write(self._fd, line)


def _now() -> str:
    """RFC 3339, UTC, milliseconds."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
