"""The room snapshot a participant receives in ``welcome``: the protocol's ``RoomView``.

It shows only what the viewer may see: private chat threads of the staff and that viewer
(all threads for staff), poll tallies for staff or once the poll is closed, and of the chat,
questions and hands only those of the viewer's place (their breakout room, or the main room);
staff see every room's, each labelled with its ``room``.
"""

import heapq
from collections.abc import Iterable
from typing import Any

from rooms.bounds import CHAT_VIEW_BYTES_MAX, chat_bytes
from rooms.events import ChatMessageEvent, Record
from rooms.participant import Participant
from rooms.state import CHAT_HISTORY, Poll, Question, RoomState


def room_view(state: RoomState, viewer: Participant) -> dict[str, Any]:
    """The ``RoomView`` map of docs/protocol.md as ``viewer`` may see it (msgpack-ready).

    Keys: ``room_id``, ``class_name`` (the display name, or None), ``locked``, ``waiting_room``,
    ``waiting`` (``[{identity, name}]``, first come first; staff only, else empty), ``ended``
    (``{reason, by}`` or None), ``chat_muted_all``,
    ``chat_muted`` (sorted identities), ``hands`` (``[{identity, name, room}]``, first raised
    first: a student's place's, every one for staff), ``chat`` (see :func:`visible_chat`),
    ``questions`` (see :func:`ordered_questions`; a student's place's, every one for staff),
    ``polls`` (oldest first), ``locked_boards`` (sorted names of the whiteboards students may
    not write), ``media`` (see :func:`media_entry`), ``stage`` (``"video"`` or ``"board"``) and
    ``breakouts`` (see :func:`breakouts_entry`).
    """
    ended = None if state.ended is None else {"reason": state.ended[0], "by": state.ended[1]}
    place = state.place_of(viewer.identity)
    return {
        "room_id": state.room_id,
        "class_name": state.class_name,
        "locked": state.locked,
        "waiting_room": state.waiting_room,
        "waiting": (
            [{"identity": i, "name": name} for i, name in state.waiting.items()]
            if viewer.is_staff
            else []
        ),
        "ended": ended,
        "chat_muted_all": state.chat_muted_all,
        "chat_muted": sorted(state.chat_muted),
        "hands": [
            {
                "identity": identity,
                "name": state.display_name(identity),
                "room": state.place_of(identity),
            }
            for identity in state.hands
            if viewer.is_staff or state.place_of(identity) == place
        ],
        "chat": [chat_entry(record) for record in visible_chat(state, viewer)],
        "questions": [
            question_entry(question, viewer)
            for question in ordered_questions(state)
            if viewer.is_staff or question.room == place
        ],
        "polls": [poll_entry(poll, viewer) for poll in sorted_polls(state.polls.values())],
        "locked_boards": sorted(state.locked_boards),
        "media": media_entry(state),
        "stage": state.stage,
        "breakouts": breakouts_entry(state, viewer),
    }


def visible_chat(state: RoomState, viewer: Participant) -> list[Record]:
    """The last ``CHAT_HISTORY`` chat records ``viewer`` may see, oldest first, and of those
    only the newest that fit in :data:`rooms.bounds.CHAT_VIEW_BYTES_MAX`.

    A student sees the conversation of their place (the main room's, or their breakout
    room's) and their private thread; staff see every conversation: the main room's, each open
    breakout room's, those of the last closed round, and every thread. A broadcast is in
    several conversations and is shown once.
    """
    place = state.place_of(viewer.identity)
    conversations: list[Iterable[Record]]
    if viewer.is_staff:
        conversations = [
            state.chat,
            *state.breakout_chat.values(),
            *state.breakout_archive.values(),
            *state.threads.values(),
        ]
    else:
        own = state.chat if place is None else state.breakout_chat.get(place, ())
        conversations = [own]
        if viewer.identity in state.threads:
            conversations.append(state.threads[viewer.identity])
    merged = _distinct(heapq.merge(*conversations, key=lambda record: record.id))
    merged = merged[-CHAT_HISTORY:]
    budget = CHAT_VIEW_BYTES_MAX
    start = len(merged)
    while start > 0:
        event = merged[start - 1].event
        assert isinstance(event, ChatMessageEvent)
        budget -= chat_bytes(event.sender, event.name, event.text, event.thread)
        if budget < 0:
            break
        start -= 1
    return merged[start:]


