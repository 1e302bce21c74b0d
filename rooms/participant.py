"""A participant of a room: who they are, their role and their media grants."""

from dataclasses import dataclass

from rooms.roles import Role, is_staff


@dataclass(frozen=True, slots=True)
class Participant:
    """One identity in a room.

    ``identity`` is unique in the room (the token's ``sub``); ``name`` is the display name;
    ``can_publish`` / ``can_subscribe`` are the token's media grants.
    """

    identity: str
    name: str
    role: Role
    can_publish: bool = True
    can_subscribe: bool = True

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
