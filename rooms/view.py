"""The room snapshot a participant receives in ``welcome``: the protocol's ``RoomView``.

It shows only what the viewer may see: private chat threads of the staff and that viewer
(all threads for staff), and poll tallies for staff or once the poll is closed.
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

    Keys: ``room_id``, ``locked``, ``ended`` (``{reason, by}`` or None), ``chat_muted_all``,
    ``chat_muted`` (sorted identities), ``hands`` (``[{identity, name}]``, first raised first),
    ``chat`` (see :func:`visible_chat`), ``questions``
    (see :func:`ordered_questions`), ``polls`` (oldest first), ``locked_boards`` (sorted
    names of the whiteboards students may not write), ``media`` (see :func:`media_entry`) and
    ``breakouts`` (see :func:`breakouts_entry`).
    """
    ended = None if state.ended is None else {"reason": state.ended[0], "by": state.ended[1]}
    return {
        "room_id": state.room_id,
        "locked": state.locked,
        "ended": ended,
        "chat_muted_all": state.chat_muted_all,
        "chat_muted": sorted(state.chat_muted),
        "hands": [
            {"identity": identity, "name": state.display_name(identity)} for identity in state.hands
        ],
        "chat": [chat_entry(record) for record in visible_chat(state, viewer)],
        "questions": [question_entry(question, viewer) for question in ordered_questions(state)],
        "polls": [poll_entry(poll, viewer) for poll in sorted_polls(state.polls.values())],
        "locked_boards": sorted(state.locked_boards),
        "media": media_entry(state),
        "breakouts": breakouts_entry(state),
    }


def visible_chat(state: RoomState, viewer: Participant) -> list[Record]:
    """The last ``CHAT_HISTORY`` chat records ``viewer`` may see, oldest first, and of those
    only the newest that fit in :data:`rooms.bounds.CHAT_VIEW_BYTES_MAX`."""
    conversations = [state.chat]
    if viewer.is_staff:
        conversations.extend(state.threads.values())
    elif viewer.identity in state.threads:
        conversations.append(state.threads[viewer.identity])
    merged = list(heapq.merge(*conversations, key=lambda record: record.id))[-CHAT_HISTORY:]
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


def chat_entry(record: Record) -> dict[str, Any]:
    """The ``ChatMessage`` map of a ``chat.message`` record.

    Returns ``{id, ts, from, name, role, text, thread}``.

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


def breakouts_entry(state: RoomState) -> dict[str, Any]:
    """The ``breakouts`` map of the protocol's ``RoomView``.

    Returns ``{rooms: [str] (open breakout rooms, in opening order), members: {identity: room}}``
    (by identity; whoever is absent is in the main room).
    """
    return {
        "rooms": list(state.breakouts),
        "members": dict(sorted(state.breakout_of.items())),
    }
