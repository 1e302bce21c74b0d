"""Classroom media rules: lecture and discussion mode, staff mutes, permissions, the spotlight,
and what the SFU asks of them (may_publish, forwarded_sources, router_id)."""

import dataclasses

import pytest

from rooms import (
    MODES,
    SOURCES,
    BadField,
    BreakoutMove,
    BreakoutOpen,
    MediaMode,
    MediaModeChangedEvent,
    MediaMute,
    MediaMutedEvent,
    MediaPermit,
    MediaPermittedEvent,
    MediaSpotlight,
    MediaSpotlightedEvent,
    NoSuchParticipant,
    NotAllowed,
    Participant,
    ParticipantRemove,
    Role,
    forwarded_sources,
    may_publish,
    new_room,
    room_view,
    router_id,
)
from tests.unit.test_rooms_fold import ASSISTANT, OTHER, STUDENT, TEACHER, Classroom, classroom

SECOND_ASSISTANT = Participant("a2", "Ann", Role.ASSISTANT)


def without_grant(participant: Participant) -> Participant:
    return dataclasses.replace(participant, can_publish=False)


# media.mode


def test_the_room_starts_in_discussion_mode() -> None:
    assert classroom().state.media_mode == "discussion" == MODES[0]


@pytest.mark.parametrize("staff", [TEACHER, ASSISTANT])
def test_staff_switch_between_lecture_and_discussion(staff: Participant) -> None:
    room = classroom()
    assert room.do(staff, MediaMode("lecture")) == [
        MediaModeChangedEvent("lecture", staff.identity)
    ]
    assert room.state.media_mode == "lecture"
    assert room.do(staff, MediaMode("discussion")) == [
        MediaModeChangedEvent("discussion", staff.identity)
    ]
    assert room.state.media_mode == "discussion"


def test_setting_the_current_mode_changes_nothing() -> None:
    room = classroom()
    assert room.do(TEACHER, MediaMode("discussion")) == []
    room.do(TEACHER, MediaMode("lecture"))
    assert room.do(ASSISTANT, MediaMode("lecture")) == []


@pytest.mark.parametrize("mode", ["", "Lecture", "webinar"])
def test_an_unknown_mode_is_bad_field(mode: str) -> None:
    with pytest.raises(BadField) as refused:
        classroom().do(TEACHER, MediaMode(mode))
    assert refused.value.field == "mode"


def test_a_student_is_refused_before_the_mode_is_checked() -> None:
    with pytest.raises(NotAllowed):
        classroom().do(STUDENT, MediaMode("webinar"))


# media.mute


@pytest.mark.parametrize("staff", [TEACHER, ASSISTANT])
@pytest.mark.parametrize("source", SOURCES)
def test_staff_mute_and_unmute_a_students_source(staff: Participant, source: str) -> None:
    room = classroom()
    assert room.do(staff, MediaMute(source, True, "s1")) == [
        MediaMutedEvent("s1", source, True, staff.identity)
    ]
    assert room.state.media_muted == {("s1", source)}
    assert room.do(staff, MediaMute(source, False, "s1")) == [
        MediaMutedEvent("s1", source, False, staff.identity)
    ]
    assert room.state.media_muted == set()


def test_muting_the_muted_or_unmuting_the_unmuted_changes_nothing() -> None:
    room = classroom()
    assert room.do(TEACHER, MediaMute("camera", False, "s1")) == []
    assert room.do(TEACHER, MediaMute("camera", False)) == []
    room.do(TEACHER, MediaMute("camera", True, "s1"))
    assert room.do(ASSISTANT, MediaMute("camera", True, "s1")) == []


@pytest.mark.parametrize("source", ["", "Camera", "speaker", "screen "])
def test_an_unknown_source_is_bad_field(source: str) -> None:
    with pytest.raises(BadField) as refused:
        classroom().do(TEACHER, MediaMute(source, True, "s1"))
    assert refused.value.field == "source"
    with pytest.raises(BadField):
        classroom().do(TEACHER, MediaMute(source, True))


