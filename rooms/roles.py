"""Roles in a classroom: the teacher (host), assistants (co-hosts) and students.

The teacher and the assistants are the *staff* (docs/protocol.md, "Commands and the events they
cause").
"""

from enum import StrEnum


class Role(StrEnum):
    """A participant's role, as carried in the access token's ``grants.role``."""

    TEACHER = "teacher"
    ASSISTANT = "assistant"
    STUDENT = "student"


STAFF_ROLES: frozenset[Role] = frozenset({Role.TEACHER, Role.ASSISTANT})


def is_staff(role: Role) -> bool:
    """Return True for the teaching staff: the teacher and assistants."""
    return role in STAFF_ROLES