def _distinct(records: Iterable[Record]) -> list[Record]:
    """``records`` (sorted by id) without repeats."""
    result: list[Record] = []
    for record in records:
        if not result or result[-1].id != record.id:
            result.append(record)
    return result


def chat_entry(record: Record) -> dict[str, Any]:
    """The ``ChatMessage`` map of a ``chat.message`` record.

    Returns ``{id, ts, from, name, role, text, thread, room, broadcast}``.

    Raises:
        TypeError: the record holds another event.
    """
    event = record.event
    if not isinstance(event, ChatMessageEvent):
        raise TypeError(f"not a chat.message record: {record!r}")
    return {"id": record.id, "ts": record.ts, **event.to_data()}


def ordered_questions(state: RoomState) -> list[Question]:
    """The room's questions: pinned first, then open before answered, then most votes, then
    oldest first (ties by id)."""
    return sorted(
        state.questions.values(),
        key=lambda q: (not q.pinned, q.answered, -q.votes, q.ts, q.question_id),
    )


def question_entry(question: Question, viewer: Participant) -> dict[str, Any]:
    """The protocol's ``Question`` map; ``voted`` is whether ``viewer`` upvoted it."""
    return {
        "question_id": question.question_id,
        "author": question.author,
        "name": question.name,
        "text": question.text,
        "ts": question.ts,
        "votes": question.votes,
        "voted": viewer.identity in question.voters,
        "answered": question.answered,
        "pinned": question.pinned,
        "room": question.room,
    }


def sorted_polls(polls: Iterable[Poll]) -> list[Poll]:
    """Polls oldest first."""
    return sorted(polls, key=lambda poll: poll.poll_id)


def poll_entry(poll: Poll, viewer: Participant) -> dict[str, Any]:
    """The protocol's ``Poll`` map as ``viewer`` may see it.

    ``mine`` is the viewer's choices; ``tally`` and ``voters`` are None for a student while the
    poll is open; ``answers`` (each voter's current choices, so a live tally can replace a voter's
    earlier answer) is for staff only.
    """
    results_visible = viewer.is_staff or not poll.open
    return {
        "poll_id": poll.poll_id,
        "question": poll.question,
        "options": list(poll.options),
        "multiple": poll.multiple,
        "open": poll.open,
        "mine": list(poll.answers.get(viewer.identity, ())),
        "tally": list(poll.current_tally()) if results_visible else None,
        "voters": poll.current_voters() if results_visible else None,
        "answers": (
            {who: list(choices) for who, choices in poll.answers.items()}
            if viewer.is_staff
            else None
        ),
    }


def media_entry(state: RoomState) -> dict[str, Any]:
    """The protocol's ``MediaView`` map.

    Returns ``{mode, muted: [{identity, source}] (sorted), muted_all: [source] (sorted),
    permitted: [identity] (sorted), spotlight: str | None}``.
    """
    return {
        "mode": state.media_mode,
        "muted": [
            {"identity": identity, "source": source}
            for identity, source in sorted(state.media_muted)
        ],
        "muted_all": sorted(state.media_muted_all),
        "permitted": sorted(state.media_permitted),
        "spotlight": state.spotlight,
    }


def breakouts_entry(state: RoomState, viewer: Participant) -> dict[str, Any]:
    """The ``breakouts`` map of the protocol's ``RoomView`` as ``viewer`` may see it.

    Returns ``{round, rooms: [str] (open, in opening order), boards: [str] (their whiteboards,
    same order), members: {identity: room} (whoever is absent is in the main room), ends_at:
    epoch ms | None, warn_s, self_select, cap, help: [{identity, room}] (staff: the whole queue,
    oldest first; a student: only their own entry), gallery: [{round, room, board}] (the last
    closed round's boards; for students only while shared), gallery_shared}``.
    """
    help_queue = [
        {"identity": identity, "room": room}
        for identity, room in state.breakout_help
        if viewer.is_staff or identity == viewer.identity
    ]
    gallery = (
        [{"round": r, "room": room, "board": board} for r, room, board in state.gallery]
        if viewer.is_staff or state.gallery_shared
        else []
    )
    return {
        "round": state.breakout_round,
        "rooms": list(state.breakouts),
        "boards": list(state.breakout_boards),
        "members": dict(sorted(state.breakout_of.items())),
        "ends_at": state.breakout_ends_at,
        "warn_s": state.breakout_warn_s,
        "self_select": state.breakout_self_select,
        "cap": state.breakout_cap,
        "help": help_queue,
        "gallery": gallery,
        "gallery_shared": state.gallery_shared,
    }