def test_muting_an_unknown_or_removed_identity_is_no_such_participant() -> None:
    room = classroom()
    with pytest.raises(NoSuchParticipant) as refused:
        room.do(TEACHER, MediaMute("camera", True, "ghost"))
    assert refused.value.field == "identity"
    room.do(TEACHER, ParticipantRemove("s2"))
    with pytest.raises(NoSuchParticipant):
        room.do(TEACHER, MediaMute("camera", True, "s2"))


def test_the_target_is_checked_before_the_source() -> None:
    with pytest.raises(NoSuchParticipant):
        classroom().do(TEACHER, MediaMute("speaker", True, "ghost"))


@pytest.mark.parametrize("staff", [TEACHER, ASSISTANT])
@pytest.mark.parametrize("muted", [True, False])
def test_nobody_mutes_the_teacher(staff: Participant, muted: bool) -> None:
    with pytest.raises(NotAllowed) as refused:
        classroom().do(staff, MediaMute("microphone", muted, "t1"))
    assert refused.value.field == "identity"


def test_only_the_teacher_mutes_an_assistant() -> None:
    room = classroom()
    room.join(SECOND_ASSISTANT)
    for target in ("a1", "a2"):
        with pytest.raises(NotAllowed) as refused:
            room.do(ASSISTANT, MediaMute("camera", True, target))
        assert refused.value.field == "identity"
    assert room.do(TEACHER, MediaMute("camera", True, "a2")) == [
        MediaMutedEvent("a2", "camera", True, "t1")
    ]
    with pytest.raises(NotAllowed):
        room.do(ASSISTANT, MediaMute("camera", False, "a2"))
    assert len(room.do(TEACHER, MediaMute("camera", False, "a2"))) == 1


def test_a_student_cannot_lift_a_staff_mute_of_their_own_source() -> None:
    room = classroom()
    room.do(TEACHER, MediaMute("microphone", True, "s1"))
    with pytest.raises(NotAllowed):
        room.do(STUDENT, MediaMute("microphone", False, "s1"))
    assert room.state.media_muted == {("s1", "microphone")}


def test_staff_mute_a_source_for_every_student_once() -> None:
    room = classroom()
    assert room.do(ASSISTANT, MediaMute("screen", True)) == [
        MediaMutedEvent(None, "screen", True, "a1")
    ]
    assert room.state.media_muted_all == {"screen"}
    assert room.do(TEACHER, MediaMute("screen", True)) == []
    room.do(TEACHER, MediaMute("camera", True))
    assert room.state.media_muted_all == {"screen", "camera"}


def test_unmuting_every_student_lifts_students_mutes_of_that_source_only() -> None:
    room = classroom()
    room.do(TEACHER, MediaMute("camera", True, "s1"))
    room.do(TEACHER, MediaMute("microphone", True, "s1"))
    room.do(TEACHER, MediaMute("camera", True, "s2"))
    room.do(TEACHER, MediaMute("camera", True, "a1"))
    room.do(TEACHER, MediaMute("camera", True))
    assert room.do(ASSISTANT, MediaMute("camera", False)) == [
        MediaMutedEvent(None, "camera", False, "a1")
    ]
    assert room.state.media_muted_all == set()
    # The assistant's mute stays: only the teacher lifts it.
    assert room.state.media_muted == {("s1", "microphone"), ("a1", "camera")}


def test_unmuting_every_student_is_a_change_while_one_student_is_muted() -> None:
    room = classroom()
    room.do(TEACHER, MediaMute("camera", True, "a1"))
    assert room.do(TEACHER, MediaMute("camera", False)) == []
    room.do(TEACHER, MediaMute("camera", True, "s2"))
    assert room.do(TEACHER, MediaMute("camera", False)) == [
        MediaMutedEvent(None, "camera", False, "t1")
    ]
    assert room.state.media_muted == {("a1", "camera")}


