"""Classroom media rules: who publishes, which of their sources the SFU forwards, and in which
media room (mediasoup's Router: one per room and one per breakout room).

The SFU asks these whenever a participant publishes and whenever a ``media.*`` or ``breakout.*``
event is folded. ``participant`` is the publisher as its access token describes it: the state's
participants come from join events and carry no grants, so ``can_publish`` comes from the token.
"""

from urllib.parse import quote

from rooms.participant import Participant
from rooms.state import RoomState

SOURCES: tuple[str, ...] = ("camera", "microphone", "screen")
"""The media sources a participant publishes (the ``sources`` of ``media.publish``)."""

MODES: tuple[str, ...] = ("discussion", "lecture")
"""``discussion`` (the default): anyone with the ``can_publish`` grant publishes; ``lecture``:
only staff publish in the main room (breakout rooms stay in discussion)."""


def may_publish(state: RoomState, participant: Participant) -> bool:
    """True when ``participant`` may publish media now.

    Staff publish by their ``can_publish`` grant. A student publishes when staff permitted them
    (``media.permit``, whatever the mode and grant), or with the grant when the room is in
    discussion mode or the student is in a breakout room (lecture mode is for the main room).
    """
    if participant.is_staff:
        return participant.can_publish
    if participant.identity in state.media_permitted:
        return True
    return participant.can_publish and (
        state.media_mode == "discussion" or participant.identity in state.breakout_of
    )


def forwarded_sources(state: RoomState, participant: Participant) -> frozenset[str]:
    """The sources (of :data:`SOURCES`) the SFU forwards for ``participant``.

    Empty when ``participant`` may not publish (:func:`may_publish`); else every source except
    those staff muted for them, individually or (for a student) for every student. A muted
    ``camera`` also stops ``screen``: sources are the client's labels, so a camera track
    published as ``screen`` must not escape a camera mute (docs/decisions/0010).
    """
    if not may_publish(state, participant):
        return frozenset()
    muted_all = () if participant.is_staff else state.media_muted_all
    muted = {
        source
        for source in SOURCES
        if source in muted_all or (participant.identity, source) in state.media_muted
    }
    if "camera" in muted:
        muted.add("screen")
    return frozenset(SOURCES) - muted


def router_id(state: RoomState, identity: str) -> str:
    """The id of the media room ``identity`` is in: ``"<room_id>"`` for the main room, else
    ``"<room_id>/<breakout room>"``, each part percent-encoded (RFC 3986 section 2.1) so that no
    room id and breakout room name give another's id. Room ids are of ``A-Za-z0-9_-``
    (:func:`rooms.room_ids.is_room_id`), which the encoding leaves as they are, so the text before
    the first ``/`` is the room id; a breakout room's display name ("Red team", "a/b") is encoded
    whole."""
    room = quote(state.room_id, safe="")
    breakout = state.breakout_of.get(identity)
    return room if breakout is None else f"{room}/{quote(breakout, safe='')}"
