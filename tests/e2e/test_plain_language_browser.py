"""Plain language on the classroom page, in real Chromium against a real ``liveclass serve``.

Nobody reads an error code or a library's message: a refused command, a refused link and a
dropped session are said in a sentence with what to do (clients/web/messages.js). Controls that
cannot work now are disabled and say why. Leaving asks first, and a page that left offers Rejoin.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import VIEWPORT, Tab, wait_live
from tests.server import LiveclassServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

WAIT_MS = 10_000


def test_a_refused_command_reads_as_a_sentence_with_what_to_do(
    open_tab: Callable[..., Tab],
) -> None:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("student", "s-ada", name="Ada")
    wait_live(teacher, ada)
    teacher.roster_actions("s-ada").get_by_test_id("roster-mute").click()
    expect(ada.by("chat-muted")).to_be_visible(timeout=WAIT_MS)

    ada.by("chat-input").fill("Can I say something?")
    ada.by("chat-input").press("Enter")
    toast = ada.page.locator("[data-testid=toast][data-code=chat_muted]")
    expect(toast).to_contain_text("The teacher has turned off chat for you.", timeout=WAIT_MS)
    expect(toast).to_contain_text("You can still raise your hand, or write to the staff")
    expect(toast).not_to_contain_text("chat_muted")
    expect(toast).not_to_contain_text("your chat is muted")  # nor the server's words
    assert ada.errors == []


def test_a_damaged_link_says_so_in_plain_words(browser: Browser, server: LiveclassServer) -> None:
    # The link's payload reads (so the page knows the room) but its signature is no base64: the
    # server's answer is "malformed token: ...", which the page must not show.
    claims = {"sub": "s-ada", "name": "Ada", "grants": {"room": "class"}}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","kid":"test"}').rstrip(b"=").decode()
    page = browser.new_context(viewport=VIEWPORT, locale="en-US").new_page()
    page.goto(f"{server.http_url}/#token={header}.{payload}.a")
    state = page.get_by_test_id("conn-state")
    expect(state).to_have_attribute("data-state", "error", timeout=WAIT_MS)
    expect(state).to_have_text(
        "This join link does not work: it is incomplete or damaged. "
        "Ask your teacher for a new link."
    )
    banner = page.get_by_test_id("banner")
    expect(banner).to_contain_text("Ask your teacher for a new link.")
    for shown in (state, banner):
        expect(shown).not_to_contain_text("malformed")
        expect(shown).not_to_contain_text("token_invalid")


def test_call_on_next_and_open_poll_are_disabled_with_a_reason_until_they_can_work(
    open_tab: Callable[..., Tab],
) -> None:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("student", "s-ada", name="Ada")
    wait_live(teacher, ada)

    call_next = teacher.by("call-next")
    expect(call_next).to_be_disabled()
    expect(teacher.by("call-next-reason")).to_have_text("No hand is raised.")
    expect(teacher.by("lower-all")).to_be_disabled()
    ada.by("hand-raise").click()
    expect(call_next).to_be_enabled(timeout=WAIT_MS)
    expect(teacher.by("call-next-reason")).to_be_hidden()
    call_next.click()
    expect(call_next).to_be_disabled(timeout=WAIT_MS)
    expect(teacher.page.locator("[data-testid=toast].toast-error")).to_have_count(0)

    teacher.show_panel("polls")
    open_poll = teacher.by("poll-open")
    reason = teacher.by("poll-open-reason")
    expect(open_poll).to_be_disabled()
    expect(reason).to_have_text("Write a question and at least two options.")
    teacher.by("poll-question-input").fill("Which planet is largest?")
    expect(reason).to_have_text("Write at least two options.")
    options = teacher.by("poll-option-input")
    options.nth(0).fill("Jupiter")
    expect(open_poll).to_be_disabled()
    options.nth(1).fill("Saturn")
    expect(open_poll).to_be_enabled()
    expect(reason).to_be_hidden()
    open_poll.click()
    expect(ada.by("poll-card")).to_have_count(1, timeout=WAIT_MS)
    expect(open_poll).to_be_disabled(timeout=WAIT_MS)  # the form is empty again
    assert teacher.errors == [] and ada.errors == []


def test_leaving_asks_first_and_a_page_that_left_can_rejoin(
    open_tab: Callable[..., Tab],
) -> None:
    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("student", "s-ada", name="Ada")
    wait_live(teacher, ada)
    expect(teacher.by("roster-item")).to_have_count(2, timeout=WAIT_MS)

    ada.by("leave").click()
    expect(ada.by("leave-dialog")).to_be_visible()
    ada.by("leave-cancel").click()
    expect(ada.by("leave-dialog")).to_be_hidden()
    wait_live(ada)

    ada.by("leave").click()
    ada.by("leave-confirm").click()
    expect(ada.by("conn-state")).to_have_attribute("data-state", "left", timeout=WAIT_MS)
    expect(ada.by("banner")).to_contain_text("You left the class")
    expect(teacher.by("roster-item")).to_have_count(1, timeout=WAIT_MS)

    ada.by("rejoin").click()
    wait_live(ada)
    expect(ada.by("rejoin")).to_be_hidden()
    expect(teacher.by("roster-item")).to_have_count(2, timeout=WAIT_MS)
    assert ada.errors == []
