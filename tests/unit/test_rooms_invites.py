"""Revoked invite links admit no new identity; who joined through them before comes back."""

import pytest

from rooms import (
    InviteRevoke,
    InviteRevoked,
    InviteRevokedEvent,
    LimitReached,
    NotAllowed,
    Participant,
    ParticipantJoinedEvent,
    Role,
    admit,
)
from rooms.bounds import REVOKED_INVITES_MAX
from rooms.snapshot import state_from_data, state_to_data
from tests.unit.test_rooms_fold import STUDENT, TEACHER, classroom

ADA = Participant("s-ada", "Ada", Role.STUDENT, invite="link-1")
ADA_AGAIN = Participant("s-new", "Not Ada", Role.STUDENT, invite="link-1")


def test_a_revoked_link_admits_no_new_identity_but_lets_its_students_back() -> None:
    room = classroom()
    room.append(admit(room.state, ADA))
    assert room.do(TEACHER, InviteRevoke("link-1")) == [InviteRevokedEvent("link-1", "t1")]
    assert room.do(TEACHER, InviteRevoke("link-1")) == []
    with pytest.raises(InviteRevoked):
        admit(room.state, ADA_AGAIN)
    assert admit(room.state, ADA) == [], "Ada joined through it before: she comes back"
    other_link = Participant("s-bo", "Bo", Role.STUDENT, invite="link-2")
    assert admit(room.state, other_link) == [ParticipantJoinedEvent("s-bo", "Bo", Role.STUDENT)]
    assert state_from_data(state_to_data(room.state)).revoked_invites == {"link-1"}


def test_the_invite_is_not_part_of_who_a_participant_is() -> None:
    assert Participant("s1", "Sam", Role.STUDENT, invite="x") == STUDENT


def test_only_staff_revoke_and_a_room_remembers_a_bounded_number() -> None:
    room = classroom()
    with pytest.raises(NotAllowed):
        room.do(STUDENT, InviteRevoke("link-1"))
    for i in range(REVOKED_INVITES_MAX):
        room.do(TEACHER, InviteRevoke(f"link-{i}"))
    with pytest.raises(LimitReached):
        room.do(TEACHER, InviteRevoke("one-too-many"))
