"""Server-side awareness: y-protocols' clock rules, ownership per connection, removal on close."""

from __future__ import annotations

import json

from whiteboard.awareness import AwarenessTable, bind_user
from whiteboard.protocol import AwarenessEntry as E

ALICE, BOB = object(), object()


def test_newer_clocks_win_and_stale_ones_are_dropped() -> None:
    table = AwarenessTable()
    assert table.apply(ALICE, [E(1, 2, '{"x":1}')]) == [E(1, 2, '{"x":1}')]
    assert table.apply(ALICE, [E(1, 2, '{"x":9}')]) == []
    assert table.apply(ALICE, [E(1, 1, '{"x":9}')]) == []
    assert table.apply(ALICE, [E(1, 3, '{"x":3}')]) == [E(1, 3, '{"x":3}')]
    assert table.present() == [E(1, 3, '{"x":3}')]


def test_a_null_state_at_the_same_clock_removes_the_client() -> None:
    table = AwarenessTable()
    table.apply(ALICE, [E(1, 2, "{}")])
    assert table.apply(ALICE, [E(1, 2, "null")]) == [E(1, 2, "null")]
    assert table.present() == []
    assert table.apply(ALICE, [E(1, 2, "null")]) == []


def test_a_connection_cannot_touch_another_live_connections_client() -> None:
    table = AwarenessTable()
    table.apply(ALICE, [E(1, 1, "{}")])
    assert table.apply(BOB, [E(1, 9, "null"), E(2, 1, "{}")]) == [E(2, 1, "{}")]
    assert len(table) == 2


def test_closing_removes_the_connections_clients_with_the_next_clock() -> None:
    table = AwarenessTable()
    table.apply(ALICE, [E(1, 4, "{}"), E(3, 1, "{}")])
    table.apply(BOB, [E(2, 1, "{}")])
    assert table.drop(ALICE) == [E(1, 5, "null"), E(3, 2, "null")]
    assert table.present() == [E(2, 1, "{}")]
    assert table.drop(ALICE) == []
    # The client may come back (a reconnect) with a newer clock, from any connection.
    assert table.apply(BOB, [E(1, 6, "{}")]) == [E(1, 6, "{}")]


def test_a_connection_introduces_at_most_its_quota_of_client_ids() -> None:
    table = AwarenessTable(max_clients=4)
    taken = table.apply(ALICE, [E(cid, 1, "{}") for cid in range(4000)])
    assert [e.client_id for e in taken] == [0, 1, 2, 3]
    assert len(table) == 4 and table.remembered == 4
    # Its own clients still update; another connection is not limited by ALICE's quota.
    assert table.apply(ALICE, [E(2, 2, '{"x":1}')]) == [E(2, 2, '{"x":1}')]
    assert table.apply(BOB, [E(9000, 1, "{}")]) == [E(9000, 1, "{}")]


def test_removed_clients_count_against_the_quota_while_the_connection_lives() -> None:
    table = AwarenessTable(max_clients=2)
    table.apply(ALICE, [E(1, 1, "{}"), E(2, 1, "{}")])
    table.apply(ALICE, [E(1, 2, "null"), E(2, 2, "null")])
    assert len(table) == 0
    assert table.apply(ALICE, [E(3, 1, "{}")]) == []
    assert table.apply(ALICE, [E(1, 1, "{}")]) == []  # stale: the removal's clock is kept
    assert table.apply(ALICE, [E(1, 3, "{}")]) == [E(1, 3, "{}")]


def test_removals_of_clients_nobody_owns_keep_nothing() -> None:
    table = AwarenessTable()
    assert table.apply(ALICE, [E(cid, 1, "null") for cid in range(100_000)]) == []
    assert table.remembered == 0


def test_closing_forgets_every_client_the_connection_owned() -> None:
    table = AwarenessTable()
    table.apply(ALICE, [E(1, 1, "{}"), E(2, 1, "{}")])
    table.apply(ALICE, [E(2, 2, "null")])
    assert table.drop(ALICE) == [E(1, 2, "null")]
    assert table.remembered == 0 and len(table) == 0


def test_may_take_follows_ownership_and_quota() -> None:
    table = AwarenessTable(max_clients=1)
    table.apply(ALICE, [E(1, 1, "{}")])
    assert table.may_take(ALICE, 1) and not table.may_take(ALICE, 2)
    assert not table.may_take(BOB, 1) and table.may_take(BOB, 2)


def test_the_user_is_bound_to_the_connections_participant() -> None:
    state = '{"user":{"name":"Teacher","identity":"t","color":"#ff0000"},"cursor":{"x":1,"y":2}}'
    bound = json.loads(bind_user(state, "s-eve", "Eve") or "")
    assert bound == {
        "user": {"name": "Eve", "identity": "s-eve", "color": "#ff0000"},
        "cursor": {"x": 1, "y": 2},
    }
    assert json.loads(bind_user("{}", "s-eve", "Eve") or "") == {
        "user": {"identity": "s-eve", "name": "Eve"}
    }
    assert json.loads(bind_user('{"user":"t"}', "s-eve", "Eve") or "")["user"] == {
        "identity": "s-eve",
        "name": "Eve",
    }
    for not_an_object in ("1", '"x"', "[1]", "true", "[" * 100_000):
        assert bind_user(not_an_object, "s-eve", "Eve") is None


def test_apply_binds_every_taken_state_and_drops_what_cannot_be_bound() -> None:
    table = AwarenessTable()

    def bind(state: str) -> str | None:
        return bind_user(state, "s-eve", "Eve")

    taken = table.apply(ALICE, [E(1, 1, '{"user":{"identity":"t"}}'), E(2, 1, "7")], bind)
    assert taken == [E(1, 1, '{"user":{"identity":"s-eve","name":"Eve"}}')]
    assert table.present() == taken
