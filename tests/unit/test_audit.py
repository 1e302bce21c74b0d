"""signaling.audit: one JSON line per call, appended to a file that may be rotated, and command
details without user text."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from rooms import (
    COMMANDS,
    BreakoutOpen,
    ChatMute,
    NotAllowed,
    Participant,
    ParticipantRemove,
    Record,
    Role,
)
from signaling.audit import AUDITED, AuditLog, actor_at, actor_of, command_detail
from signaling.store import StoreUnavailable


def read(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_record_is_one_line_with_the_documented_fields(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog.open(str(path), node="n1")
    teacher = Participant("t", "Teacher Name", Role.TEACHER)
    audit.record("moderation", "room.lock", actor_of(teacher), room="class", detail={"locked": 1})
    audit.record("auth", "join", actor_at("127.0.0.1"), room="class", code="token_expired")
    first, second = read(path)
    assert first == {
        "ts": first["ts"],
        "node": "n1",
        "kind": "moderation",
        "action": "room.lock",
        "actor": {"identity": "t", "role": "teacher"},
        "room": "class",
        "outcome": "ok",
        "detail": {"locked": 1},
    }
    assert "Teacher Name" not in path.read_text()
    assert second["outcome"] == "refused" and second["code"] == "token_expired"
    assert second["actor"] == {"address": "127.0.0.1"}
    assert (path.stat().st_mode & 0o777) == 0o600


def test_a_moved_file_is_reopened_at_the_next_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog.open(str(path))
    audit.record("auth", "join", actor_at("a"))
    path.rename(tmp_path / "audit.jsonl.1")  # logrotate's default (create)
    audit.record("auth", "join", actor_at("b"))
    assert [line["actor"] for line in read(tmp_path / "audit.jsonl.1")] == [{"address": "a"}]
    assert [line["actor"] for line in read(path)] == [{"address": "b"}]


def test_a_truncated_file_is_appended_to_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog.open(str(path))
    audit.record("auth", "join", actor_at("a"))
    path.write_text("")  # logrotate's copytruncate
    audit.record("auth", "join", actor_at("b"))
    assert path.read_text().startswith("{"), "O_APPEND writes at the new end, not past a hole"
    assert [line["actor"] for line in read(path)] == [{"address": "b"}]


def test_an_off_log_writes_nothing() -> None:
    audit = AuditLog.open("")
    assert not audit.enabled
    audit.record("auth", "join", actor_at("a"))


def test_command_details_keep_flags_and_drop_user_text() -> None:
    assert command_detail(ParticipantRemove("ada", reason="rude words")) == {}
    assert command_detail(ChatMute(True, "ada")) == {"muted": True}
    opened = BreakoutOpen(rooms=("A", "B"), members={"ada": "A"}, duration_s=600)
    assert command_detail(opened) == {"duration_s": 600, "rooms": 2, "members": 1}


def test_every_audited_type_is_a_command() -> None:
    assert set(AUDITED) <= set(COMMANDS)


async def test_a_commands_line_says_what_the_room_decided(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog.open(str(path))
    student = Participant("s", "Student Name", Role.STUDENT)
    loop = asyncio.get_running_loop()
    outcomes: list[asyncio.Future[tuple[Record, ...]]] = [loop.create_future() for _ in range(3)]
    outcomes[0].set_result(())
    outcomes[1].set_exception(NotAllowed("only staff remove"))
    outcomes[2].set_exception(StoreUnavailable("down"))
    for done in outcomes:
        audit.command("class", student, ParticipantRemove("ada", reason="why"), done)
    ok, refused, failed = read(path)
    assert (ok["outcome"], ok.get("code")) == ("ok", None)
    assert (refused["outcome"], refused["code"]) == ("refused", "not_allowed")
    assert (failed["outcome"], failed["code"]) == ("failed", "unavailable")
    assert all(line["target"] == "ada" and line["kind"] == "moderation" for line in read(path))