def test_an_individual_unmute_leaves_the_mute_of_every_student() -> None:
    room = classroom()
    room.do(TEACHER, MediaMute("camera", True))
    room.do(TEACHER, MediaMute("camera", True, "s1"))
    room.do(TEACHER, MediaMute("camera", False, "s1"))
    assert room.state.media_muted_all == {"camera"}
    assert forwarded_sources(room.state, STUDENT) == {"microphone"}


def test_a_student_who_comes_back_as_teacher_is_not_muted() -> None:
    room = classroom()
    room.do(TEACHER, MediaMute("camera", True, "s1"))
    room.do(TEACHER, MediaMute("screen", True, "s2"))
    room.join(Participant("s1", "Sam", Role.TEACHER))
    assert room.state.media_muted == {("s2", "screen")}
    assert room.replay() == room.state


# media.permit


@pytest.mark.parametrize("staff", [TEACHER, ASSISTANT])
def test_staff_permit_a_student_and_take_it_back(staff: Participant) -> None:
    room = classroom()
    assert room.do(staff, MediaPermit("s1", True)) == [
        MediaPermittedEvent("s1", True, staff.identity)
    ]
    assert room.state.media_permitted == {"s1"}
    assert room.do(staff, MediaPermit("s1", False)) == [
        MediaPermittedEvent("s1", False, staff.identity)
    ]
    assert room.state.media_permitted == set()


def test_permitting_the_permitted_changes_nothing() -> None:
    room = classroom()
    assert room.do(TEACHER, MediaPermit("s1", False)) == []
    room.do(TEACHER, MediaPermit("s1", True))
    assert room.do(ASSISTANT, MediaPermit("s1", True)) == []


@pytest.mark.parametrize("target", ["t1", "a1"])
def test_staff_need_no_permission(target: str) -> None:
    with pytest.raises(NotAllowed) as refused:
        classroom().do(TEACHER, MediaPermit(target, True))
    assert refused.value.field == "identity"
    assert "without permission" in refused.value.message


def test_permitting_an_unknown_identity_is_no_such_participant() -> None:
    with pytest.raises(NoSuchParticipant) as refused:
        classroom().do(TEACHER, MediaPermit("ghost", True))
    assert refused.value.field == "identity"


def test_removal_and_becoming_staff_end_a_permission() -> None:
    room = classroom()
    room.do(TEACHER, MediaPermit("s1", True))
    room.do(TEACHER, MediaPermit("s2", True))
    room.do(TEACHER, ParticipantRemove("s2"))
    assert room.state.media_permitted == {"s1"}
    room.join(Participant("s1", "Sam", Role.ASSISTANT))
    assert room.state.media_permitted == set()
    assert room.replay() == room.state


# media.spotlight


@pytest.mark.parametrize("target", ["s1", "t1", "a1"])
def test_staff_spotlight_anyone_and_clear_it(target: str) -> None:
    room = classroom()
    assert room.do(ASSISTANT, MediaSpotlight(target)) == [MediaSpotlightedEvent(target, "a1")]
    assert room.state.spotlight == target
    assert room.do(TEACHER, MediaSpotlight(target)) == []
    assert room.do(TEACHER, MediaSpotlight()) == [MediaSpotlightedEvent(None, "t1")]
    assert room.state.spotlight is None
    assert room.do(TEACHER, MediaSpotlight(None)) == []


def test_moving_the_spotlight_replaces_it() -> None:
    room = classroom()
    room.do(TEACHER, MediaSpotlight("s1"))
    assert room.do(TEACHER, MediaSpotlight("s2")) == [MediaSpotlightedEvent("s2", "t1")]
    assert room.state.spotlight == "s2"


