"""Server-side awareness: y-protocols' clock rules, ownership per connection, removal on close."""

from __future__ import annotations

from whiteboard.awareness import AwarenessTable
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
