"""docs/protocol.md is the one source of truth for the wire protocol: every message type, command,
event and error code it names exists in the code, and everything the code knows is documented."""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import rooms
import signaling
import whiteboard
from rooms import CloseCode, close_codes
from rooms.errors import ERROR_CLASSES as ROOM_ERROR_CLASSES
from signaling.edge.tally import VOTE_TYPES, tally_message

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


# -- close codes: rooms/close_codes.py, the doc's two tables, the errors and the clients agree --

ROOT = PROTOCOL_MD.parents[1]
_ADD_CLOSE_CODE = (
    "a close code needs a CloseCode member in rooms/close_codes.py (with its endpoints), a row in "
    "docs/protocol.md ('Close codes' for /ws, the close-code table under 'Whiteboard' for boards) "
    "and, when final, an entry in the clients' FINAL_CLOSE_CODES"
)


def close_table(heading: str, first_column: str) -> dict[int, bool]:
    """A close-code table of docs/protocol.md as {code: whether a client reconnects}: a row whose
    'client should' cell starts with "reconnect" is not final."""
    (rows,) = [
        rows
        for header, rows in tables(section(PROTOCOL_MD.read_text(), heading))
        if header[0] == first_column
    ]
    return {int(row[0]): row[-1].lower().startswith("reconnect") for row in rows}


WS_CLOSES = close_table("Close codes", "code")
BOARD_CLOSES = close_table("Whiteboard", "close code")


def final(table: dict[int, bool]) -> set[int]:
    return {code for code, reconnect in table.items() if not reconnect}


def js_final_close_codes(path: str) -> set[int]:
    """``FINAL_CLOSE_CODES = new Set([...])`` of a browser module."""
    source = (ROOT / path).read_text()
    match = re.search(r"FINAL_CLOSE_CODES = new Set\(\[([\d,\s]*)\]\)", source)
    assert match, f"{path} has no `FINAL_CLOSE_CODES = new Set([...])`"
    return {int(code) for code in match.group(1).replace(",", " ").split()}


@pytest.mark.parametrize(
    ("endpoint", "documented"), [(close_codes.WS, WS_CLOSES), (close_codes.BOARD, BOARD_CLOSES)]
)
def test_close_code_tables_are_the_servers(endpoint: str, documented: dict[int, bool]) -> None:
    table = {int(code): code.reconnect for code in close_codes.close_codes(endpoint)}
    assert documented.keys() == table.keys(), (
        f"{endpoint}: documented {sorted(documented)}, rooms/close_codes.py {sorted(table)}; "
        + _ADD_CLOSE_CODE
    )
    disagree = sorted(code for code in table if table[code] != documented[code])
    assert not disagree, (
        f"{endpoint}: reconnect or not differs for {disagree} between rooms/close_codes.py "
        "(CloseCode.reconnect) and docs/protocol.md ('client should' starts with 'reconnect')"
    )


def test_sdk_stays_closed_after_exactly_the_final_ws_codes() -> None:
    from clients.sdk import FINAL_CLOSE_CODES

    assert (
        set(FINAL_CLOSE_CODES) == final(WS_CLOSES) == close_codes.final_close_codes(close_codes.WS)
    ), "clients/sdk.py FINAL_CLOSE_CODES differs from docs/protocol.md 'Close codes'"


def test_web_app_stays_closed_after_exactly_the_final_ws_codes() -> None:
    assert js_final_close_codes("clients/web/protocol.js") == final(WS_CLOSES), (
        "clients/web/protocol.js FINAL_CLOSE_CODES differs from docs/protocol.md 'Close codes'"
    )


def test_web_board_stays_closed_after_exactly_the_final_board_codes() -> None:
    assert js_final_close_codes("clients/web/whiteboard/session.js") == final(BOARD_CLOSES), (
        "clients/web/whiteboard/session.js FINAL_CLOSE_CODES differs from docs/protocol.md's "
        "whiteboard close-code table"
    )


ERROR_CLASSES: list[type[signaling.ClientError] | type[rooms.RoomError]] = [
    *signaling.SIGNALING_ERRORS,
    *ROOM_ERROR_CLASSES,
]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: f"{cls.__name__}:{cls.code}")
def test_error_close_code_matches_the_doc(
    cls: type[signaling.ClientError] | type[rooms.RoomError],
) -> None:
    assert cls.close_code == DOC.error_closes.get(cls.code), (
        f"{cls.__name__}.close_code is {cls.close_code}, docs/protocol.md 'Error codes' says "
        f"{DOC.error_closes.get(cls.code)}"
    )
    assert cls.close_code is None or isinstance(cls.close_code, CloseCode), (
        f"{cls.__name__}.close_code must be a member of rooms.CloseCode, not a number"
    )


