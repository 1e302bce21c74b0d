"""A room's state as plain data, so a trimmed log can start from a stored snapshot.

A room's log grows with every event. A long class would make it slow to load (every node folds it
from the start) and large to keep, so the store keeps a snapshot: :func:`state_to_data` of the
state folded through some id, beside the log; the log's entries before it can then be trimmed.
Loading is :func:`state_from_data` of the snapshot, then :func:`rooms.evolve` of the records after
its ``last_id``: the same state as the full fold (the tests check it record by record).

The data is msgpack-ready (maps, lists, strings, integers, booleans, None) and versioned
(``"v"``); a version this code does not read raises :class:`SnapshotError`.

Version 2 added the media rules and breakout rooms (``media_mode`` ... ``breakout_of``); version 3
breakout rounds, timers, self-select, the help queue, breakout chat and the gallery, and each
question's ``room`` (a tenth item of its row); version 4 the class's display name
(``class_name``), the waiting room (``waiting_room``, ``waiting``, ``denied``), the revoked
invite links (``revoked_invites``) and who left (``left``); version 5 the ``stage``. Older
snapshots are still read: the code that wrote them had no such events, so those fields are a new
room's. A node that reads only version 1 refuses a version 2 snapshot rather than dropping what it
cannot hold.

A question row still carries its ``dismissed`` flag (always false since dismissed questions leave
the state, :mod:`rooms.bounds`), so a node of either age reads the other's snapshots; a dismissed
question in an older snapshot is dropped when read.
"""

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from rooms.events import Record, event_from_data
from rooms.participant import Participant
from rooms.roles import Role
from rooms.stage import DEFAULT_STAGE
from rooms.state import CHAT_HISTORY, Poll, Question, RoomState

SNAPSHOT_VERSION = 5
READABLE_VERSIONS: frozenset[int] = frozenset({1, 2, 3, 4, SNAPSHOT_VERSION})
"""The snapshot versions :func:`state_from_data` reads (:func:`state_to_data` writes the newest)."""

_NEW_IN_VERSION_2: dict[str, Any] = {
    "media_mode": "discussion",
    "media_muted": [],
    "media_muted_all": [],
    "media_permitted": [],
    "spotlight": None,
    "breakouts": [],
    "breakout_of": {},
}
"""The version 2 keys with the values of a room that never used them (version 1 has none)."""

_NEW_IN_VERSION_3: dict[str, Any] = {
    "breakout_round": 0,
    "breakout_boards": None,
    "breakout_ends_at": None,
    "breakout_warn_s": 60,
    "breakout_self_select": False,
    "breakout_cap": None,
    "breakout_help": [],
    "breakout_chat": None,
    "breakout_archive": {},
    "gallery": [],
    "gallery_shared": False,
}
"""The version 3 keys (breakout rooms as rooms) with the values an older snapshot stands for:
``breakout_boards`` and ``breakout_chat`` None are derived from the open rooms (boards named
after their room, empty conversations)."""

_NEW_IN_VERSION_4: dict[str, Any] = {
    "class_name": None,
    "waiting_room": False,
    "waiting": [],
    "denied": [],
    "revoked_invites": [],
    "left": [],
}
"""The version 4 keys with the values of a room that was never named and had no waiting room."""

_NEW_IN_VERSION_5: dict[str, Any] = {"stage": DEFAULT_STAGE}
"""The version 5 key with the value of a room whose staff never chose a stage."""


class SnapshotError(ValueError):
    """A stored room snapshot this code cannot read (damaged, or another version)."""