def test_spotlighting_an_unknown_or_removed_identity_is_no_such_participant() -> None:
    room = classroom()
    with pytest.raises(NoSuchParticipant) as refused:
        room.do(TEACHER, MediaSpotlight("ghost"))
    assert refused.value.field == "identity"
    room.do(TEACHER, ParticipantRemove("s2"))
    with pytest.raises(NoSuchParticipant):
        room.do(TEACHER, MediaSpotlight("s2"))


def test_removing_the_spotlighted_participant_clears_the_spotlight() -> None:
    room = classroom()
    room.do(TEACHER, MediaSpotlight("s1"))
    room.do(TEACHER, ParticipantRemove("s2"))
    assert room.state.spotlight == "s1"
    room.do(TEACHER, ParticipantRemove("s1"))
    assert room.state.spotlight is None


# The view


def test_the_view_shows_mode_mutes_permissions_and_spotlight() -> None:
    room = classroom()
    room.do(TEACHER, MediaMode("lecture"))
    room.do(TEACHER, MediaMute("screen", True, "s2"))
    room.do(TEACHER, MediaMute("camera", True, "s2"))
    room.do(TEACHER, MediaMute("camera", True, "s1"))
    room.do(TEACHER, MediaMute("screen", True))
    room.do(TEACHER, MediaMute("camera", True))
    room.do(TEACHER, MediaPermit("s2", True))
    room.do(TEACHER, MediaPermit("s1", True))
    room.do(TEACHER, MediaSpotlight("s2"))
    for viewer in (STUDENT, TEACHER):
        assert room_view(room.state, viewer)["media"] == {
            "mode": "lecture",
            "muted": [
                {"identity": "s1", "source": "camera"},
                {"identity": "s2", "source": "camera"},
                {"identity": "s2", "source": "screen"},
            ],
            "muted_all": ["camera", "screen"],
            "permitted": ["s1", "s2"],
            "spotlight": "s2",
        }


# may_publish, forwarded_sources, router_id


def in_breakout(room: Classroom, identity: str) -> None:
    if not room.state.breakouts:
        room.do(TEACHER, BreakoutOpen(("red", "blue")))
    room.do(TEACHER, BreakoutMove(identity, "red"))


@pytest.mark.parametrize(
    ("granted", "mode", "permitted", "breakout", "publishes"),
    [
        (True, "discussion", False, False, True),
        (True, "lecture", False, False, False),
        (True, "lecture", False, True, True),
        (True, "discussion", False, True, True),
        (False, "discussion", False, False, False),
        (False, "discussion", False, True, False),
        (False, "lecture", False, True, False),
        (False, "lecture", True, False, True),
        (False, "discussion", True, False, True),
        (True, "lecture", True, False, True),
        (False, "lecture", True, True, True),
    ],
)
def test_when_a_student_may_publish(
    granted: bool, mode: str, permitted: bool, breakout: bool, publishes: bool
) -> None:
    room = classroom()
    room.do(TEACHER, MediaMode(mode))
    if permitted:
        room.do(TEACHER, MediaPermit("s1", True))
    if breakout:
        in_breakout(room, "s1")
    student = dataclasses.replace(STUDENT, can_publish=granted)
    assert may_publish(room.state, student) is publishes
    assert (forwarded_sources(room.state, student) == set(SOURCES)) is publishes


@pytest.mark.parametrize("staff", [TEACHER, ASSISTANT])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("breakout", [False, True])
def test_staff_publish_by_their_grant_alone(staff: Participant, mode: str, breakout: bool) -> None:
    room = classroom()
    room.do(TEACHER, MediaMode(mode))
    if breakout:
        in_breakout(room, staff.identity)
    assert may_publish(room.state, staff)
    assert not may_publish(room.state, without_grant(staff))


def test_a_student_moved_back_to_the_main_room_is_in_lecture_mode_again() -> None:
    room = classroom()
    room.do(TEACHER, MediaMode("lecture"))
    in_breakout(room, "s1")
    assert may_publish(room.state, STUDENT)
    room.do(TEACHER, BreakoutMove("s1", None))
    assert not may_publish(room.state, STUDENT)


