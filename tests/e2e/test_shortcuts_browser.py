"""Keyboard shortcuts on the classroom page, in real Chromium against a real ``liveclass serve``.

Alt+Shift+H raises and lowers a student's hand (the teacher sees it arrive and go), Alt+Shift+M and
Alt+Shift+C press the microphone and camera buttons, and the page lists the shortcuts.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Tab

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

WAIT_MS = 10_000


def test_alt_shift_shortcuts_raise_the_hand_and_press_microphone_and_camera(
    open_tab: Callable[..., Tab],
) -> None:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("student A", "s-ada", name="Ada")
    for tab in (teacher, ada):
        expect(tab.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(ada.by("shortcuts")).to_contain_text("Alt+Shift+H", timeout=WAIT_MS)
    expect(ada.by("hand-raise")).to_have_attribute("aria-keyshortcuts", "Alt+Shift+H")

    ada.page.keyboard.press("Alt+Shift+KeyH")
    expect(teacher.by("hand-queue-item")).to_have_count(1, timeout=WAIT_MS)
    expect(ada.by("hand-lower")).to_be_visible(timeout=WAIT_MS)
    ada.page.keyboard.press("Alt+Shift+KeyH")
    expect(teacher.by("hand-queue-item")).to_have_count(0, timeout=WAIT_MS)

    # Typing in the chat box never triggers a shortcut.
    ada.by("chat-input").fill("h")
    ada.by("chat-input").press("Shift+KeyH")
    expect(teacher.by("hand-queue-item")).to_have_count(0)

    # The media shortcuts press the page's own buttons (what they then do is the media tests').
    ada.page.evaluate(
        """() => {
          window.pressed = [];
          for (const id of ["media-microphone", "media-camera"]) {
            const b = document.querySelector(`[data-testid="${id}"]`);
            const spy = (ev) => { window.pressed.push(id); ev.stopImmediatePropagation(); };
            b.addEventListener("click", spy, { capture: true });
          }
        }"""
    )
    ada.page.keyboard.press("Alt+Shift+KeyM")
    ada.page.keyboard.press("Alt+Shift+KeyC")
    assert ada.page.evaluate("window.pressed") == ["media-microphone", "media-camera"]