def state_to_data(state: RoomState) -> dict[str, Any]:
    """``state`` as a msgpack-ready map (see the module docstring); ``state`` is not changed."""
    return {
        "v": SNAPSHOT_VERSION,
        "room_id": state.room_id,
        "class_name": state.class_name,
        "waiting_room": state.waiting_room,
        "waiting": [[identity, name] for identity, name in state.waiting.items()],
        "denied": sorted(state.denied),
        "revoked_invites": sorted(state.revoked_invites),
        "left": sorted(state.left),
        "last_id": state.last_id,
        "locked": state.locked,
        "ended": list(state.ended) if state.ended is not None else None,
        "participants": [[p.identity, p.name, p.role.value] for p in state.participants.values()],
        "removed": sorted(state.removed),
        "chat_muted_all": state.chat_muted_all,
        "chat_muted": sorted(state.chat_muted),
        "hands": list(state.hands),
        "chat": _records_to_data(state.chat),
        "threads": {owner: _records_to_data(rs) for owner, rs in state.threads.items()},
        "questions": [
            [
                *(q.question_id, q.author, q.name, q.text, q.ts, sorted(q.voters)),
                *(q.answered, False, q.pinned),  # "dismissed": such questions are gone
                q.room,
            ]
            for q in state.questions.values()
        ],
        "polls": [
            [
                *(p.poll_id, p.question, list(p.options), p.multiple, p.open),
                [[who, list(choices)] for who, choices in p.answers.items()],
                *(list(p.tally) if p.tally is not None else None, p.voters),
            ]
            for p in state.polls.values()
        ],
        "question_count": state.question_count,
        "poll_count": state.poll_count,
        "locked_boards": sorted(state.locked_boards),
        "board_cleared": dict(state.board_cleared),
        "board_snapshots": dict(state.board_snapshots),
        "media_mode": state.media_mode,
        "media_muted": [list(pair) for pair in sorted(state.media_muted)],
        "media_muted_all": sorted(state.media_muted_all),
        "media_permitted": sorted(state.media_permitted),
        "spotlight": state.spotlight,
        "stage": state.stage,
        "breakouts": list(state.breakouts),
        "breakout_of": dict(state.breakout_of),
        "breakout_round": state.breakout_round,
        "breakout_boards": list(state.breakout_boards),
        "breakout_ends_at": state.breakout_ends_at,
        "breakout_warn_s": state.breakout_warn_s,
        "breakout_self_select": state.breakout_self_select,
        "breakout_cap": state.breakout_cap,
        "breakout_help": [list(entry) for entry in state.breakout_help],
        "breakout_chat": {room: _records_to_data(rs) for room, rs in state.breakout_chat.items()},
        "breakout_archive": {
            room: _records_to_data(rs) for room, rs in state.breakout_archive.items()
        },
        "gallery": [list(entry) for entry in state.gallery],
        "gallery_shared": state.gallery_shared,
    }


