"""signaling.edge.ordering: which deliveries a hub folds, and when it reads a gap."""

from rooms import HandRaisedEvent, Record
from signaling.edge.ordering import LogFollower, Step, continuation


def records(*ids: int) -> list[Record]:
    return [Record(i, 1_700_000_000_000 + i, HandRaisedEvent(f"s{i}", f"Student {i}")) for i in ids]


def loaded() -> LogFollower:
    follower = LogFollower()
    follower.finish_loading()
    return follower


def test_the_next_records_in_order_are_folded() -> None:
    offer = loaded().offer(4, records(5, 6, 7))
    assert offer.step is Step.FOLD
    assert [r.id for r in offer.records] == [5, 6, 7]


def test_duplicates_are_dropped_and_the_rest_folded() -> None:
    follower = loaded()
    assert follower.offer(7, records(5, 6, 7)).step is Step.IGNORE
    offer = follower.offer(6, records(5, 6, 7, 8))
    assert offer.step is Step.FOLD
    assert [r.id for r in offer.records] == [7, 8]


def test_a_gap_before_the_records_is_read_from_the_store() -> None:
    assert loaded().offer(4, records(6, 7)).step is Step.READ_GAP


def test_a_gap_inside_a_delivery_is_read_from_the_store() -> None:
    assert loaded().offer(4, records(5, 7)).step is Step.READ_GAP


def test_out_of_order_deliveries_fold_once_each() -> None:
    """A later wake-up arrives first: it is a gap; the earlier one then folds, and the later one
    again is a duplicate of what the gap fill folded."""
    follower = loaded()
    last_id = 4
    assert follower.offer(last_id, records(7, 8)).step is Step.READ_GAP
    first = follower.offer(last_id, records(5, 6))
    assert first.step is Step.FOLD
    last_id = first.records[-1].id
    assert [r.id for r in follower.offer(last_id, records(7, 8)).records] == [7, 8]
    assert follower.offer(8, records(7, 8)).step is Step.IGNORE


def test_deliveries_during_a_load_wait_for_its_end() -> None:
    follower = LogFollower()
    assert follower.offer(0, records(1)).step is Step.AFTER_LOAD
    assert follower.finish_loading() is True  # read on from where the load ended
    assert follower.finish_loading() is False


def test_a_lost_bus_message_during_a_load_waits_too() -> None:
    follower = LogFollower()
    assert follower.missed() is Step.AFTER_LOAD
    assert follower.finish_loading() is True
    assert follower.missed() is Step.READ_GAP


def test_a_quiet_load_needs_no_second_read() -> None:
    follower = LogFollower()
    assert follower.finish_loading() is False


def test_a_reload_drops_what_arrived_before_it_ended() -> None:
    follower = loaded()
    follower.start_loading()
    assert follower.offer(3, records(4)).step is Step.AFTER_LOAD
    follower.finish_loading()
    assert follower.offer(3, records(4)).step is Step.FOLD


def test_a_store_read_continues_the_log_or_says_it_was_trimmed() -> None:
    assert [r.id for r in continuation(4, records(3, 4, 5, 6)) or ()] == [5, 6]
    assert continuation(4, []) == ()
    assert continuation(4, records(3, 4)) == ()
    # The log now starts past id 5: trimmed behind a newer snapshot; reload from it.
    assert continuation(4, records(9, 10)) is None
