"""The per-identity connection cap: the newest wins, and the table holds only live connections."""

from __future__ import annotations

from signaling.connection_cap import ConnectionCap


def test_past_the_limit_the_oldest_connections_of_that_key_are_replaced() -> None:
    cap = ConnectionCap[str](2)
    assert cap.hold(("r", "ada"), "a1") == []
    assert cap.hold(("r", "ada"), "a2") == []
    assert cap.hold(("r", "bo"), "b1") == []
    assert cap.hold(("r", "ada"), "a3") == ["a1"]
    assert cap.hold(("r", "ada"), "a4") == ["a2"]
    assert cap.hold(("r", "bo"), "b2") == []


def test_a_key_leaves_the_table_with_its_last_connection() -> None:
    cap = ConnectionCap[str](8)
    cap.hold("k", "c1")
    cap.hold("k", "c2")
    cap.release("k", "c1")
    assert len(cap) == 1
    cap.release("k", "c2")
    cap.release("k", "c2")  # closing twice, or a replaced one closing, changes nothing
    cap.release("gone", "c9")
    assert len(cap) == 0


def test_a_limit_below_one_counts_as_one() -> None:
    cap = ConnectionCap[int](0)
    assert cap.hold("k", 1) == []
    assert cap.hold("k", 2) == [1]