def state_from_data(data: Any) -> RoomState:
    """The :class:`RoomState` that :func:`state_to_data` made ``data`` from.

    Reads the versions in ``READABLE_VERSIONS``.

    Raises:
        SnapshotError: ``data`` is not a snapshot of a readable version or is damaged (a missing
            key, a wrongly shaped value, an unknown event or role).
    """
    if not isinstance(data, Mapping):
        raise SnapshotError("a room snapshot is a map")
    version = data.get("v")
    if version not in READABLE_VERSIONS:
        raise SnapshotError(
            f"room snapshot version {version!r} is not one of {sorted(READABLE_VERSIONS)}"
        )
    if version == 1:
        data = {**data, **_NEW_IN_VERSION_2}
    if version in (1, 2):
        data = {**data, **_NEW_IN_VERSION_3}
    if version in (1, 2, 3):
        data = {**data, **_NEW_IN_VERSION_4}
    if version in (1, 2, 3, 4):
        data = {**data, **_NEW_IN_VERSION_5}
    try:
        breakouts = tuple(str(name) for name in data["breakouts"])
        boards = data["breakout_boards"]
        chats = data["breakout_chat"]
        ended = data["ended"]
        state = RoomState(
            room_id=str(data["room_id"]),
            class_name=_optional_str(data["class_name"]),
            waiting_room=bool(data["waiting_room"]),
            waiting={str(identity): str(name) for identity, name in data["waiting"]},
            denied={str(identity) for identity in data["denied"]},
            revoked_invites={str(invite) for invite in data["revoked_invites"]},
            left={str(identity) for identity in data["left"]},
            locked=bool(data["locked"]),
            ended=(str(ended[0]), str(ended[1])) if ended is not None else None,
            participants={
                identity: Participant(identity, name, Role(role))
                for identity, name, role in data["participants"]
            },
            removed=set(data["removed"]),
            chat_muted_all=bool(data["chat_muted_all"]),
            chat_muted=set(data["chat_muted"]),
            hands=list(data["hands"]),
            chat=_records_from_data(data["chat"]),
            threads={owner: _records_from_data(rs) for owner, rs in data["threads"].items()},
            questions={q[0]: _question(q) for q in data["questions"] if not q[7]},
            polls={p[0]: _poll(p) for p in data["polls"]},
            question_count=int(data["question_count"]),
            poll_count=int(data["poll_count"]),
            locked_boards=set(data["locked_boards"]),
            board_cleared={str(k): int(v) for k, v in data["board_cleared"].items()},
            board_snapshots={str(k): int(v) for k, v in data["board_snapshots"].items()},
            media_mode=str(data["media_mode"]),
            media_muted={(str(identity), str(source)) for identity, source in data["media_muted"]},
            media_muted_all=set(data["media_muted_all"]),
            media_permitted=set(data["media_permitted"]),
            spotlight=None if data["spotlight"] is None else str(data["spotlight"]),
            stage=str(data["stage"]),
            breakout_round=int(data["breakout_round"]),
            breakouts=breakouts,
            breakout_boards=breakouts if boards is None else tuple(str(b) for b in boards),
            breakout_of={str(k): str(v) for k, v in data["breakout_of"].items()},
            breakout_ends_at=_optional_int(data["breakout_ends_at"]),
            breakout_warn_s=int(data["breakout_warn_s"]),
            breakout_self_select=bool(data["breakout_self_select"]),
            breakout_cap=_optional_int(data["breakout_cap"]),
            breakout_help=[(str(who), str(room)) for who, room in data["breakout_help"]],
            breakout_chat=(
                {room: _records_from_data(()) for room in breakouts}
                if chats is None
                else {str(room): _records_from_data(rs) for room, rs in chats.items()}
            ),
            breakout_archive={
                str(room): _records_from_data(rs) for room, rs in data["breakout_archive"].items()
            },
            gallery=tuple((int(r), str(room), str(board)) for r, room, board in data["gallery"]),
            gallery_shared=bool(data["gallery_shared"]),
            last_id=int(data["last_id"]),
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise SnapshotError(f"damaged room snapshot: {exc!r}") from exc
    return state


def _records_to_data(records: Iterable[Record]) -> list[list[Any]]:
    return [[r.id, r.ts, r.event.type, r.event.to_data()] for r in records]


def _records_from_data(items: Iterable[Any]) -> deque[Record]:
    records = (Record(int(i), int(ts), event_from_data(t, event)) for i, ts, t, event in items)
    return deque(records, maxlen=CHAT_HISTORY)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _question(item: list[Any]) -> Question:
    question_id, author, name, text, ts, voters, answered, _dismissed, pinned = item[:9]
    room = item[9] if len(item) > 9 else None
    return Question(
        int(question_id), author, name, text, int(ts), set(voters), answered, pinned, room
    )


def _poll(item: list[Any]) -> Poll:
    poll_id, question, options, multiple, open_, answers, tally, voters = item
    return Poll(
        int(poll_id),
        question,
        tuple(options),
        bool(multiple),
        bool(open_),
        {who: tuple(choices) for who, choices in answers},
        tuple(tally) if tally is not None else None,
        voters,
    )
