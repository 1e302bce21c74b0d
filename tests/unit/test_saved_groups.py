"""Saved breakout groups: the checks, the bounds, and the embedded store that keeps them."""

import asyncio
from pathlib import Path

import msgpack
import pytest

from rooms import Participant, Role
from signaling.codec import GroupsRequest, decode
from signaling.errors import BadFieldType
from signaling.saved_groups import (
    MAX_MEMBERS,
    MAX_SETS,
    GroupSet,
    answer,
    check_group_set,
    expand,
)
from signaling.sqlite_store import SqliteEventStore

TEACHER = Participant("t1", "Teacher", Role.TEACHER)
STUDENT = Participant("s1", "Student", Role.STUDENT)


def reply(frame: bytes) -> dict[str, object]:
    message = msgpack.unpackb(frame)
    assert isinstance(message, dict)
    return message


def save(name: str, rooms: list[str], members: dict[str, str], ref: int = 1) -> GroupsRequest:
    return GroupsRequest("breakout.groups.save", ref, name, rooms, members)


@pytest.mark.parametrize(
    ("name", "rooms", "members", "field"),
    [
        ("", ["a"], {}, "name"),
        ("   ", ["a"], {}, "name"),
        ("x" * 65, ["a"], {}, "name"),
        ("bad\x07name", ["a"], {}, "name"),
        ("g", [], {}, "rooms"),
        ("g", [f"r{i}" for i in range(51)], {}, "rooms"),
        ("g", ["a", "a"], {}, "rooms"),
        ("g", ["a", "\n"], {}, "rooms"),
        ("g", "a", {}, "rooms"),
        ("g", ["a"], {"s1": "b"}, "members"),
        ("g", ["a"], ["s1"], "members"),
        ("g", ["a"], {f"s{i}": "a" for i in range(MAX_MEMBERS + 1)}, "members"),
    ],
)
def test_a_group_set_out_of_bounds_is_refused_naming_its_field(
    name: object, rooms: object, members: object, field: str
) -> None:
    with pytest.raises(BadFieldType) as caught:
        check_group_set(name, rooms, members)
    assert caught.value.field == field


def test_display_names_with_spaces_are_room_names() -> None:
    group = check_group_set("Week 3", ["Red team", "Blue team"], {"s1": "Red team"})
    assert GroupSet.decode(group.encode()) == group


def test_expanding_a_set_drops_identities_no_longer_in_the_room() -> None:
    group = check_group_set("g", ["a", "b"], {"s1": "a", "s2": "b", "gone": "a"})
    assert expand(group, {"s1": None, "s2": None}) == (("a", "b"), {"s1": "a", "s2": "b"})


def test_the_codec_reads_groups_requests() -> None:
    frame = msgpack.packb(
        {"t": "breakout.groups.save", "ref": 3, "name": "g", "rooms": ["a"], "members": {}}
    )
    assert decode(frame) == GroupsRequest("breakout.groups.save", 3, "g", ["a"], {})
    assert decode(msgpack.packb({"t": "breakout.groups.list", "ref": 4})) == GroupsRequest(
        "breakout.groups.list", 4
    )


def test_saved_groups_survive_reopening_the_store_and_are_per_owner(tmp_path: Path) -> None:
    async def run() -> None:
        store = SqliteEventStore(tmp_path / "events.sqlite3")
        ack = reply(await answer(store, TEACHER, save("Week 3", ["Red", "Blue"], {"s1": "Red"})))
        assert ack == {"t": "ack", "ref": 1, "ids": []}
        await store.close()
        store = SqliteEventStore(tmp_path / "events.sqlite3")
        listed = reply(await answer(store, TEACHER, GroupsRequest("breakout.groups.list", 2)))
        assert listed["groups"] == [
            {"name": "Week 3", "rooms": ["Red", "Blue"], "members": {"s1": "Red"}}
        ]
        other = Participant("t2", "Other", Role.ASSISTANT)
        listed = reply(await answer(store, other, GroupsRequest("breakout.groups.list", 3)))
        assert listed["groups"] == []
        await store.close()

    asyncio.run(run())


def test_a_student_keeps_no_groups(tmp_path: Path) -> None:
    async def run() -> None:
        store = SqliteEventStore(tmp_path / "events.sqlite3")
        error = reply(await answer(store, STUDENT, save("g", ["a"], {})))
        assert (error["t"], error["code"], error["ref"]) == ("error", "not_allowed", 1)
        assert await store.groups(STUDENT.identity) == {}
        await store.close()

    asyncio.run(run())


def test_past_the_sets_bound_a_save_is_refused_and_a_replace_is_not(tmp_path: Path) -> None:
    async def run() -> None:
        store = SqliteEventStore(tmp_path / "events.sqlite3")
        for i in range(MAX_SETS):
            assert reply(await answer(store, TEACHER, save(f"g{i}", ["a"], {})))["t"] == "ack"
        error = reply(await answer(store, TEACHER, save("one more", ["a"], {})))
        assert (error["code"], error["field"]) == ("limit_reached", "name")
        assert reply(await answer(store, TEACHER, save("g0", ["b"], {})))["t"] == "ack"
        stored = await store.groups(TEACHER.identity)
        assert len(stored) == MAX_SETS and GroupSet.decode(stored["g0"]).rooms == ("b",)
        await store.close()

    asyncio.run(run())


def test_deleting_forgets_a_set_and_an_unknown_name_is_a_bad_field(tmp_path: Path) -> None:
    async def run() -> None:
        store = SqliteEventStore(tmp_path / "events.sqlite3")
        await answer(store, TEACHER, save("g", ["a"], {}))
        delete = GroupsRequest("breakout.groups.delete", 5, "g")
        assert reply(await answer(store, TEACHER, delete))["t"] == "ack"
        error = reply(await answer(store, TEACHER, delete))
        assert (error["code"], error["field"]) == ("bad_field", "name")
        assert await store.groups(TEACHER.identity) == {}
        await store.close()

    asyncio.run(run())
