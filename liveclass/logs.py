"""Log lines: JSON lines (one object per line) for log collectors, or text for a terminal.

``--log-format json`` writes each record as one JSON object (JSON Lines): ``ts`` (RFC 3339,
UTC, milliseconds), ``level``, ``logger``, ``msg``, then ``node`` or ``worker`` (the process),
``room`` and ``connection`` when the line is about them (:mod:`signaling.log_context`), the
strings and numbers a call site passes with ``extra=`` (identities, roles, outcomes: never user
content; other objects are left out), and
``exc``, a traceback as one string. ``text`` writes ``<time> <LEVEL> <logger> <message>`` with
the same ids appended as ``key=value``. ``auto`` (the default) is ``text`` when stderr is a
terminal and ``json`` otherwise (a service manager, a container, a pipe): JSON lines in production
without a flag, readable lines by hand.

Every handler also carries :class:`liveclass.redaction.TokenRedactor`: no token in any line.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from signaling.log_context import CONNECTION, ROOM

from .redaction import redact, redact_handlers

FORMATS = ("auto", "json", "text")

#: The process's own ids (``node`` or ``worker``), on every line once known.
_process: dict[str, str] = {}

#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
#: What the formatters add themselves, in this order after ``msg``.
_CONTEXT = ("node", "worker", "room", "connection")


def set_process(**ids: str) -> None:
    """Name this process on every line from now on: ``node=`` (a signaling node's id) or
    ``worker=`` (an SFU worker's)."""
    _process.update({k: v for k, v in ids.items() if v})


def rfc3339(created: float) -> str:
    """``2026-12-04T18:25:00.123Z``: a record's time in RFC 3339, UTC, milliseconds."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ids and ``extra=`` fields of a record (None left out)."""
    fields: dict[str, Any] = dict(_process)
    room, connection = ROOM.get(), CONNECTION.get()
    if room is not None:
        fields["room"] = room
    if connection is not None:
        fields["connection"] = connection
    for key, value in record.__dict__.items():
        if key in _STANDARD or key.startswith("_") or value is None:
            continue
        if isinstance(value, str):
            fields[key] = redact(value)
        elif isinstance(value, bool | int | float):
            fields[key] = value
        # Anything else (websockets passes its connection object) is left out: its repr says
        # nothing useful and nobody checked it for secrets.
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (the message's newlines escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": rfc3339(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(_fields(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger> <message> key=value ...``: the ids after the message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        fields = _fields(record)
        if not fields:
            return text
        return text + " " + " ".join(f"{key}={value}" for key, value in fields.items())


def resolve_format(name: str, stream: TextIO | None = None) -> str:
    """``json`` or ``text`` for ``--log-format`` ``name`` (``auto``: text on a terminal).

    Raises:
        ValueError: not one of :data:`FORMATS`.
    """
    if name not in FORMATS:
        raise ValueError(f"log format {name!r}: use one of {', '.join(FORMATS)}")
    if name != "auto":
        return name
    stream = stream or sys.stderr
    return "text" if stream.isatty() else "json"


def setup_logging(level: str, format_name: str = "auto") -> str:
    """Log to stderr at ``level`` in ``format_name``; returns the format used (json or text).

    Below debug, the chattiest libraries are held at WARNING: websockets logs every connection
    at INFO (a 5,000-student class would fill the log) and aioice every ICE candidate pair and
    check (participants' addresses).
    """
    chosen = resolve_format(format_name)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    redact_handlers()  # no token in any line, at any level (liveclass/redaction.py)
    quiet = logging.NOTSET if level.lower() == "debug" else logging.WARNING
    for name in ("websockets.server", "aioice"):
        logging.getLogger(name).setLevel(quiet)
    return chosen
