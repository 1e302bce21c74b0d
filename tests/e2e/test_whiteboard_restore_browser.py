"""Nothing cleared is lost for good, in real Chromium against a real ``liveclass serve``.

Clear saves a snapshot first, and the teacher who cleared can undo it: the records come back on
every page. Saved snapshots are listed on the page, can be looked at in a dialog, and restored:
the board then holds exactly the snapshot's records, for everyone.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Tab
from tests.e2e.test_whiteboard_browser import (
    BLUE,
    RED,
    WAIT_MS,
    choose,
    drag,
    expect_no_errors,
    expect_record_count,
    open_class,
    records,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def kinds(tab: Tab) -> list[str]:
    return sorted(r["type"] for r in records(tab))


def test_clear_can_be_undone_and_a_saved_snapshot_viewed_and_restored(
    open_tab: Callable[..., Tab],
) -> None:
    teacher, student = open_class(open_tab)
    both = (teacher, student)
    choose(teacher, "rect", RED, 4)
    drag(teacher, [(200, 200), (400, 350)])
    choose(student, "ellipse", BLUE, 4)
    drag(student, [(800, 300), (1000, 500)])
    for tab in both:
        expect_record_count(tab, 2)
    expect(teacher.by("wb-undo-clear")).to_be_hidden()

    # Clear (two clicks): the board empties everywhere; a snapshot of it was saved first.
    teacher.by("wb-clear").click()
    teacher.by("wb-clear").click()
    for tab in both:
        expect_record_count(tab, 0)
    saved = teacher.by("wb-snapshot-item")
    expect(saved).to_have_count(1, timeout=WAIT_MS)

    # Undo clear puts both records back, on both pages.
    undo_clear = teacher.by("wb-undo-clear")
    expect(undo_clear).to_be_visible(timeout=WAIT_MS)
    expect(student.by("wb-undo-clear")).to_be_hidden()
    undo_clear.click()
    for tab in both:
        expect_record_count(tab, 2)
        assert kinds(tab) == ["ellipse", "rect"], kinds(tab)
    expect(undo_clear).to_be_hidden()

    # A third record, then the snapshot from before the clear is looked at and restored.
    choose(student, "line", BLUE, 4)
    drag(student, [(300, 700), (900, 750)])
    for tab in both:
        expect_record_count(tab, 3)
    saved.get_by_test_id("wb-snapshot-view").click()
    dialog = teacher.by("wb-snapshot-dialog")
    expect(dialog).to_be_visible(timeout=WAIT_MS)
    expect(teacher.by("wb-snapshot-preview")).to_have_attribute("data-records", "2")
    teacher.by("wb-snapshot-restore").click()
    expect(dialog).to_be_hidden()
    for tab in both:
        expect_record_count(tab, 2)
        assert kinds(tab) == ["ellipse", "rect"], kinds(tab)

    # Looking without restoring changes nothing.
    saved.get_by_test_id("wb-snapshot-view").click()
    expect(dialog).to_be_visible(timeout=WAIT_MS)
    teacher.by("wb-snapshot-close").click()
    expect(dialog).to_be_hidden()
    expect_record_count(teacher, 2)
    expect_no_errors(*both)
