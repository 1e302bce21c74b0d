"""clients/web/messages.js words every error the page can meet: each error code of
docs/protocol.md has a plain sentence with what to do, and no sentence shows a code."""

import re
from pathlib import Path

from tests.unit.test_protocol_doc import DOC

ROOT = Path(__file__).resolve().parents[2]
MESSAGES_JS = ROOT / "clients" / "web" / "messages.js"
_ENTRY = re.compile(
    r"^\s*(?:\"(?P<pair>[a-z_]+ [a-z_.]+)\"|(?P<code>[A-Za-z_]+)): \{\s*"
    r'text: "(?P<text>[^"]+)",\s*todo: "(?P<todo>[^"]*)",?\s*\},?$',
    re.M,
)
# Client-side codes the page raises itself (clients/web/*.js), besides the protocol's.
PAGE_CODES = {"not_connected", "disconnected", "timeout", "connect_failed", "no_token", "error"}


def entries() -> dict[str, tuple[str, str]]:
    text = MESSAGES_JS.read_text()
    found: dict[str, tuple[str, str]] = {}
    for match in _ENTRY.finditer(text):
        key = match.group("pair") or match.group("code")
        assert key not in found, f"messages.js words {key} twice"
        found[key] = (match.group("text"), match.group("todo"))
    return found


MESSAGES = entries()


def test_the_table_was_read() -> None:
    assert "chat_muted" in MESSAGES and "not_allowed media.publish" in MESSAGES


def test_every_documented_error_code_has_a_sentence() -> None:
    missing = sorted(set(DOC.error_closes) - set(MESSAGES))
    assert not missing, f"docs/protocol.md error codes messages.js does not word: {missing}"


def test_every_code_the_page_raises_has_a_sentence() -> None:
    missing = sorted(PAGE_CODES - set(MESSAGES))
    assert not missing, f"page error codes messages.js does not word: {missing}"


def test_every_command_specific_sentence_names_a_documented_code_and_command() -> None:
    for key in MESSAGES:
        if " " in key:
            code, command = key.split(" ")
            assert code in DOC.error_closes, key
            assert command in DOC.client_types, key


def test_every_sentence_is_plain_and_says_what_to_do() -> None:
    codes = set(DOC.error_closes) | PAGE_CODES
    for key, (text, todo) in MESSAGES.items():
        for sentence in (text, todo):
            assert sentence[:1].isupper() and sentence.endswith("."), (key, sentence)
            assert "_" not in sentence, f"{key}: a code on screen: {sentence!r}"
            shown = {word for word in re.findall(r"[a-z_.]+", sentence) if word in codes}
            assert not shown, f"{key}: names codes {shown}"
        assert todo, f"{key}: says what happened but not what to do"
