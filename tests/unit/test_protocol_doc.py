"""docs/protocol.md is the one source of truth for the wire protocol: every message type, command,
event and error code it names exists in the code, and everything the code knows is documented."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import rooms
import signaling
import whiteboard
from signaling.errors import ROOM_ERROR_CLOSE_CODES

PROTOCOL_MD = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_NAME = re.compile(r"`([a-z_][a-z_.]*)`")


def tables(text: str) -> Iterator[tuple[list[str], list[list[str]]]]:
    """Every Markdown table in ``text`` as (header cells, body rows of cells)."""
    block: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.lstrip().startswith("|"):
            block.append([c.strip() for c in _CELL_SPLIT.split(line.strip())[1:-1]])
            continue
        if len(block) >= 2:
            yield block[0], [row for row in block[2:] if row]
        block = []


def section(text: str, heading: str) -> str:
    """The body of the ``## heading`` section, up to the next ``##`` heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/protocol.md has no '## {heading}' section"
    return match.group(1)


def names(cell: str) -> set[str]:
    """The backticked identifiers in a table cell."""
    return set(_NAME.findall(cell))


class Documented:
    """What docs/protocol.md names, read from its tables."""

    def __init__(self, text: str) -> None:
        self.client_types: set[str] = set()
        self.server_types: set[str] = set()
        self.commands: set[str] = set()
        self.events: set[str] = set()
        self.error_closes: dict[str, int | None] = {}
        for header, rows in tables(text):
            if header[:2] == ["type", "direction"]:
                for row in rows:
                    (type_,) = names(row[0])
                    if row[1] == "client -> server":
                        self.client_types.add(type_)
                    elif row[1] == "server -> client":
                        self.server_types.add(type_)
                    else:
                        raise AssertionError(f"unknown direction {row[1]!r} for {type_}")
            elif header[0] == "command (client -> server)":
                event_column = header.index("event (server -> client)")
                for row in rows:
                    self.commands |= names(row[0])
                    # "`hand.lowered` when their hand was up": the first name is the event.
                    event = _NAME.search(row[event_column])
                    if event:
                        self.events.add(event.group(1))
        for header, rows in tables(section(text, "Error codes")):
            assert header[:2] == ["code", "close"], f"unexpected error table header {header}"
            for row in rows:
                (code,) = names(row[0])
                self.error_closes[code] = int(row[1]) if row[1] else None
        self.client_types |= self.commands


DOC = Documented(PROTOCOL_MD.read_text())
CODE_ERRORS = rooms.ERROR_CODES | {cls.code for cls in signaling.SIGNALING_ERRORS}


def test_protocol_doc_tables_were_found() -> None:
    assert "join" in DOC.client_types and "welcome" in DOC.server_types
    assert "chat.send" in DOC.commands and "chat.message" in DOC.events
    assert "bad_frame" in DOC.error_closes


def missing(wanted: set[str], present: frozenset[str] | set[str]) -> list[str]:
    return sorted(set(wanted) - set(present))


def test_every_documented_client_message_type_is_in_the_codec() -> None:
    absent = missing(DOC.client_types, signaling.CLIENT_TYPES)
    assert not absent, f"docs/protocol.md names client types the codec lacks: {absent}"


def test_every_client_type_of_the_codec_is_documented() -> None:
    absent = missing(set(signaling.CLIENT_TYPES), DOC.client_types)
    assert not absent, f"codec CLIENT_TYPES missing from docs/protocol.md: {absent}"


def test_every_documented_server_message_type_is_in_the_codec() -> None:
    absent = missing(DOC.server_types, signaling.SERVER_TYPES)
    assert not absent, f"docs/protocol.md names server types the codec lacks: {absent}"


def test_every_server_type_of_the_codec_is_documented() -> None:
    absent = missing(set(signaling.SERVER_TYPES), DOC.server_types)
    assert not absent, f"codec SERVER_TYPES missing from docs/protocol.md: {absent}"


def test_every_documented_command_is_a_room_command() -> None:
    absent = missing(DOC.commands, set(rooms.COMMANDS))
    assert not absent, f"docs/protocol.md commands missing from rooms.COMMANDS: {absent}"


def test_every_room_command_is_documented() -> None:
    absent = missing(set(rooms.COMMANDS), DOC.commands)
    assert not absent, f"rooms.COMMANDS missing from the docs/protocol.md commands table: {absent}"


def test_every_documented_event_is_a_room_event() -> None:
    absent = missing(DOC.events, set(rooms.EVENTS))
    assert not absent, f"docs/protocol.md events missing from rooms.EVENTS: {absent}"


def test_every_room_event_is_documented() -> None:
    absent = missing(set(rooms.EVENTS), DOC.events)
    assert not absent, f"rooms.EVENTS missing from the docs/protocol.md commands table: {absent}"


def test_every_documented_error_code_exists_in_the_code() -> None:
    absent = missing(set(DOC.error_closes), CODE_ERRORS)
    assert not absent, f"docs/protocol.md error codes no error class carries: {absent}"


def test_every_error_code_in_the_code_is_documented() -> None:
    absent = missing(CODE_ERRORS, set(DOC.error_closes))
    assert not absent, f"error codes missing from docs/protocol.md 'Error codes': {absent}"


@pytest.mark.parametrize("cls", signaling.SIGNALING_ERRORS, ids=lambda cls: cls.code)
def test_signaling_error_close_code_matches_the_doc(cls: type[signaling.ClientError]) -> None:
    assert cls.close_code == DOC.error_closes.get(cls.code), (
        f"{cls.__name__}.close_code is {cls.close_code}, docs/protocol.md says "
        f"{DOC.error_closes.get(cls.code)}"
    )


def test_room_error_close_codes_match_the_doc() -> None:
    documented = {
        code: close
        for code, close in DOC.error_closes.items()
        if close is not None and code in rooms.ERROR_CODES
    }
    assert documented == ROOM_ERROR_CLOSE_CODES


def test_whiteboard_close_codes_match_the_errors_that_cause_them() -> None:
    (rows,) = [
        rows
        for header, rows in tables(section(PROTOCOL_MD.read_text(), "Whiteboard"))
        if header[0] == "close code"
    ]
    documented = {int(row[0]) for row in rows}
    raised = {
        cls.default_close_code
        for cls in (
            whiteboard.BadMessage,
            whiteboard.BadUpdate,
            whiteboard.MessageTooLarge,
            whiteboard.AccessDenied,
            whiteboard.StoreFailed,
        )
    }
    assert raised <= documented
    assert {4401, 4404, 4409, 4423, 1012, 1013} <= documented
