"""Every text on the teacher's and the student's classroom page reads at WCAG AA contrast, at a
laptop's 1280x800 and a phone's 390x844, as axe-core's ``color-contrast`` rule measures it.

axe-core is vendored and pinned (tests/e2e/vendor/axe-core/, written by scripts/vendor-js.sh with
its sums) and runs inside Chromium: no Node.js at run time. It is evaluated through the DevTools
protocol, which the page's Content-Security-Policy does not govern, so the page runs under its real
policy. The room holds a chat message, a raised hand, a question and an open poll, so that
badges, times and the staff's hand queue are on screen; where the side panels are tabs, each
panel is checked shown.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Tab

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

WAIT_MS = 10_000
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SIZES = {"laptop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
# Where the page shows its side panels as tabs, each is checked shown.
PANELS = ("people", "chat", "qa", "polls")
RUN_CONTRAST = """async () => {
  const result = await axe.run(document, {
    runOnly: { type: "rule", values: ["color-contrast"] },
  });
  return {
    version: axe.version,
    passes: result.passes.reduce((n, rule) => n + rule.nodes.length, 0),
    violations: result.violations.flatMap((rule) =>
      rule.nodes.map((node) => ({ target: node.target.join(" "), summary: node.failureSummary }))
    ),
  };
}"""


def _contrast(tab: Tab) -> dict[str, Any]:
    if not tab.page.evaluate("typeof axe !== 'undefined'"):
        tab.page.evaluate(AXE.read_text())
    result: dict[str, Any] = tab.page.evaluate(RUN_CONTRAST)
    return result


def _show(tab: Tab, panel: str) -> None:
    """Bring a side panel on screen where the page shows panels as tabs (``tab-<panel>``)."""
    if tab.by(f"tab-{panel}").count():
        tab.by(f"tab-{panel}").click()


def test_all_text_on_both_views_passes_axe_color_contrast_at_both_sizes(
    open_tab: Callable[..., Tab],
) -> None:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("student", "s-ada", name="Ada")
    for tab in (teacher, ada):
        expect(tab.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    _show(ada, "chat")
    ada.by("chat-input").fill("Good morning")
    ada.by("chat-input").press("Enter")
    ada.by("hand-raise").click()
    _show(ada, "qa")
    ada.by("qa-input").fill("Is merge sort stable?")
    ada.by("qa-ask").click()
    _show(teacher, "polls")
    teacher.by("poll-question-input").fill("Fastest on sorted input?")
    options = teacher.by("poll-option-input")
    for i, text in enumerate(["insertion sort", "quick sort"]):
        options.nth(i).fill(text)
    teacher.by("poll-open").click()
    for tab in (teacher, ada):
        expect(tab.by("chat-message")).to_have_count(1, timeout=WAIT_MS)
        expect(tab.by("qa-item")).to_have_count(1, timeout=WAIT_MS)
        expect(tab.by("poll-card")).to_have_count(1, timeout=WAIT_MS)
    expect(teacher.by("hand-queue-item")).to_have_count(1, timeout=WAIT_MS)

    failures = {}
    for size, viewport in SIZES.items():
        for tab in (teacher, ada):
            tab.page.set_viewport_size(viewport)
            for panel in PANELS:
                _show(tab, panel)
                result = _contrast(tab)
                assert result["version"] == (AXE.parent / "VERSION").read_text().strip()
                assert result["passes"] > 20, result  # the rule looked at the page's text
                if result["violations"]:
                    failures[f"{tab.label}, {panel}, {size}"] = result["violations"]
    assert failures == {}, f"text below WCAG AA contrast: {failures}"
