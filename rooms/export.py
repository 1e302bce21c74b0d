"""The end-of-class export, folded from the room's log (docs/protocol.md, "Class export").

:class:`ClassExport` takes the log's records one at a time (the caller reads the log in pages,
so memory follows the export, not the log) and keeps what staff download after class: the chat
with the private threads, the questions with their votes, the polls with their results, and the
attendance (who came, when first, their last activity in the log, when removed). Every list is
bounded (:data:`EXPORT_CHAT_MAX` ...): past a bound the oldest entries are kept and
``truncated`` says so. :meth:`ClassExport.to_data` is the JSON document; :meth:`ClassExport.rows`
one CSV table of it. Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rooms.events import (
    ChatMessageEvent,
    Event,
    HandRaisedEvent,
    ParticipantAdmittedEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    ParticipantRemovedEvent,
    PollAnsweredEvent,
    PollClosedEvent,
    PollOpenedEvent,
    QuestionAnsweredEvent,
    QuestionAskedEvent,
    QuestionDismissedEvent,
    QuestionPinnedEvent,
    QuestionUnvotedEvent,
    QuestionUpvotedEvent,
    Record,
    RoomNamedEvent,
    SessionEndedEvent,
)

EXPORT_CHAT_MAX = 20_000
"""Chat messages an export holds (2,000 characters each at most: about 40 MB at worst)."""
EXPORT_QUESTIONS_MAX = 2_000
"""Questions an export holds (dismissed ones included, marked)."""
EXPORT_POLLS_MAX = 500
"""Polls an export holds."""
EXPORT_PEOPLE_MAX = 10_000
"""Participants an export's attendance holds."""

#: The CSV tables of an export and their columns, in order.
CSV_TABLES: dict[str, tuple[str, ...]] = {
    "chat": ("id", "ts", "from", "name", "role", "text", "thread", "room", "broadcast"),
    "questions": (
        *("question_id", "ts", "author", "name", "text", "room"),
        *("votes", "answered", "pinned", "dismissed"),
    ),
    "polls": ("poll_id", "ts", "question", "multiple", "open", "voters", "option", "votes"),
    "attendance": (
        *("identity", "name", "role", "joined_at", "last_seen_at"),
        *("left_at", "removed_at"),
    ),
}