def test_every_close_in_the_error_table_is_a_ws_close_code() -> None:
    closes = {close for close in DOC.error_closes.values() if close is not None}
    assert closes <= WS_CLOSES.keys(), _ADD_CLOSE_CODE


def test_whiteboard_close_codes_match_the_errors_that_cause_them() -> None:
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
    assert all(isinstance(code, CloseCode) for code in raised)
    assert raised <= BOARD_CLOSES.keys()


# ``close(4403, ...)``, ``close_code = 4401``, ``CLOSE_X = 1011``: a close code spelled as a number.
_LITERAL_CLOSE = re.compile(
    r"(\.close\(\s*|close_code\s*=\s*|CLOSE_[A-Z_]+\s*=\s*|close_code or\s*)\d{4}\b"
)


@pytest.mark.parametrize("package", ["rooms", "signaling", "whiteboard", "sfu", "liveclass"])
def test_server_code_names_close_codes_from_the_table(package: str) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _LITERAL_CLOSE.search(line)
    ]
    assert not found, "use rooms.CloseCode, not a number: " + "; ".join(found)


# -- which command can get which error: derived from the raise sites, held to the doc ------------


def errors_by_command() -> dict[str, set[str]]:
    """docs/protocol.md "Errors each command can return": {command or "(every command)": codes}."""
    (rows,) = [
        rows
        for header, rows in tables(
            section(PROTOCOL_MD.read_text(), "Commands, acknowledgements and events")
        )
        if header == ["command", "error codes"]
    ]
    by_command: dict[str, set[str]] = {}
    for row in rows:
        key = row[0] if row[0].startswith("(") else next(iter(names(row[0])))
        by_command[key] = names(row[1]) & set(DOC.error_closes)
    return by_command


def raise_sites(paths: list[Path], codes: dict[str, str]) -> dict[str, set[str]]:
    """Per top-level function of the modules at ``paths``: the error codes it can raise, itself
    or through those modules' functions it calls. ``codes`` maps an error class name to its code."""
    functions = {
        node.name: node
        for path in paths
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef)
    }

    def direct(node: ast.AST) -> tuple[set[str], set[str]]:
        raised, called = set(), set()
        for sub in ast.walk(node):
            if isinstance(sub, ast.Raise) and isinstance(sub.exc, ast.Call):
                name = getattr(sub.exc.func, "id", None)
                if name in codes:
                    raised.add(codes[name])
            elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name):
                if sub.func.id in functions:
                    called.add(sub.func.id)
        return raised, called

    def reach(node: ast.AST, seen: frozenset[str]) -> set[str]:
        raised, called = direct(node)
        for name in called - seen:
            raised |= reach(functions[name], seen | {name})
        return raised

    return {name: reach(node, frozenset({name})) for name, node in functions.items()}


ROOM_CODES = {cls.__name__: cls.code for cls in ROOM_ERROR_CLASSES}
DECIDE = ROOT / "rooms" / "decide.py"
#: decide.py and the modules whose rules it calls (a command's raise sites may be in either).
DECIDE_MODULES = [
    DECIDE,
    ROOT / "rooms" / "decide_media.py",
    ROOT / "rooms" / "decide_breakout.py",
    ROOT / "rooms" / "decide_waiting.py",
    ROOT / "rooms" / "checks.py",
]


INTERNAL_COMMANDS = {
    cls.__name__ for cls in (rooms.BreakoutExpire, rooms.WaitingKnock, rooms.WaitingLeave)
}


def decide_raises() -> dict[str, set[str]]:
    """The codes ``rooms.decide`` can raise for each command type, and ``admit`` for a join."""
    tree = ast.parse(DECIDE.read_text())
    sites = raise_sites(DECIDE_MODULES, ROOM_CODES)
    (decide_fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "decide"]
    (match,) = [n for n in ast.walk(decide_fn) if isinstance(n, ast.Match)]

    def codes_of(statements: list[ast.stmt]) -> set[str]:
        found: set[str] = set()
        for statement in statements:
            for sub in ast.walk(statement):
                if isinstance(sub, ast.Raise) and isinstance(sub.exc, ast.Call):
                    found |= {ROOM_CODES.get(getattr(sub.exc.func, "id", ""), "")} - {""}
                elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name):
                    found |= sites.get(sub.func.id, set())
        return found

    before_match = codes_of(decide_fn.body[: decide_fn.body.index(match)])
    type_of = {cls.__name__: type_ for type_, cls in rooms.COMMANDS.items()}
    raises = {}
    for case in match.cases:
        assert isinstance(case.pattern, ast.MatchClass) and isinstance(case.pattern.cls, ast.Name)
        if case.pattern.cls.id in INTERNAL_COMMANDS:
            continue  # internal: signaling proposes it, no client sends it
        raises[type_of[case.pattern.cls.id]] = before_match | codes_of(case.body)
    raises["join"] = sites["admit"]
    return raises


