"""A board's sequence and gap tracking without I/O (whiteboard.sequence): what a board takes from
the feed's announcements and the store's reads, and when it reads the store."""

from __future__ import annotations

from whiteboard.sequence import NOTHING, Actions, BoardSequence


def u(seq: int) -> bytes:
    """A stand-in for the update numbered ``seq`` (the sequence never looks inside one)."""
    return f"update {seq}".encode()


def updates(first: int, last: int) -> list[bytes]:
    return [u(seq) for seq in range(first, last + 1)]


def taken(first: int, last: int) -> tuple[tuple[int, bytes], ...]:
    return tuple((seq, u(seq)) for seq in range(first, last + 1))


def loaded(last_seq: int = 0) -> BoardSequence:
    sequence = BoardSequence()
    assert sequence.loaded(last_seq) == NOTHING
    return sequence


# -- ordering ----------------------------------------------------------------------------------


def test_announcements_in_order_are_taken_in_order_and_advance_the_position() -> None:
    sequence = loaded(3)
    assert sequence.announced(4, updates(4, 5)) == Actions(taken(4, 5))
    assert sequence.announced(6, [u(6)]) == Actions(taken(6, 6))
    assert (sequence.last_seq, sequence.ahead) == (6, frozenset())


def test_this_nodes_own_appends_advance_the_position_and_their_announcement_is_dropped() -> None:
    sequence = loaded()
    sequence.appended(1, 3)
    assert sequence.last_seq == 3
    assert sequence.announced(1, updates(1, 3)) == NOTHING


# -- duplicates --------------------------------------------------------------------------------


def test_a_repeated_announcement_is_dropped() -> None:
    sequence = loaded()
    assert sequence.announced(1, updates(1, 2)).take == taken(1, 2)
    assert sequence.announced(1, updates(1, 2)) == NOTHING
    assert sequence.announced(2, [u(2)]) == NOTHING


def test_an_announcement_overlapping_what_is_held_yields_only_the_new_updates() -> None:
    sequence = loaded(2)
    assert sequence.announced(1, updates(1, 4)) == Actions(taken(3, 4))
    assert sequence.last_seq == 4


def test_an_update_held_above_a_gap_is_not_taken_twice() -> None:
    sequence = loaded()
    sequence.announced(3, [u(3)])
    assert sequence.announced(3, [u(3)]).take == ()
    assert sequence.filled([(1, u(1)), (2, u(2)), (3, u(3))]).take == taken(1, 2)
    assert sequence.last_seq == 3


# -- gaps and out-of-order deliveries ----------------------------------------------------------


def test_an_update_past_a_gap_is_taken_at_once_and_arms_the_gap_timer_once() -> None:
    sequence = loaded()
    assert sequence.announced(3, [u(3)]) == Actions(taken(3, 3), arm_gap_timer=True)
    assert (sequence.last_seq, sequence.ahead) == (0, frozenset({3}))
    # The timer is armed already: a second update past the gap does not arm another.
    assert sequence.announced(5, [u(5)]) == Actions(taken(5, 5))


def test_an_out_of_order_delivery_closes_the_gap_before_the_timer_reads_the_store() -> None:
    sequence = loaded()
    assert sequence.announced(2, [u(2)]).arm_gap_timer
    assert sequence.announced(1, [u(1)]) == Actions(taken(1, 1))
    assert (sequence.last_seq, sequence.ahead) == (2, frozenset())
    assert sequence.gap_check_due() == NOTHING  # the gap closed: no read
    assert not sequence.gap_timer_armed


def test_a_gap_still_open_when_the_timer_fires_starts_one_read_of_the_store() -> None:
    sequence = loaded(1)
    sequence.announced(4, [u(4)])
    assert sequence.gap_check_due() == Actions(fill=True)
    assert sequence.filling
    assert sequence.resubscribed() == NOTHING  # one read at a time
    assert sequence.filled([(2, u(2)), (3, u(3)), (4, u(4))]) == Actions(taken(2, 3))
    sequence.fill_ended()
    assert (sequence.last_seq, sequence.ahead, sequence.filling) == (4, frozenset(), False)


