"""No log line carries a token, at any level.

Tokens reach loggers in ways the code does not choose: websockets logs every request line and
header at debug level (``GET /whiteboard/<room>/<board>?token=<jwt>``, a y-websocket client's
access token; ``Authorization: Bearer <jwt>``, a node's token for an SFU worker), and an exception
message may quote a URL. :class:`TokenRedactor` sits on the handlers, so it sees every record that
is written, whichever logger made it, and replaces JWTs (RFC 7519 compact form: three base64url
parts, the first a JSON object, so ``eyJ``), ``token=`` values, bearer credentials and the
``user:password`` of URLs (a Redis seed) with ``<redacted>``.
"""

from __future__ import annotations

import logging
import re

REDACTED = "<redacted>"
_PATTERNS = (
    # A JWT: base64url('{"...') . payload . signature (RFC 7515 section 7.1).
    re.compile(r"eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){1,2}"),
    # A token in a query string or a form, whatever it holds.
    re.compile(r"(?i)(?<=token=)[^&\s\"'<>]+"),
    # HTTP credentials (RFC 6750 bearer, RFC 7617 basic).
    re.compile(r"(?i)(?<=bearer )\S+|(?<=basic )\S+"),
    # The password in a URL's userinfo (redis://user:password@host, RFC 3986 section 3.2.1).
    re.compile(r"(?<=://)[^/\s@:]*:[^/\s@]+(?=@)"),
)


def redact(text: str) -> str:
    """``text`` with every token-looking part replaced by ``<redacted>``."""
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


class TokenRedactor(logging.Filter):
    """A handler filter that redacts tokens from the message, the traceback and the stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def redact_handlers(logger: logging.Logger | None = None) -> None:
    """Put a :class:`TokenRedactor` on every handler of ``logger`` (default: the root logger)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, TokenRedactor) for f in handler.filters):
            handler.addFilter(TokenRedactor())