SIGNALING_CODES = {cls.__name__: cls.code for cls in signaling.SIGNALING_ERRORS}
AUTH = ROOT / "signaling" / "auth.py"


def test_every_command_has_a_row_of_errors() -> None:
    absent = missing({*rooms.COMMANDS, "join", "(every command)"}, set(errors_by_command()))
    assert not absent, f"docs/protocol.md 'Errors each command can return' has no row for {absent}"


@pytest.mark.parametrize("command", [*rooms.COMMANDS, "join"])
def test_every_error_the_room_rules_raise_for_a_command_is_in_its_row(command: str) -> None:
    documented = errors_by_command()
    row = documented.get(command, set()) | documented["(every command)"]
    absent = sorted(decide_raises()[command] - row)
    assert not absent, (
        f"rooms/decide.py can refuse {command} with {absent}: add them to its row in "
        "docs/protocol.md 'Errors each command can return' (and to 'Error codes' if new)"
    )


def test_every_token_error_is_in_the_join_row() -> None:
    raised = set().union(*raise_sites([AUTH], SIGNALING_CODES).values())
    documented = errors_by_command()
    absent = sorted(raised - documented["join"] - documented["(every command)"])
    assert raised and not absent, f"signaling/auth.py raises {absent}; add them to the join row"


def all_subclasses(cls: type) -> set[type]:
    found: set[type] = set(cls.__subclasses__())
    for sub in list(found):
        found |= all_subclasses(sub)
    return found


def test_every_error_class_is_registered_so_the_doc_test_sees_it() -> None:
    unregistered = sorted(
        cls.__name__
        for base, registry in (
            (signaling.ClientError, signaling.SIGNALING_ERRORS),
            (rooms.RoomError, ROOM_ERROR_CLASSES),
        )
        for cls in all_subclasses(base)
        if cls not in registry and cls.__module__.split(".")[0] in {"rooms", "signaling"}
    )
    assert not unregistered, (
        f"{unregistered}: add them to SIGNALING_ERRORS (signaling/errors.py) or ERROR_CLASSES "
        "(rooms/errors.py), and their codes to docs/protocol.md 'Error codes'"
    )


def test_both_docs_say_which_media_frames_need_an_sfu_and_which_are_room_commands() -> None:
    """Without an SFU (``--no-media``) only media signalling gets ``media_unavailable``; the
    ``media.*`` room commands are acknowledged. docs/protocol.md and docs/operations.md agree."""
    signalling = set(signaling.codec.MEDIA_TYPES)
    room_rules = {command for command in rooms.COMMANDS if command.startswith("media.")}
    (row,) = [
        row
        for header, rows in tables(section(PROTOCOL_MD.read_text(), "Error codes"))
        for row in rows
        if names(row[0]) == {"media_unavailable"}
    ]
    needs_sfu, acknowledged = row[2].split("room commands")
    assert names(needs_sfu) == signalling
    assert names(acknowledged) == room_rules
    operations = (PROTOCOL_MD.parent / "operations.md").read_text()
    match = re.search(r"`--no-media` turns media off: (.*?)\n\n", operations, re.S)
    assert match, "docs/operations.md no longer says what --no-media does"
    needs_sfu, acknowledged = match.group(1).split("answered `media_unavailable`")
    assert names(needs_sfu) == signalling
    assert names(acknowledged) == room_rules


# -- vote tallies: which events students of a large room get as a `tally`, and its fields --------


def test_the_events_documented_as_tallied_are_the_ones_the_server_tallies() -> None:
    tallied = set()
    for header, rows in tables(PROTOCOL_MD.read_text()):
        if header[0] == "command (client -> server)":
            event_column = header.index("event (server -> client)")
            receives = header.index("who receives the event")
            for row in rows:
                if "`tally`" in row[receives]:
                    tallied |= names(row[event_column])
    assert tallied == VOTE_TYPES, (
        "docs/protocol.md says students of a large room get these events as tallies: "
        f"{sorted(tallied)}; signaling/edge/tally.py coalesces {sorted(VOTE_TYPES)}"
    )


def test_the_tally_frame_has_the_documented_fields() -> None:
    (row,) = [
        row
        for header, rows in tables(PROTOCOL_MD.read_text())
        if header[:2] == ["type", "direction"]
        for row in rows
        if names(row[0]) == {"tally"}
    ]
    documented = set(re.findall(r"(\w+): ", row[2]))
    message = tally_message(7, [(1, 3)])
    sent = ({*message} - {"t"}) | set(message["questions"][0])
    assert documented == sent, f"docs/protocol.md: {sorted(documented)}, sent: {sorted(sent)}"