@dataclass(slots=True)
class ClassExport:
    """The export of room ``room_id`` folded so far; ``first_id``: the oldest log id it saw (a
    trimmed log starts later than 1), ``last_id`` the newest."""

    room_id: str
    class_name: str | None = None
    first_id: int = 0
    last_id: int = 0
    ended_at: int | None = None
    truncated: bool = False
    chat: list[dict[str, Any]] = field(default_factory=list)
    questions: dict[int, dict[str, Any]] = field(default_factory=dict)
    polls: dict[int, dict[str, Any]] = field(default_factory=dict)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, record: Record) -> None:
        """Fold one log record (records come in id order)."""
        if not self.first_id:
            self.first_id = record.id
        self.last_id = record.id
        event, ts = record.event, record.ts
        self._seen(event, ts)
        match event:
            case RoomNamedEvent():
                self.class_name = event.class_name
            case ChatMessageEvent():
                if len(self.chat) >= EXPORT_CHAT_MAX:
                    self.truncated = True
                    return
                self.chat.append(
                    {
                        "id": record.id,
                        "ts": ts,
                        "from": event.sender,
                        "name": event.name,
                        "role": event.role.value,
                        "text": event.text,
                        "thread": event.thread,
                        "room": event.room,
                        "broadcast": event.broadcast,
                    }
                )
            case QuestionAskedEvent():
                if len(self.questions) >= EXPORT_QUESTIONS_MAX:
                    self.truncated = True
                    return
                self.questions[event.question_id] = {
                    "question_id": event.question_id,
                    "ts": ts,
                    "author": event.author,
                    "name": event.name,
                    "text": event.text,
                    "room": event.room,
                    "voters": set(),
                    "answered": False,
                    "pinned": False,
                    "dismissed": False,
                }
            case QuestionUpvotedEvent() | QuestionUnvotedEvent():
                question = self.questions.get(event.question_id)
                if question is not None:
                    if isinstance(event, QuestionUpvotedEvent):
                        question["voters"].add(event.identity)
                    else:
                        question["voters"].discard(event.identity)
            case QuestionAnsweredEvent() | QuestionDismissedEvent() | QuestionPinnedEvent():
                question = self.questions.get(event.question_id)
                if question is None:
                    return
                if isinstance(event, QuestionAnsweredEvent):
                    question["answered"] = True
                elif isinstance(event, QuestionDismissedEvent):
                    question["dismissed"] = True
                else:
                    question["pinned"] = event.pinned
            case PollOpenedEvent():
                if len(self.polls) >= EXPORT_POLLS_MAX:
                    self.truncated = True
                    return
                self.polls[event.poll_id] = {
                    "poll_id": event.poll_id,
                    "ts": ts,
                    "question": event.question,
                    "options": list(event.options),
                    "multiple": event.multiple,
                    "open": True,
                    "answers": {},
                    "tally": None,
                    "voters": None,
                }
            case PollAnsweredEvent():
                poll = self.polls.get(event.poll_id)
                if poll is not None:
                    poll["answers"][event.identity] = list(event.choices)
            case PollClosedEvent():
                poll = self.polls.get(event.poll_id)
                if poll is not None:
                    poll.update(open=False, tally=list(event.tally), voters=event.voters)
            case ParticipantJoinedEvent() | ParticipantAdmittedEvent():
                role = event.role.value if isinstance(event, ParticipantJoinedEvent) else "student"
                person = self._person(event.identity, event.name, ts)
                if person is not None:
                    person.update(name=event.name, role=role, left_at=None)
            case ParticipantLeftEvent():
                person = self.people.get(event.identity)
                if person is not None:
                    person["left_at"] = ts
            case ParticipantRemovedEvent():
                person = self.people.get(event.identity)
                if person is not None:
                    person["removed_at"] = ts
            case SessionEndedEvent():
                self.ended_at = ts

    def _person(self, identity: str, name: str, ts: int) -> dict[str, Any] | None:
        person = self.people.get(identity)
        if person is None:
            if len(self.people) >= EXPORT_PEOPLE_MAX:
                self.truncated = True
                return None
            person = self.people[identity] = {
                "identity": identity,
                "name": name,
                "role": "student",
                "joined_at": ts,
                "last_seen_at": ts,
                "left_at": None,
                "removed_at": None,
            }
        return person

    def _seen(self, event: Event, ts: int) -> None:
        """Move the last activity of the participant who caused ``event``."""
        who: object
        match event:
            case ChatMessageEvent():
                who = event.sender
            case (
                HandRaisedEvent()
                | ParticipantJoinedEvent()
                | ParticipantLeftEvent()
                | QuestionUpvotedEvent()
                | QuestionUnvotedEvent()
                | PollAnsweredEvent()
            ):
                who = event.identity
            case QuestionAskedEvent():
                who = event.author
            case _:
                who = getattr(event, "by", None)
        person = self.people.get(who) if isinstance(who, str) else None
        if person is not None:
            person["last_seen_at"] = ts

    def to_data(self) -> dict[str, Any]:
        """The JSON document (msgpack/JSON-ready): ``room_id``, ``class_name``, ``first_id``,
        ``last_id``, ``ended_at``, ``truncated``, ``chat``, ``questions`` (with ``votes`` and
        ``voters``), ``polls`` (with ``tally``, ``voters`` and each voter's ``answers``) and
        ``attendance``."""
        return {
            "room_id": self.room_id,
            "class_name": self.class_name,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "ended_at": self.ended_at,
            "truncated": self.truncated,
            "chat": self.chat,
            "questions": [
                {**q, "voters": sorted(q["voters"]), "votes": len(q["voters"])}
                for q in self.questions.values()
            ],
            "polls": [{**p, "tally": _tally(p), "voters": _voters(p)} for p in self.polls.values()],
            "attendance": list(self.people.values()),
        }

    def rows(self, table: str) -> Iterator[tuple[Any, ...]]:
        """The rows of CSV table ``table`` (a key of :data:`CSV_TABLES`), header first.

        Raises:
            KeyError: no such table.
        """
        columns = CSV_TABLES[table]
        yield columns
        if table == "chat":
            for message in self.chat:
                yield tuple(message[c] for c in columns)
        elif table == "questions":
            for q in self.questions.values():
                entry = {**q, "votes": len(q["voters"])}
                yield tuple(entry[c] for c in columns)
        elif table == "polls":
            for p in self.polls.values():
                tally = _tally(p)
                for index, option in enumerate(p["options"]):
                    yield (
                        *(p["poll_id"], p["ts"], p["question"], p["multiple"], p["open"]),
                        *(_voters(p), option, tally[index]),
                    )
        else:
            for person in self.people.values():
                yield tuple(person[c] for c in columns)


def _tally(poll: dict[str, Any]) -> list[int]:
    """The poll's votes per option: its closing tally, or the answers so far while open."""
    if poll["tally"] is not None:
        return list(poll["tally"])
    counts = [0] * len(poll["options"])
    for choices in poll["answers"].values():
        for choice in choices:
            if 0 <= choice < len(counts):
                counts[choice] += 1
    return counts


def _voters(poll: dict[str, Any]) -> int:
    return int(poll["voters"]) if poll["voters"] is not None else len(poll["answers"])
