"""The rebalancing decisions (signaling/balance.py), pure: when a node sheds, how many, whom."""

from __future__ import annotations

import random
from typing import Any

from rooms import Participant, Role
from signaling.balance import BalanceSettings, ShedPlan, fair_share, pick
from signaling.hub import Member

SETTINGS = BalanceSettings(interval_s=1.0, quiet_s=10.0, tolerance=0.1, batch=10, hold_s=60.0)


def plan_after_quiet(loads: dict[str, int]) -> ShedPlan:
    plan = ShedPlan(SETTINGS, started=0.0)
    plan.shed(0.0, "a", loads, 0)  # learns the tier
    return plan


def test_fair_share_is_the_mean_of_the_live_nodes() -> None:
    assert fair_share({"a": 30, "b": 30, "c": 0}) == 20
    assert fair_share({}) == 0


def test_nothing_is_shed_during_the_quiet_period_after_the_start() -> None:
    plan = ShedPlan(SETTINGS, started=0.0)
    assert plan.shed(0.0, "a", {"a": 30, "b": 30, "c": 0}, 0) == 0
    assert plan.shed(9.9, "a", {"a": 30, "b": 30, "c": 0}, 0) == 0
    assert plan.shed(10.0, "a", {"a": 30, "b": 30, "c": 0}, 0) == 10


def test_a_node_joining_or_leaving_starts_a_new_quiet_period() -> None:
    plan = plan_after_quiet({"a": 30, "b": 30})
    assert plan.shed(20.0, "a", {"a": 30, "b": 30, "c": 0}, 0) == 0
    assert plan.shed(29.0, "a", {"a": 30, "b": 30, "c": 0}, 0) == 0
    assert plan.shed(30.0, "a", {"a": 30, "b": 30, "c": 0}, 0) == 10


def test_a_node_sheds_down_to_the_fair_share_in_batches() -> None:
    plan = plan_after_quiet({"a": 45, "b": 15, "c": 0})
    assert plan.shed(10.0, "a", {"a": 45, "b": 15, "c": 0}, 0) == 10  # batch
    assert plan.shed(10.5, "a", {"a": 45, "b": 15, "c": 0}, 10) == 0  # between rounds
    assert plan.shed(11.0, "a", {"a": 35, "b": 15, "c": 10}, 0) == 10
    assert plan.shed(12.0, "a", {"a": 25, "b": 15, "c": 20}, 0) == 5
    assert plan.shed(13.0, "a", {"a": 20, "b": 20, "c": 20}, 0) == 0


def test_hysteresis_starts_past_the_tolerance_and_stops_at_the_fair_share() -> None:
    plan = plan_after_quiet({"a": 22, "b": 19, "c": 19})
    # 22 is within fair (20) x 1.1: no shedding starts.
    assert plan.shed(10.0, "a", {"a": 22, "b": 19, "c": 19}, 0) == 0
    assert plan.shed(11.0, "a", {"a": 24, "b": 18, "c": 18}, 0) == 4
    # Once shedding, it goes on below the trigger, down to the fair share.
    assert plan.shed(12.0, "a", {"a": 22, "b": 19, "c": 19}, 0) == 2
    assert plan.shed(13.0, "a", {"a": 20, "b": 20, "c": 20}, 0) == 0
    assert not plan.shedding


def test_connections_already_asked_count_as_gone() -> None:
    plan = plan_after_quiet({"a": 30, "b": 30, "c": 0})
    assert plan.shed(10.0, "a", {"a": 30, "b": 30, "c": 0}, 0) == 10
    # A round on, 8 of those 10 are still connected (their asks are spread over seconds).
    assert plan.shed(11.0, "a", {"a": 30, "b": 30, "c": 0}, 8) == 2


def test_when_the_asked_come_back_the_rounds_slow_down() -> None:
    plan = plan_after_quiet({"a": 40, "b": 20, "c": 0})
    loads = {"a": 40, "b": 20, "c": 0}
    assert plan.shed(10.0, "a", loads, 0) == 10
    keys = [("room", f"s{i}") for i in range(10)]
    plan.mark_asked(10.0, keys)
    for key in keys[:6]:  # a source-hashing balancer sent them back
        plan.joined(key)
    assert plan.shed(11.0, "a", loads, 0) == 10
    assert plan.pause == 2
    assert plan.shed(12.0, "a", loads, 0) == 0  # the next round is two intervals on
    assert plan.shed(13.0, "a", loads, 0) == 10


def test_an_asked_identity_is_not_asked_again_within_the_hold() -> None:
    plan = plan_after_quiet({"a": 1})
    plan.mark_asked(10.0, [("room", "ada")])
    assert not plan.askable(("room", "ada"))
    plan.shed(69.0, "a", {"a": 1}, 0)
    assert not plan.askable(("room", "ada"))
    plan.shed(70.0, "a", {"a": 1}, 0)
    assert plan.askable(("room", "ada"))


def member(identity: str, role: str = "student", closing: bool = False) -> tuple[str, Member]:
    outbox: Any = None
    return "room", Member(Participant(identity, identity, Role(role)), outbox, closing=closing)


def test_students_are_asked_before_staff_and_never_one_closing_or_held() -> None:
    members = [
        member("teacher", "teacher"),
        member("s1"),
        member("s2", closing=True),
        member("s3"),
        member("s4"),
    ]
    chosen = pick(members, 3, lambda key: key[1] != "s4", random.Random(1))
    assert sorted(m.participant.identity for _, m in chosen) == ["s1", "s3", "teacher"]
    assert chosen[-1][1].participant.identity == "teacher"
    assert [m.participant.identity for _, m in pick(members, 1, lambda key: True, random.Random(2))]
