"""signaling.edge.greeting: welcome, or resume from the ring or the store."""

import pytest

from signaling.edge.greeting import Greeting, choose_greeting


@pytest.mark.parametrize(
    ("last_id", "expected"),
    [
        (None, Greeting.WELCOME),  # a first join
        (-1, Greeting.WELCOME),
        (101, Greeting.WELCOME),  # ahead of the room (another deployment's id)
        (100, Greeting.RESUME_FROM_RING),  # nothing missed
        (60, Greeting.RESUME_FROM_RING),  # the ring starts at 61
        (59, Greeting.ASK_LOG_START),  # older than the ring: ask where the log starts
        (48, Greeting.WELCOME),  # more than resume_max_events behind
    ],
)
def test_the_greeting_follows_how_far_behind_the_client_is(
    last_id: int | None, expected: Greeting
) -> None:
    assert choose_greeting(last_id, 100, 61, resume_max_events=51) is expected


def test_a_log_trimmed_past_the_client_gets_a_welcome() -> None:
    assert choose_greeting(40, 100, 61, 100, log_first_id=30) is Greeting.RESUME_FROM_STORE
    assert choose_greeting(40, 100, 61, 100, log_first_id=41) is Greeting.RESUME_FROM_STORE
    assert choose_greeting(40, 100, 61, 100, log_first_id=42) is Greeting.WELCOME


def test_an_empty_ring_resumes_a_client_that_is_current() -> None:
    assert choose_greeting(100, 100, 101, 10) is Greeting.RESUME_FROM_RING
    assert choose_greeting(0, 0, 1, 10) is Greeting.RESUME_FROM_RING
