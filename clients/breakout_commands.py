"""The breakout-room commands of the SDK (docs/protocol.md, "Breakout rooms"), mixed into
:class:`clients.ClassroomClient`.

Staff only unless said. Each returns the ``ack`` (``ids``: the events appended; ``[]`` when
nothing changed). ``CommandFailed.code`` names what went wrong: ``not_allowed`` (a student, or a
move only the teacher may make), ``bad_field`` (``field`` names it), ``no_such_breakout`` (not
open, or none open), ``no_such_participant``, ``breakouts_open``, ``breakout_full``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .breakouts import auto_assignment

if TYPE_CHECKING:
    from .sdk import Session


def given(**fields: Any) -> dict[str, Any]:
    """The fields that have a value: an optional field left out reads as nil at the server."""
    return {k: v for k, v in fields.items() if v is not None}


class BreakoutCommands:
    """The breakout-room commands; the client supplies ``request`` and ``session``."""

    session: Session

    async def request(self, type_: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        raise NotImplementedError

    async def open_breakouts(
        self,
        rooms: Sequence[str] | None = None,
        *,
        members: Mapping[str, str] | None = None,
        auto: bool = False,
        apart: Sequence[Sequence[str]] = (),
        together: Sequence[Sequence[str]] = (),
        duration_s: int | None = None,
        warn_s: int | None = None,
        self_select: bool | None = None,
        cap: int | None = None,
        groups: str | None = None,
    ) -> dict[str, Any]:
        """Open breakout ``rooms`` (1-50 distinct names of 1-64 characters, no control
        characters), answered by ``breakout.opened{round, rooms, boards, members, duration_s,
        warn_s, self_select, cap, by}``.

        Args:
            members: the initial assignment, identity -> room.
            auto, apart, together: assign every other student balanced at random, keeping each
                pair of ``apart`` in different rooms and each group of ``together`` in one
                (``apart`` or ``together`` imply ``auto``).
            duration_s: a timer, 1-86400 s (None: none); the rooms close when it runs out.
            warn_s: clients warn this long before the close (0-3600, default 60).
            self_select: students choose their room (:meth:`choose_breakout`); ``cap``: at most
                that many students per room (1-1000).
            groups: the name of a saved group set (:meth:`save_breakout_groups`): its rooms and
                members (those still in the room), instead of ``rooms`` and ``members``.

        Raises:
            CommandFailed: ``not_allowed`` (a student; a non-teacher placing other staff);
                ``breakouts_open``; ``bad_field`` (``rooms``, ``duration_s``, ``warn_s``,
                ``cap``, ``auto``: no balanced assignment keeps the constraints, ``groups``: an
                unknown set); ``no_such_participant``; ``no_such_breakout`` (``members`` naming
                a room not in ``rooms``).
        """
        if rooms is None and groups is None:
            raise ValueError("name the rooms or a saved group set")
        fields = given(
            rooms=None if rooms is None else list(rooms),
            members=None if members is None else dict(members),
            auto=auto_assignment(apart, together) if auto or apart or together else None,
            duration_s=duration_s,
            warn_s=warn_s,
            self_select=self_select,
            cap=cap,
            groups=groups,
        )
        return await self.request("breakout.open", **fields)

    async def assign_breakouts(
        self,
        members: Mapping[str, str | None] | None = None,
        *,
        auto: bool = False,
        apart: Sequence[Sequence[str]] = (),
        together: Sequence[Sequence[str]] = (),
    ) -> dict[str, Any]:
        """Move many at once: ``members`` maps identity -> open room (None: the main room); or
        ``auto`` assigns the students in the main room balanced at random (with ``apart`` and
        ``together`` as in :meth:`open_breakouts`). One ``breakout.assigned{members, by}``
        holding only the changes.

        Raises:
            CommandFailed: ``no_such_breakout`` (none open, or a room not open),
                ``no_such_participant``, ``not_allowed``, ``bad_field`` (``auto``).
        """
        if members is None and not (auto or apart or together):
            raise ValueError("give members or auto")
        fields = given(
            members=None if members is None else dict(members),
            auto=auto_assignment(apart, together) if auto or apart or together else None,
        )
        return await self.request("breakout.assign", **fields)

    async def move_to_breakout(self, identity: str, room: str | None) -> dict[str, Any]:
        """Move ``identity`` to breakout ``room`` (None: back to the main room):
        ``breakout.moved{identity, room, by}``. Only the teacher moves other staff, nobody moves
        the teacher but the teacher.

        Raises:
            CommandFailed: ``not_allowed``, ``no_such_participant``, ``no_such_breakout``.
        """
        return await self.request("breakout.move", identity=identity, room=room)

    async def visit_breakout(self, room: str | None) -> dict[str, Any]:
        """Staff visit breakout ``room`` (shown in its roster); None: back to the main room."""
        return await self.move_to_breakout(self.session.identity, room)

    async def choose_breakout(self, room: str | None) -> dict[str, Any]:
        """A **student** picks its room while self-select is on (None: the main room).

        Raises:
            CommandFailed: ``not_allowed`` (self-select off, or staff), ``no_such_breakout``,
                ``breakout_full`` (the room holds ``cap`` students).
        """
        return await self.request("breakout.choose", room=room)

    async def set_breakout_timer(self, remaining_s: int | None) -> dict[str, Any]:
        """Extend or shorten the timer: the rooms close ``remaining_s`` (1-86400) from now on the
        server's clock (None: no timer). ``breakout.timer_set{remaining_s, by}``.

        Raises:
            CommandFailed: ``not_allowed``, ``bad_field`` (``remaining_s``),
                ``no_such_breakout`` (none open).
        """
        return await self.request("breakout.timer", remaining_s=remaining_s)

    async def broadcast(self, text: str) -> dict[str, Any]:
        """A chat line to every room at once: ``chat.message{..., room: nil, broadcast: true}``.

        Raises:
            CommandFailed: ``bad_field`` (``text``), ``no_such_breakout`` (none open).
        """
        return await self.request("breakout.broadcast", text=text)

    async def ask_for_help(self) -> dict[str, Any]:
        """A **student** in a breakout room asks staff for help:
        ``breakout.help_asked{identity, room}`` (``ids: []`` when already queued).

        Raises:
            CommandFailed: ``not_allowed`` (in the main room).
        """
        return await self.request("breakout.help")

    async def clear_help(self, identity: str | None = None) -> dict[str, Any]:
        """Staff mark ``identity``'s help request done; a student withdraws its own (None: this
        participant). ``breakout.help_cleared{identity, by}``.

        Raises:
            CommandFailed: ``not_allowed`` (a student naming another's request).
        """
        return await self.request("breakout.help_done", identity=identity)

    async def close_breakouts(self) -> dict[str, Any]:
        """Close the breakout rooms: everyone back in the main room,
        ``breakout.closed{round, by, reason: "staff"}``; their boards go to the gallery."""
        return await self.request("breakout.close")

    async def share_breakout_boards(self, shared: bool = True) -> dict[str, Any]:
        """Show (or hide) the last round's boards to students: ``breakout.boards_shared``.

        Raises:
            CommandFailed: ``no_such_breakout`` (the gallery is empty).
        """
        return await self.request("breakout.share_boards", shared=shared)

    async def save_breakout_groups(
        self, name: str, rooms: Sequence[str], members: Mapping[str, str]
    ) -> None:
        """Save a group set under ``name`` (1-64 characters) in this staff member's library,
        which outlives the session (at most 50 sets, each 50 rooms and 2,000 members). Saving
        under an existing name replaces it.

        Raises:
            CommandFailed: ``not_allowed``, ``bad_field``, ``limit_reached``.
        """
        await self.request(
            "breakout.groups.save", name=name, rooms=list(rooms), members=dict(members)
        )

    async def list_breakout_groups(self) -> list[dict[str, Any]]:
        """This staff member's saved group sets: ``[{name, rooms, members}]``, by name.

        Raises:
            CommandFailed: ``not_allowed`` (a student).
        """
        ack = await self.request("breakout.groups.list")
        return list(ack.get("groups") or [])

    async def delete_breakout_groups(self, name: str) -> None:
        """Delete the saved group set ``name``.

        Raises:
            CommandFailed: ``bad_field`` (``name``: no such set).
        """
        await self.request("breakout.groups.delete", name=name)

    def breakout_remaining_ms(self) -> float | None:
        """Milliseconds until the breakout rooms close by their timer (server time), None
        without a timer."""
        return self.session.breakouts.remaining_ms(self.session.server_now_ms())
