"""A participant of a room: who they are, their role and their media grants."""

from __future__ import annotations

from dataclasses import dataclass, field

from rooms.roles import Role, is_staff


@dataclass(frozen=True, slots=True)
class Participant:
    """One identity in a room.

    ``identity`` is unique in the room (the token's ``sub``); ``name`` is the display name;
    ``can_publish`` / ``can_subscribe`` are the token's media grants. ``invite`` is the id of the
    invite link the token was traded for (its ``invite_id`` claim), if any: a link staff revoked
    admits no new identity (:func:`rooms.admit`). It is not part of who the participant is
    (equality, the wire, the log).
    """

    identity: str
    name: str
    role: Role
    can_publish: bool = True
    can_subscribe: bool = True
    invite: str | None = field(default=None, compare=False)

    @property
    def is_staff(self) -> bool:
        """True for the teacher and assistants."""
        return is_staff(self.role)

    def to_wire(self) -> dict[str, object]:
        """The protocol's ``Participant`` map.

        Returns ``{identity: str, name: str, role: str, can_publish: bool, can_subscribe: bool}``
        with ``role`` as a plain string.
        """
        return {
            "identity": self.identity,
            "name": self.name,
            "role": self.role.value,
            "can_publish": self.can_publish,
            "can_subscribe": self.can_subscribe,
        }

    @classmethod
    def from_wire(cls, data: object) -> Participant:
        """The inverse of :meth:`to_wire`.

        Raises:
            ValueError: ``data`` is not a ``Participant`` map (a missing or mistyped field, an
                unknown role).
        """
        if not isinstance(data, dict):
            raise ValueError("a participant is a map")
        identity, name, role = data.get("identity"), data.get("name"), data.get("role")
        can_publish, can_subscribe = data.get("can_publish"), data.get("can_subscribe")
        if not (isinstance(identity, str) and isinstance(name, str) and isinstance(role, str)):
            raise ValueError("identity, name and role must be strings")
        if not (isinstance(can_publish, bool) and isinstance(can_subscribe, bool)):
            raise ValueError("can_publish and can_subscribe must be booleans")
        return cls(identity, name, Role(role), can_publish, can_subscribe)
