"""Errors the signaling edge sends to clients, each with a stable code from docs/protocol.md.

Room-rule errors come from :mod:`rooms` (``rooms.RoomError``); these are the ones about frames,
sessions and tokens. Every class carries ``code`` (the wire code) and, for fatal ones,
``close_code`` (the WebSocket close code sent after the error frame).
"""

from __future__ import annotations

from typing import ClassVar

from rooms import CloseCode


class ClientError(Exception):
    """An error reported to the client as an ``error`` frame.

    Attributes:
        code: the stable wire code (docs/protocol.md, "Error codes").
        close_code: WebSocket close code to send after the error frame, or None to keep going.
        field: the offending field, for ``missing_field`` / ``bad_field``.
        retry_after_ms: for ``rate_limited``.
    """

    code: ClassVar[str] = "internal"
    close_code: ClassVar[CloseCode | None] = None

    def __init__(
        self, message: str, *, field: str | None = None, retry_after_ms: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.retry_after_ms = retry_after_ms


class TextFrame(ClientError):
    code = "text_frame"


class BadFrame(ClientError):
    code = "bad_frame"


class FrameTooLarge(ClientError):
    code = "frame_too_large"


class UnknownType(ClientError):
    code = "unknown_type"


class MissingField(ClientError):
    code = "missing_field"


class BadFieldType(ClientError):
    code = "bad_field"


class RateLimited(ClientError):
    code = "rate_limited"


class NotJoined(ClientError):
    code = "not_joined"


class AlreadyJoined(ClientError):
    code = "already_joined"


class TokenInvalid(ClientError):
    code = "token_invalid"
    close_code = CloseCode.UNAUTHORIZED


class TokenExpired(ClientError):
    code = "token_expired"
    close_code = CloseCode.UNAUTHORIZED


class TokenWrongRoom(ClientError):
    code = "token_wrong_room"
    close_code = CloseCode.FORBIDDEN


class Unavailable(ClientError):
    """The store or the cluster cannot take the command now (a failover, say); nothing was done.
    ``retry_after_ms`` suggests when to try again."""

    code = "unavailable"


class Internal(ClientError):
    code = "internal"


class BadSdp(ClientError):
    """An SDP the SFU cannot use (not an SDP, or refused by the WebRTC stack)."""

    code = "bad_sdp"


class UnsupportedCodec(ClientError):
    """An m-line offers no codec the SFU forwards (VP8, H.264, Opus)."""

    code = "unsupported_codec"


class StaleAnswer(ClientError):
    """A ``media.answer`` for an offer that is not awaiting one."""

    code = "stale_answer"


class NoTransport(ClientError):
    """A media frame for a connection (publish or subscribe) that was not started."""

    code = "no_transport"


class MediaNotAllowed(ClientError):
    """Publishing or receiving media without the grant or permission to."""

    code = "not_allowed"


class MediaUnavailable(ClientError):
    """The server runs without an SFU worker."""

    code = "media_unavailable"


SIGNALING_ERRORS: tuple[type[ClientError], ...] = (
    TextFrame,
    BadFrame,
    FrameTooLarge,
    UnknownType,
    MissingField,
    BadFieldType,
    RateLimited,
    NotJoined,
    AlreadyJoined,
    TokenInvalid,
    TokenExpired,
    TokenWrongRoom,
    Unavailable,
    Internal,
    BadSdp,
    UnsupportedCodec,
    StaleAnswer,
    NoTransport,
    MediaNotAllowed,
    MediaUnavailable,
)