def test_a_gap_reopened_after_the_timer_fired_arms_it_again() -> None:
    sequence = loaded()
    sequence.announced(2, [u(2)])
    sequence.announced(1, [u(1)])
    sequence.gap_check_due()
    assert sequence.announced(4, [u(4)]).arm_gap_timer


def test_a_failed_read_is_retried_after_the_gap_timer() -> None:
    sequence = loaded()
    sequence.announced(2, [u(2)])
    assert sequence.gap_check_due().fill
    assert sequence.fill_failed() == Actions(arm_gap_timer=True)
    sequence.fill_ended()
    assert sequence.gap_check_due() == Actions(fill=True)


def test_a_failed_read_while_the_timer_is_armed_does_not_arm_another() -> None:
    sequence = loaded()
    assert sequence.resubscribed() == Actions(fill=True)
    sequence.announced(3, [u(3)])  # arms the timer meanwhile
    assert sequence.fill_failed() == NOTHING
    assert sequence.gap_timer_armed


def test_a_lost_subscription_reads_the_store_even_without_a_known_gap() -> None:
    sequence = loaded(5)
    assert sequence.resubscribed() == Actions(fill=True)
    assert sequence.filled([(6, u(6)), (7, u(7))]) == Actions(taken(6, 7))
    sequence.fill_ended()
    assert sequence.last_seq == 7


def test_a_read_finding_nothing_new_takes_nothing() -> None:
    sequence = loaded(5)
    sequence.resubscribed()
    assert sequence.filled([]) == NOTHING
    assert sequence.filled([(4, u(4)), (5, u(5))]) == NOTHING


# -- deliveries during a load ------------------------------------------------------------------


def test_announcements_heard_while_loading_wait_for_the_load_and_skip_what_it_held() -> None:
    sequence = BoardSequence()
    assert sequence.loading
    assert sequence.announced(4, updates(4, 5)) == NOTHING
    assert sequence.announced(6, [u(6)]) == NOTHING
    assert sequence.announced(9, [u(9)]) == NOTHING
    # The load held everything through 5: 4 and 5 are repeats; 9 is past a gap.
    assert sequence.loaded(5) == Actions(taken(6, 6) + taken(9, 9), arm_gap_timer=True)
    assert not sequence.loading
    assert (sequence.last_seq, sequence.ahead) == (6, frozenset({9}))


def test_no_read_of_the_store_starts_while_loading() -> None:
    sequence = BoardSequence()
    assert sequence.resubscribed() == NOTHING
    assert sequence.gap_check_due() == NOTHING
    sequence.loaded(0)
    assert sequence.resubscribed() == Actions(fill=True)


# -- a log trimmed past what the board holds ---------------------------------------------------


def test_a_log_compacted_past_the_position_asks_for_a_reload_through_its_last_seq() -> None:
    sequence = loaded(2)
    sequence.announced(9, [u(9)])
    sequence.gap_check_due()
    assert sequence.filled(None) == Actions(reload=True)
    sequence.reloaded(10)
    sequence.fill_ended()
    assert (sequence.last_seq, sequence.ahead) == (10, frozenset())
    assert sequence.announced(10, [u(10)]) == NOTHING
    assert sequence.announced(11, [u(11)]) == Actions(taken(11, 11))


def test_a_reload_keeps_updates_held_past_the_stored_log() -> None:
    sequence = loaded(2)
    sequence.announced(8, [u(8)])  # appended after the store was read
    sequence.reloaded(6)
    assert (sequence.last_seq, sequence.ahead) == (6, frozenset({8}))


def test_a_reload_from_a_store_behind_the_position_changes_nothing() -> None:
    sequence = loaded(7)
    sequence.reloaded(5)
    assert sequence.last_seq == 7


# -- failure -----------------------------------------------------------------------------------


def test_a_failed_board_takes_nothing_and_reads_nothing() -> None:
    sequence = loaded(1)
    sequence.fail()
    assert sequence.announced(2, [u(2)]) == NOTHING
    assert sequence.resubscribed() == NOTHING
    assert sequence.last_seq == 1
