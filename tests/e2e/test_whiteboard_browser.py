"""The whiteboard panel in real Chromium against a real ``liveclass serve``.

A teacher and a student, each in their own browser context, draw on the class board (``main``) with
real mouse events, and each page must hold and paint the other's records. The teacher locks the
board: the student's page refuses to draw, and a write forced past the page is refused by the server
and leaves no trace on either page. Undo takes back only one's own stroke, on both pages. A second
test runs the staff controls: snapshot (downloaded and decoded), PNG export, clear. Screenshots are
kept in ``artifacts/e2e/``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Tab

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

# Every wait is bounded: Playwright's expect() and wait_for_function() poll until this passes.
WAIT_MS = 10_000

# The board's logical size (docs/whiteboard.md); the page scales it to its canvas.
BOARD_W, BOARD_H = 1600, 900
RED = "#c0392b"
BLUE = "#2f5bd3"
PAPER = (255, 255, 255)

# window.liveclass.whiteboard.list(): the valid records in drawing order, as plain objects.
RECORDS_JS = "() => window.liveclass.whiteboard.list()"
PIXEL_JS = """([x, y]) => {
  const canvas = document.querySelector('[data-testid=whiteboard-canvas]');
  const k = canvas.width / 1600;
  const d = canvas.getContext('2d').getImageData(Math.round(x * k), Math.round(y * k), 1, 1).data;
  return [d[0], d[1], d[2]];
}"""


def rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def expect_board_live(tab: Tab) -> None:
    expect(tab.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(tab.by("wb-status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(tab.by("wb-status")).to_have_text("Live", timeout=WAIT_MS)


def expect_record_count(tab: Tab, count: int) -> None:
    expect(tab.by("whiteboard-canvas")).to_have_attribute(
        "data-records", str(count), timeout=WAIT_MS
    )


def records(tab: Tab) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = tab.page.evaluate(RECORDS_JS)
    return result


def wait_for_records(tab: Tab, predicate_js: str) -> None:
    """Wait until ``predicate_js`` (a function of the record list) holds on this page."""
    tab.page.wait_for_function(
        f"() => ({predicate_js})(window.liveclass.whiteboard.list())", timeout=WAIT_MS
    )


def pixel(tab: Tab, x: float, y: float) -> tuple[int, int, int]:
    """The colour the board canvas shows at board point (x, y)."""
    r, g, b = tab.page.evaluate(PIXEL_JS, [x, y])
    return r, g, b


def near(actual: tuple[int, int, int], expected: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def to_page(tab: Tab, x: float, y: float) -> tuple[float, float]:
    """Board units to page pixels, through the stage's box on screen."""
    box = tab.by("wb-stage").bounding_box()
    assert box is not None, f"{tab.label}: the whiteboard is not on screen"
    return box["x"] + x / BOARD_W * box["width"], box["y"] + y / BOARD_H * box["height"]


def drag(tab: Tab, points: list[tuple[float, float]], steps: int = 4) -> None:
    """Press the left button at the first point, move through the others, release at the last."""
    mouse = tab.page.mouse
    mouse.move(*to_page(tab, *points[0]))
    mouse.down()
    for point in points[1:]:
        mouse.move(*to_page(tab, *point), steps=steps)
    mouse.up()


