"""Automatic assignment to breakout rooms: balanced, every student exactly once, groups kept
together and pairs apart, the same result for the same seed (rooms.breakout_assign)."""

from collections import Counter

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rooms.breakout_assign import AssignmentImpossible, auto_assign

STUDENT_IDS = st.lists(
    st.text(alphabet="abcdefghij", min_size=1, max_size=3), min_size=0, max_size=60, unique=True
)


@settings(max_examples=300, deadline=None)
@given(STUDENT_IDS, st.integers(min_value=1, max_value=12), st.text(max_size=8))
def test_every_student_is_assigned_exactly_once_and_rooms_differ_by_at_most_one(
    students: list[str], room_count: int, seed: str
) -> None:
    rooms = [f"room {n}" for n in range(room_count)]
    assigned = auto_assign(students, rooms, seed=seed)
    assert set(assigned) == set(students)
    assert set(assigned.values()) <= set(rooms)
    sizes = [Counter(assigned.values())[room] for room in rooms]
    assert max(sizes) - min(sizes) <= 1
    assert auto_assign(students, rooms, seed=seed) == assigned


@st.composite
def constrained(draw: st.DrawFn) -> tuple[list[str], list[str], list[tuple[str, str]],
                                          list[list[str]]]:  # fmt: skip
    students = draw(STUDENT_IDS.filter(lambda s: len(s) >= 4))
    rooms = [f"r{n}" for n in range(draw(st.integers(min_value=2, max_value=6)))]
    pick = st.sampled_from(students)
    apart = draw(st.lists(st.tuples(pick, pick).filter(lambda p: p[0] != p[1]), max_size=4))
    together = draw(st.lists(st.lists(pick, min_size=2, max_size=3, unique=True), max_size=2))
    return students, rooms, apart, together


@settings(max_examples=300, deadline=None)
@given(constrained(), st.text(max_size=8))
def test_groups_stay_together_and_pairs_apart_or_the_request_is_refused(
    case: tuple[list[str], list[str], list[tuple[str, str]], list[list[str]]], seed: str
) -> None:
    students, rooms, apart, together = case
    try:
        assigned = auto_assign(students, rooms, apart=apart, together=together, seed=seed)
    except AssignmentImpossible:
        assume(False)
        return
    assert set(assigned) == set(students)
    sizes = [Counter(assigned.values())[room] for room in rooms]
    assert max(sizes) - min(sizes) <= 1
    assert all(assigned[a] != assigned[b] for a, b in apart)
    assert all(len({assigned[m] for m in group}) == 1 for group in together)


@settings(max_examples=100, deadline=None)
@given(STUDENT_IDS.filter(lambda s: len(s) >= 2), st.integers(min_value=2, max_value=8))
def test_students_already_placed_count_towards_the_balance(
    students: list[str], room_count: int
) -> None:
    rooms = [f"r{n}" for n in range(room_count)]
    fixed = {students[0]: "r0", students[1]: "r0"}
    assigned = auto_assign(students, rooms, fixed=fixed, seed="s")
    assert set(assigned) == set(students) - set(fixed)
    sizes = Counter({**fixed, **assigned}.values())
    receiving = [sizes[room] for room in rooms if room != "r0" or len(students) > 2 * room_count]
    assert not receiving or max(receiving) - min(receiving) <= 1
    assert sizes["r0"] >= 2


def test_the_seed_changes_the_draw() -> None:
    students = [f"s{n}" for n in range(30)]
    rooms = ["a", "b", "c", "d", "e"]
    draws = {tuple(sorted(auto_assign(students, rooms, seed=str(n)).items())) for n in range(5)}
    assert len(draws) > 1


@pytest.mark.parametrize(
    ("apart", "together"),
    [
        ([("a", "b"), ("b", "c"), ("a", "c")], []),  # three mutually apart, two rooms
        ([("a", "b")], [["a", "b"]]),  # apart inside a group
        ([], [["a", "b", "c"]]),  # a group larger than a balanced room
        ([("a", "a")], []),
    ],
)
def test_impossible_constraints_are_refused(
    apart: list[tuple[str, str]], together: list[list[str]]
) -> None:
    with pytest.raises(AssignmentImpossible):
        auto_assign(["a", "b", "c", "d"], ["x", "y"], apart=apart, together=together, seed="s")


def test_two_thousand_students_in_fifty_rooms_are_assigned_quickly() -> None:
    students = [f"s{n}" for n in range(2000)]
    rooms = [f"r{n}" for n in range(50)]
    apart = [(f"s{n}", f"s{n + 1}") for n in range(0, 100, 2)]
    assigned = auto_assign(students, rooms, apart=apart, seed="big")
    assert set(Counter(assigned.values()).values()) == {40}