def test_nothing_is_forwarded_for_whoever_may_not_publish() -> None:
    room = classroom()
    assert forwarded_sources(room.state, without_grant(STUDENT)) == frozenset()
    assert forwarded_sources(room.state, without_grant(TEACHER)) == frozenset()


def test_forwarded_sources_leave_out_individual_mutes() -> None:
    room = classroom()
    room.do(TEACHER, MediaMute("camera", True, "s1"))
    room.do(TEACHER, MediaMute("screen", True, "a1"))
    assert forwarded_sources(room.state, STUDENT) == {"microphone"}
    assert forwarded_sources(room.state, OTHER) == set(SOURCES)
    assert forwarded_sources(room.state, ASSISTANT) == {"camera", "microphone"}


@pytest.mark.parametrize("who", [None, "s1"])
def test_a_camera_mute_also_stops_the_screen_a_camera_could_be_relabelled_as(
    who: str | None,
) -> None:
    """Sources are the client's labels: a camera published as "screen" must not escape a camera
    mute (of one student or of every student); a screen mute leaves the camera alone."""
    room = classroom()
    room.do(TEACHER, MediaMute("camera", True, who))
    assert forwarded_sources(room.state, STUDENT) == {"microphone"}
    room.do(TEACHER, MediaMute("camera", False, who))
    assert forwarded_sources(room.state, STUDENT) == set(SOURCES)
    room.do(TEACHER, MediaMute("screen", True, who))
    assert forwarded_sources(room.state, STUDENT) == {"camera", "microphone"}


def test_a_mute_of_every_student_spares_the_staff() -> None:
    room = classroom()
    room.do(TEACHER, MediaMute("microphone", True))
    room.do(TEACHER, MediaMute("screen", True))
    assert forwarded_sources(room.state, STUDENT) == {"camera"}
    assert forwarded_sources(room.state, OTHER) == {"camera"}
    assert forwarded_sources(room.state, ASSISTANT) == set(SOURCES)
    assert forwarded_sources(room.state, TEACHER) == set(SOURCES)


def test_a_permitted_student_is_still_muted() -> None:
    room = classroom()
    room.do(TEACHER, MediaMode("lecture"))
    room.do(TEACHER, MediaPermit("s1", True))
    room.do(TEACHER, MediaMute("camera", True))
    room.do(TEACHER, MediaMute("microphone", True, "s1"))
    assert forwarded_sources(room.state, without_grant(STUDENT)) == frozenset()
    room.do(TEACHER, MediaMute("camera", False))
    assert forwarded_sources(room.state, without_grant(STUDENT)) == {"camera", "screen"}


def test_router_id_is_the_room_or_the_breakout_room() -> None:
    room = classroom()
    assert router_id(room.state, "s1") == "room-1"
    in_breakout(room, "s1")
    room.do(TEACHER, BreakoutMove("t1", "blue"))
    assert router_id(room.state, "s1") == "room-1/red"
    assert router_id(room.state, "t1") == "room-1/blue"
    assert router_id(room.state, "s2") == "room-1"
    assert router_id(room.state, "ghost") == "room-1"


def test_router_ids_of_different_media_rooms_never_collide() -> None:
    """Room ids are validated (no '/'); router ids are built so that even a room id that got
    through (as ``X/b1`` once did) never names another room's breakout room."""
    names = ["X", "b1", "X/b1", "X%2Fb1", "X/", "/b1", "b1/", "a-b", "X%252Fb1", ""]
    seen: dict[str, tuple[str, str | None]] = {}
    for room_id in names:
        for breakout in [None, *names]:
            state = new_room(room_id)
            if breakout is not None:
                state.breakouts = (breakout,)
                state.breakout_of["s1"] = breakout
            router = router_id(state, "s1")
            assert seen.setdefault(router, (room_id, breakout)) == (room_id, breakout), router
    assert router_id(new_room("X/b1"), "s1") != "X/b1"