def choose(tab: Tab, tool: str, color: str | None = None, width: int | None = None) -> None:
    tab.by(f"wb-tool-{tool}").click()
    expect(tab.by(f"wb-tool-{tool}")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
    if color is not None:
        tab.page.locator(f'[data-testid=wb-color][data-color="{color}"]').click()
    if width is not None:
        tab.page.locator(f'[data-testid=wb-width][data-width="{width}"]').click()


def expect_no_errors(*tabs: Tab) -> None:
    for tab in tabs:
        expect(tab.page.locator("[data-testid=toast].toast-error")).to_have_count(
            0, timeout=WAIT_MS
        )
        assert tab.errors == [], f"{tab.label} page logged errors: {tab.errors}"


def open_class(open_tab: Callable[..., Tab]) -> tuple[Tab, Tab]:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    student = open_tab("student", "s-ada", name="Ada")
    for tab in (teacher, student):
        expect_board_live(tab)
        expect_record_count(tab, 0)
    return teacher, student


def test_teacher_and_student_draw_lock_and_undo_their_own_strokes(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    teacher, student = open_class(open_tab)
    both = (teacher, student)
    assert near(pixel(student, 400, 200), PAPER, tolerance=0), "the empty board is not white"

    # The teacher draws a thick red horizontal stroke; both pages hold it and paint it red.
    choose(teacher, "pen", RED, 8)
    drag(teacher, [(200, 200), (400, 200), (600, 200)])
    for tab in both:
        expect_record_count(tab, 1)
    for tab in both:
        (stroke,) = records(tab)
        assert stroke["type"] == "stroke" and stroke["author"] == "t-rivera", stroke
        assert stroke["color"] == RED and stroke["width"] == 8, stroke
        assert abs(stroke["x"] - 200) <= 2 and abs(stroke["y"] - 200) <= 2, stroke
        last_dx, last_dy = stroke["points"][-1]
        assert abs(stroke["x"] + last_dx - 600) <= 2 and abs(last_dy) <= 2, stroke
        assert near(pixel(tab, 400, 200), rgb(RED)), f"{tab.label}: {pixel(tab, 400, 200)}"

    # The student draws a blue rectangle; both pages hold and paint it. The teacher sees Ada's
    # cursor, named, from awareness.
    choose(student, "rect", BLUE, 8)
    drag(student, [(600, 400), (750, 500), (900, 600)])
    student.page.mouse.move(*to_page(student, 1000, 300), steps=3)
    for tab in both:
        expect_record_count(tab, 2)
        wait_for_records(tab, "rs => rs.some(r => r.type === 'rect' && r.author === 's-ada')")
    rect = next(r for r in records(teacher) if r["type"] == "rect")
    assert [round(rect[k]) for k in ("x", "y", "w", "h")] == [600, 400, 300, 200], rect
    assert rect["color"] == BLUE, rect
    for tab in both:
        assert near(pixel(tab, 600, 500), rgb(BLUE)), f"{tab.label}: {pixel(tab, 600, 500)}"
        assert near(pixel(tab, 750, 500), PAPER, tolerance=0), "a rectangle is an outline"
    ada_cursor = teacher.page.locator('[data-testid=wb-cursor][data-identity="s-ada"]')
    expect(ada_cursor).to_have_count(1, timeout=WAIT_MS)
    expect(ada_cursor.get_by_test_id("wb-cursor-name")).to_have_text("Ada", timeout=WAIT_MS)

    # The teacher locks the board: both pages know; the student's tools are off.
    expect(student.by("wb-lock")).to_be_hidden(timeout=WAIT_MS)  # staff only
    teacher.by("wb-lock").click()
    for tab in both:
        expect(tab.by("wb-status")).to_have_attribute("data-locked", "true", timeout=WAIT_MS)
        expect(tab.by("wb-locked")).to_be_visible(timeout=WAIT_MS)
    expect(teacher.by("wb-lock")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
    expect(student.by("wb-locked")).to_have_text("Locked: only staff can draw", timeout=WAIT_MS)
    expect(student.by("wb-stage")).to_have_attribute("data-readonly", "true", timeout=WAIT_MS)
    expect(student.by("wb-tool-pen")).to_be_disabled(timeout=WAIT_MS)
    expect(student.by("wb-undo")).to_be_disabled(timeout=WAIT_MS)

    # The student tries to draw anyway: nothing on the student's page...
    drag(student, [(300, 700), (500, 750), (700, 700)])
    assert len(records(student)) == 2
    # ...and, once the teacher's next stroke (drawn after the attempt) has reached the student,
    # nothing on either page.
    choose(teacher, "line", RED, 4)
    drag(teacher, [(100, 800), (1500, 800)])
    for tab in both:
        expect_record_count(tab, 3)
        wait_for_records(tab, "rs => rs.some(r => r.type === 'line')")
        assert [r["author"] for r in records(tab)].count("s-ada") == 1, records(tab)

    # A write forced past the page (as a modified client would) is refused by the server: the
    # page throws its document away and starts over, so the refused record vanishes there too.
    old_client = student.page.evaluate("window.liveclass.whiteboard.doc.clientID")
    student.page.evaluate(
        """() => {
          const wb = window.liveclass.whiteboard;
          wb.doc.transact(() => wb.kv.set('forced', {id: 'forced', type: 'rect', x: 10, y: 10,
            w: 50, h: 50, color: '#000000', width: 2, author: 's-ada', z: 99}));
        }"""
    )
    expect(student.by("wb-status")).to_have_attribute("data-resets", "1", timeout=WAIT_MS)
    expect_board_live(student)
    new_client = student.page.evaluate("window.liveclass.whiteboard.doc.clientID")
    assert new_client != old_client, "the page kept the document that holds the refused write"
    expect(student.page.locator("[data-testid=toast][data-code=wb-refused]")).to_have_count(
        1, timeout=WAIT_MS
    )
    for tab in both:
        expect_record_count(tab, 3)
    assert "forced" not in {r["id"] for r in records(student)}
    # The teacher sees the student's new connection (its cursor, from the fresh document's
    # client id), which the server relays after refusing the write: the write never reached them.
    student.page.mouse.move(*to_page(student, 1100, 350), steps=3)
    expect(
        teacher.page.locator(f'[data-testid=wb-cursor][data-client="{new_client}"]')
    ).to_have_count(1, timeout=WAIT_MS)
    assert "forced" not in {r["id"] for r in records(teacher)}

    # Unlocked, the student draws again, and everyone sees it.
    teacher.by("wb-lock").click()
    for tab in both:
        expect(tab.by("wb-status")).to_have_attribute("data-locked", "false", timeout=WAIT_MS)
        expect(tab.by("wb-locked")).to_be_hidden(timeout=WAIT_MS)
    expect(student.by("wb-tool-pen")).to_be_enabled(timeout=WAIT_MS)
    choose(student, "pen", BLUE, 4)
    drag(student, [(300, 650), (500, 700), (700, 650)])
    for tab in both:
        expect_record_count(tab, 4)
    ada_strokes = [r["id"] for r in records(teacher) if r["author"] == "s-ada"]
    assert len(ada_strokes) == 2, records(teacher)

    # Undo takes back only one's own last change, on both pages: the student's new stroke...
    student.by("wb-undo").click()
    for tab in both:
        expect_record_count(tab, 3)
        wait_for_records(tab, "rs => !rs.some(r => r.type === 'stroke' && r.author === 's-ada')")
        kinds = sorted((r["type"], r["author"]) for r in records(tab))
        assert kinds == [("line", "t-rivera"), ("rect", "s-ada"), ("stroke", "t-rivera")], kinds
    # ...then the teacher's line; the student's rectangle and the teacher's stroke stay.
    teacher.by("wb-undo").click()
    for tab in both:
        expect_record_count(tab, 2)
        wait_for_records(tab, "rs => !rs.some(r => r.type === 'line')")
        kinds = sorted((r["type"], r["author"]) for r in records(tab))
        assert kinds == [("rect", "s-ada"), ("stroke", "t-rivera")], kinds
    # Redo brings the student's stroke back for everyone.
    student.by("wb-redo").click()
    for tab in both:
        expect_record_count(tab, 3)
        wait_for_records(tab, "rs => rs.some(r => r.type === 'stroke' && r.author === 's-ada')")

    teacher.screenshot(e2e_artifacts, "whiteboard-teacher")
    student.screenshot(e2e_artifacts, "whiteboard-student")
    expect_no_errors(*both)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])  # IHDR follows the signature
    return width, height


def test_staff_save_a_snapshot_export_a_png_and_clear_the_board(
    open_tab: Callable[..., Tab], e2e_artifacts: Path
) -> None:
    teacher, student = open_class(open_tab)
    both = (teacher, student)
    expect(teacher.by("wb-snapshot")).to_be_visible(timeout=WAIT_MS)
    expect(student.by("wb-snapshot")).to_be_hidden(timeout=WAIT_MS)
    expect(student.by("wb-clear")).to_be_hidden(timeout=WAIT_MS)

    # A text record and an ellipse, one from each.
    choose(teacher, "text", RED, 4)
    teacher.page.mouse.click(*to_page(teacher, 120, 100))
    expect(teacher.by("wb-text-input")).to_be_focused(timeout=WAIT_MS)
    teacher.page.keyboard.type("Photosynthesis")
    teacher.page.keyboard.press("Enter")
    choose(student, "ellipse", BLUE, 4)
    drag(student, [(800, 300), (1000, 500)])
    for tab in both:
        expect_record_count(tab, 2)
        wait_for_records(
            tab, "rs => rs.some(r => r.type === 'text' && r.text === 'Photosynthesis')"
        )
        wait_for_records(tab, "rs => rs.some(r => r.type === 'ellipse')")
    (text,) = [r for r in records(student) if r["type"] == "text"]
    assert (round(text["x"]), round(text["y"]), text["size"]) == (120, 100, 24), text

    # Snapshot: staff download the board's state as one Yjs update, through a short-lived link
    # asked for at the click (the access token is in no URL); decoded in a fresh Y.Doc it holds
    # both records.
    teacher.by("wb-snapshot").click()
    link = teacher.by("wb-snapshot-link")
    expect(link).to_have_count(1, timeout=WAIT_MS)
    with teacher.page.expect_download(timeout=WAIT_MS) as snapshot_info:
        link.click()
    snapshot = snapshot_info.value
    assert snapshot.suggested_filename.endswith(".yjs"), snapshot.suggested_filename
    link_token = parse_qs(urlsplit(snapshot.url).query)["token"][0]
    assert jwt.decode(link_token, options={"verify_signature": False})["aud"] == (
        "liveclass-snapshot"
    )
    body = Path(snapshot.path()).read_bytes()
    decoded = teacher.page.evaluate(
        """async (bytes) => {
          const Y = await import('yjs');
          const doc = new Y.Doc();
          Y.applyUpdate(doc, new Uint8Array(bytes));
          return doc.getArray('records').toArray().map(e => e.val.type).sort();
        }""",
        list(body),
    )
    assert decoded == ["ellipse", "text"], decoded

    # Export PNG: a 1600 x 900 picture of the board.
    with teacher.page.expect_download(timeout=WAIT_MS) as download_info:
        teacher.by("wb-export").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".png"), download.suggested_filename
    saved = e2e_artifacts / "whiteboard-export.png"
    download.save_as(saved)
    assert png_size(saved.read_bytes()) == (BOARD_W, BOARD_H)

    for tab in both:
        assert near(pixel(tab, 900, 300), rgb(BLUE)), f"{tab.label}: {pixel(tab, 900, 300)}"

    # Clear asks for a second click, then empties the board everywhere; undo brings nothing back.
    teacher.by("wb-clear").click()
    expect(teacher.by("wb-clear")).to_have_attribute("data-armed", "true", timeout=WAIT_MS)
    expect_record_count(teacher, 2)
    teacher.by("wb-clear").click()
    for tab in both:
        expect_record_count(tab, 0)
        expect(tab.page.locator("[data-testid=toast][data-code=info]").last).to_contain_text(
            "cleared the whiteboard", timeout=WAIT_MS
        )
    for tab in both:
        expect(tab.by("wb-undo")).to_be_disabled(timeout=WAIT_MS)
        assert near(pixel(tab, 900, 300), PAPER, tolerance=0)

    teacher.screenshot(e2e_artifacts, "whiteboard-teacher-cleared")
    expect_no_errors(*both)
