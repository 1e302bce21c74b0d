"""Log lines never carry a token (liveclass/redaction.py): JWTs, ``token=`` values and HTTP
credentials are redacted from messages, arguments and tracebacks, whichever logger wrote them."""

import io
import logging

from liveclass.redaction import REDACTED, TokenRedactor, redact
from rooms import Role
from signaling import Grants, Keyring, mint
from signaling.codec import Join

KEYRING = Keyring({"k1": b"s" * 48}, "k1")
TOKEN = mint(KEYRING, identity="t", name="T", grants=Grants("class", Role.TEACHER), ttl_s=60)


def test_jwts_token_parameters_and_credentials_are_redacted() -> None:
    assert TOKEN not in redact(f"< GET /whiteboard/class/main?token={TOKEN} HTTP/1.1")
    assert redact("GET /x?room=a&token=nope&b=1") == f"GET /x?room=a&token={REDACTED}&b=1"
    assert redact(f"> Authorization: Bearer {TOKEN}") == f"> Authorization: Bearer {REDACTED}"
    assert redact("Authorization: Basic dXNlcjpwYXNz") == f"Authorization: Basic {REDACTED}"
    assert redact(f"claims {TOKEN.split('.')[0]}.x") == f"claims {REDACTED}"
    assert redact("rediss://app:s3cret@10.0.0.1:7000") == f"rediss://{REDACTED}@10.0.0.1:7000"
    assert redact("an ordinary line: GET /readyz 200") == "an ordinary line: GET /readyz 200"


def test_a_handler_with_the_redactor_writes_no_token_from_any_logger() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(TokenRedactor())
    logger = logging.getLogger("websockets.server.redaction-test")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("< GET %s HTTP/1.1", f"/whiteboard/class/main?token={TOKEN}")
        logger.info("join %r", Join(TOKEN, "class", None))
        try:
            raise ValueError(f"bad url /ws?token={TOKEN}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    for part in TOKEN.split("."):
        assert part not in text
    assert "token=<redacted>" in text and "ValueError" in text and "Join(room='class'" in text
