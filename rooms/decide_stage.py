"""The stage rule of :func:`rooms.decide`: staff put the video grid or the whiteboard on every
page's stage (docs/protocol.md, "The stage")."""

from rooms.checks import require_staff
from rooms.commands import StageSet
from rooms.errors import BadField
from rooms.events import Event, StageChangedEvent
from rooms.participant import Participant
from rooms.stage import STAGE_VIEWS
from rooms.state import RoomState


def stage_set(state: RoomState, actor: Participant, command: StageSet) -> list[Event]:
    """``[StageChangedEvent]``, or ``[]`` when ``command.view`` is on the stage already.

    Raises:
        NotAllowed: ``actor`` is a student.
        BadField: ``view`` (field ``view``) is not one of :data:`rooms.stage.STAGE_VIEWS`.
    """
    require_staff(actor, "choose what is on the stage")
    if command.view not in STAGE_VIEWS:
        raise BadField(f"view is one of {', '.join(STAGE_VIEWS)}", "view")
    if state.stage == command.view:
        return []
    return [StageChangedEvent(command.view, actor.identity)]
