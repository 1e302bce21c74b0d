"""When a board compacts its log (whiteboard.compaction), without I/O: after enough updates or
bytes, and only once the log since the last compaction is as large as what that one wrote."""

from __future__ import annotations

from whiteboard.compaction import CompactionSchedule


def schedule(updates: int = 10, nbytes: int = 1000) -> CompactionSchedule:
    return CompactionSchedule(compact_updates=updates, compact_bytes=nbytes)


def test_a_new_board_compacts_after_compact_updates_updates() -> None:
    growth = schedule(updates=3)
    growth.loaded(0, [])
    for _ in range(2):
        growth.written(10)
        growth.committed(1, 10)
    assert not growth.due()
    growth.written(10)
    growth.committed(1, 10)
    assert growth.due()


def test_a_board_compacts_after_compact_bytes_of_updates_however_few() -> None:
    growth = schedule(updates=100, nbytes=500)
    growth.loaded(0, [])
    growth.written(600)
    growth.committed(1, 600)
    assert growth.due()


def test_a_big_board_waits_until_its_log_is_as_large_as_its_base() -> None:
    """Amortization: a compaction that wrote 10 kB waits for 10 kB of updates, even past
    ``compact_updates``."""
    growth = schedule(updates=3, nbytes=100_000)
    growth.loaded(10_000, [10_000])  # the base, compacted before
    assert (growth.updates_since, growth.bytes_since) == (0, 0)
    for _ in range(9):
        growth.took(1000)
    assert growth.updates_since == 9
    assert not growth.due()  # 9 kB of log against a 10 kB base
    growth.took(1000)
    assert growth.due()


def test_a_loaded_board_counts_everything_after_its_first_update() -> None:
    growth = schedule()
    growth.loaded(1000, [400, 300, 300])
    assert (growth.size, growth.updates_since, growth.bytes_since) == (1000, 2, 600)


def test_a_compaction_restarts_the_count_from_what_it_wrote() -> None:
    growth = schedule(updates=2)
    growth.loaded(0, [])
    growth.took(50)
    growth.took(50)
    assert growth.due()
    growth.compacted(80)
    assert (growth.size, growth.updates_since, growth.bytes_since) == (80, 0, 0)
    assert not growth.due()


def test_a_clear_counts_as_an_update_but_not_toward_the_bytes() -> None:
    growth = schedule()
    growth.loaded(0, [])
    growth.cleared(40)
    assert (growth.size, growth.updates_since, growth.bytes_since) == (40, 1, 0)


def test_the_size_bounds_writes_and_a_reload_never_shrinks_it() -> None:
    growth = schedule()
    growth.loaded(900, [900])
    assert growth.fits(100, 1000)
    assert not growth.fits(101, 1000)
    growth.written(50)  # applied, not yet committed: counts toward the bound at once
    assert not growth.fits(51, 1000)
    growth.reloaded(800)
    assert growth.size == 950
    growth.reloaded(1200)
    assert growth.size == 1200
