"""Small text on the classroom page (badges, times, muted notes) reads at contrast 4.5:1 or more.

WCAG 2.x AA asks 4.5:1 for normal-size text; badges and message times are the smallest text on
the page, on tinted backgrounds. The contrast is computed in Chromium from each visible element's
computed colour and the first opaque background behind it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Tab

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

WAIT_MS = 10_000
MIN_CONTRAST = 4.5
SMALL_TEXT = ".badge, time, .muted-text, .chat-time, .media-quality, h3"

CONTRASTS_JS = """(selector) => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (node) => {
    for (let n = node; n; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c.length === 3 || c[3] === 1) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  return [...document.querySelectorAll(selector)]
    .filter((n) => n.getClientRects().length && n.textContent.trim())
    .map((n) => {
      const a = lum(rgb(getComputedStyle(n).color)), b = lum(background(n));
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      return { text: n.textContent.trim().slice(0, 30), cls: n.className, ratio };
    });
}"""


def test_badges_and_times_read_at_4_5_to_1(open_tab: Callable[..., Tab]) -> None:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("student A", "s-ada", name="Ada")
    for tab in (teacher, ada):
        expect(tab.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    teacher.show_panel("chat")
    teacher.by("chat-input").fill("Welcome, everyone")
    teacher.by("chat-input").press("Enter")
    expect(ada.by("chat-message")).to_have_count(1, timeout=WAIT_MS)

    for tab in (teacher, ada):
        measured = tab.page.evaluate(CONTRASTS_JS, SMALL_TEXT)
        assert any(m["cls"] == "chat-time" for m in measured), measured  # the time is measured
        assert any("badge" in m["cls"] for m in measured), measured  # and a badge
        low = [m for m in measured if m["ratio"] < MIN_CONTRAST]
        assert low == [], f"{tab.label}: text below {MIN_CONTRAST}:1: {low}"
