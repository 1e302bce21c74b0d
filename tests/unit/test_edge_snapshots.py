"""signaling.edge.snapshots: when a hub snapshots its room."""

from signaling.edge.snapshots import snapshot_due


def test_the_append_that_crosses_a_multiple_saves() -> None:
    assert snapshot_due(100, 95, 101, 101, stored=0) is True
    assert snapshot_due(100, 100, 100, 100, stored=0) is True
    assert snapshot_due(100, 101, 150, 150, stored=100) is False


def test_a_state_far_past_its_snapshot_saves_even_without_crossing() -> None:
    # A node that loaded a long log (no records: a load) or never crossed a multiple itself.
    assert snapshot_due(100, 1, 0, 250, stored=100) is True
    assert snapshot_due(100, 1, 0, 199, stored=100) is False


def test_never_when_disabled() -> None:
    assert snapshot_due(0, 1, 10_000, 10_000, stored=0) is False
