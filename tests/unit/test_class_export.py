"""The class export folded from a room's log: bounded, and the same from the log as the room saw."""

from rooms import (
    ChatMessageEvent,
    ClassExport,
    ParticipantJoinedEvent,
    PollAnsweredEvent,
    PollOpenedEvent,
    Record,
    Role,
)
from rooms.export import EXPORT_CHAT_MAX


def test_chat_past_the_bound_is_left_out_and_marked() -> None:
    export = ClassExport("r")
    export.add(Record(1, 10, ParticipantJoinedEvent("s1", "Sam", Role.STUDENT)))
    for i in range(EXPORT_CHAT_MAX + 5):
        export.add(Record(i + 2, 20 + i, ChatMessageEvent("s1", "Sam", Role.STUDENT, "hi", None)))
    data = export.to_data()
    assert len(data["chat"]) == EXPORT_CHAT_MAX and data["truncated"] is True
    (sam,) = data["attendance"]
    assert sam["joined_at"] == 10 and sam["last_seen_at"] == 20 + EXPORT_CHAT_MAX + 4


def test_an_open_polls_results_are_its_answers_so_far() -> None:
    export = ClassExport("r")
    export.add(Record(1, 1, PollOpenedEvent(1, "Pick", ("a", "b", "c"), True, "t1")))
    export.add(Record(2, 2, PollAnsweredEvent(1, "s1", (0, 2))))
    export.add(Record(3, 3, PollAnsweredEvent(1, "s2", (2,))))
    export.add(Record(4, 4, PollAnsweredEvent(1, "s1", (2,))))  # a new answer replaces the old
    (poll,) = export.to_data()["polls"]
    assert poll["tally"] == [0, 0, 2] and poll["voters"] == 2 and poll["open"] is True
    rows = list(export.rows("polls"))
    assert rows[0][-2:] == ("option", "votes") and [r[-2:] for r in rows[1:]] == [
        ("a", 0),
        ("b", 0),
        ("c", 2),
    ]
