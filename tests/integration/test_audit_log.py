"""The audit log (``--audit-log``) of a real ``liveclass serve``: a removal, a room lock, a failed
token, an origin refusal and a rate-limit block each make one JSON line with the documented fields
(docs/operations.md, "The audit log"), and no line holds a token or a message body."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from clients import ClassroomClient
from clients.sdk import CommandFailed, Refused
from rooms import Role
from signaling import Grants, Keyring, mint
from signaling.snapshot_links import mint_snapshot_token, snapshot_path
from tests.integration.yboard import YClient, board_url
from tests.server import LiveclassServer

FIELDS = {"ts", "node", "kind", "action", "actor", "outcome"}
ADMIN_TOKEN = "admin-token-5d1e9a7c-operators-only"


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveclassServer]:
    directory = Path(tmp_path_factory.mktemp("audit"))
    server = LiveclassServer(
        directory,
        (
            "--no-media",
            "--audit-log",
            str(directory / "audit.jsonl"),
            "--rate-per-s",
            "5",
            "--rate-burst",
            "10",
        ),
        env={"LIVECLASS_ADMIN_TOKEN": ADMIN_TOKEN},
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def teacher_of() -> AsyncIterator[Callable[..., Any]]:
    """Connect clients to a room; all closed at the end."""
    opened: list[ClassroomClient] = []

    async def connect_as(
        server: LiveclassServer, identity: str, room: str, role: str = "student"
    ) -> ClassroomClient:
        client = ClassroomClient(
            server.ws_url, server.token(identity, role, room), room, reconnect=False
        )
        await client.connect()
        opened.append(client)
        return client

    yield connect_as
    for client in opened:
        await client.close()


def lines(server: LiveclassServer) -> list[dict[str, Any]]:
    path = server.data_dir / "audit.jsonl"
    text = path.read_text() if path.exists() else ""
    parsed = [json.loads(line) for line in text.splitlines()]
    for line in parsed:
        assert FIELDS <= set(line), line
    return parsed


async def wait_for(
    server: LiveclassServer, match: Callable[[dict[str, Any]], bool], what: str, count: int = 1
) -> list[dict[str, Any]]:
    """The audit lines that ``match``, once there are ``count`` (5 s at most)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [line for line in lines(server) if match(line)]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"no audit line for {what}: {lines(server)}")


async def test_a_removal_is_audited_with_actor_target_and_no_reason(
    audited: LiveclassServer, teacher_of: Callable[..., Any]
) -> None:
    teacher = await teacher_of(audited, "t-remove", "audit-remove", "teacher")
    await teacher_of(audited, "s-remove", "audit-remove")
    await teacher.remove("s-remove", reason="kept talking over the secret-reason-17")

    [line] = await wait_for(
        audited,
        lambda line: line["action"] == "participant.remove" and line["room"] == "audit-remove",
        "the removal",
    )
    assert line["kind"] == "moderation"
    assert line["actor"] == {"identity": "t-remove", "role": "teacher"}
    assert line["target"] == "s-remove"
    assert line["outcome"] == "ok"
    assert line["node"]
    assert "secret-reason-17" not in json.dumps(line), "the removal's reason reached the log"


async def test_a_lock_is_audited_and_a_students_refused_lock_too(
    audited: LiveclassServer, teacher_of: Callable[..., Any]
) -> None:
    teacher = await teacher_of(audited, "t-lock", "audit-lock", "teacher")
    student = await teacher_of(audited, "s-lock", "audit-lock")
    with pytest.raises(CommandFailed):
        await student.lock_room(True)
    await teacher.lock_room(True)

    found = await wait_for(
        audited,
        lambda line: line["action"] == "room.lock" and line["room"] == "audit-lock",
        "the lock",
        count=2,
    )
    by_actor = {line["actor"]["identity"]: line for line in found}
    assert by_actor["s-lock"]["outcome"] == "refused"
    assert by_actor["s-lock"]["code"] == "not_allowed"
    assert by_actor["t-lock"]["outcome"] == "ok"
    assert by_actor["t-lock"]["detail"] == {"locked": True}
    assert by_actor["t-lock"]["kind"] == "moderation"


async def test_a_failed_token_is_audited_with_the_peer_address_and_no_token(
    audited: LiveclassServer,
) -> None:
    forged = mint(
        Keyring({"test": b"not-the-servers-secret-" * 3}, "test"),
        identity="mallory",
        name="Mallory",
        grants=Grants("audit-token", Role.TEACHER),
        ttl_s=600,
    )
    client = ClassroomClient(audited.ws_url, forged, "audit-token", reconnect=False)
    with pytest.raises(Refused):
        await client.connect()
    await client.close()

    [line] = await wait_for(
        audited,
        lambda line: line["kind"] == "auth" and line.get("room") == "audit-token",
        "the failed token",
    )
    assert line["action"] == "join"
    assert line["actor"] == {"address": "127.0.0.1"}
    assert line["outcome"] == "refused"
    assert line["code"] == "token_invalid"
    text = (audited.data_dir / "audit.jsonl").read_text()
    for part in forged.split("."):
        assert part not in text, "the forged token reached the audit log"


async def test_an_origin_refusal_is_audited(audited: LiveclassServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(audited.ws_url, origin="https://evil.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403

    [line] = await wait_for(
        audited,
        lambda line: line["kind"] == "origin" and "evil.example" in str(line.get("detail")),
        "the origin refusal",
    )
    assert line["action"] == "ws"
    assert line["actor"] == {"address": "127.0.0.1"}
    assert line["outcome"] == "refused"
    assert line["code"] == "origin_not_allowed"
    assert line["detail"] == {"origin": "https://evil.example"}


async def test_a_rate_limit_block_is_audited_once_per_burst_not_per_frame(
    audited: LiveclassServer, teacher_of: Callable[..., Any]
) -> None:
    student = await teacher_of(audited, "s-flood", "audit-flood")
    for ref in range(1, 41):  # 40 frames against a burst of 10: about 30 refused
        await student.send_raw(msgpack.packb({"t": "ping", "ref": ref}))

    await wait_for(
        audited,
        lambda line: line["kind"] == "rate_limit" and line.get("room") == "audit-flood",
        "the rate-limit block",
    )
    for _ in range(50):  # a ping that passes: the server has read every frame of the burst
        try:
            await student.ping()
            break
        except CommandFailed as exc:
            await asyncio.sleep((exc.retry_after_ms or 50) / 1000)
    found = [
        line
        for line in lines(audited)
        if line["kind"] == "rate_limit" and line.get("room") == "audit-flood"
    ]
    assert len(found) == 1, found
    [line] = found
    assert line["action"] == "frames"
    assert line["actor"] == {"identity": "s-flood", "role": "student"}
    assert line["outcome"] == "refused"
    assert line["code"] == "rate_limited"
    assert line["detail"]["retry_after_ms"] > 0


async def test_breakout_operations_are_audited_with_counts_not_lists(
    audited: LiveclassServer, teacher_of: Callable[..., Any]
) -> None:
    teacher = await teacher_of(audited, "t-br", "audit-breakout", "teacher")
    await teacher_of(audited, "s-br", "audit-breakout")
    await teacher.open_breakouts(["Red", "Blue"], members={"s-br": "Red"}, duration_s=600)
    await teacher.move_to_breakout("s-br", "Blue")
    await teacher.close_breakouts()

    found = await wait_for(
        audited,
        lambda line: line["kind"] == "breakout" and line["room"] == "audit-breakout",
        "the breakout operations",
        count=3,
    )
    opened, moved, closed = found
    assert opened["action"] == "breakout.open"
    assert opened["detail"] == {"rooms": 2, "members": 1, "duration_s": 600}
    assert moved["action"] == "breakout.move" and moved["target"] == "s-br"
    assert moved["detail"] == {"room": "Blue"}
    assert closed["action"] == "breakout.close" and closed["outcome"] == "ok"
    assert all(line["actor"] == {"identity": "t-br", "role": "teacher"} for line in found)


async def test_a_whiteboard_token_that_does_not_verify_is_audited(
    audited: LiveclassServer,
) -> None:
    expired = audited.token("s-board", room="audit-board", ttl_s=10, now=1_000_000)
    board = await YClient.open(board_url(audited, expired, "audit-board"))
    await board.wait_closed()

    [line] = await wait_for(
        audited,
        lambda line: line["kind"] == "auth" and line.get("room") == "audit-board",
        "the whiteboard's failed token",
    )
    assert line["action"] == "board"
    assert line["code"] == "token_expired"
    assert line["actor"] == {"address": "127.0.0.1"}


def test_an_export_with_a_token_that_does_not_verify_is_audited(audited: LiveclassServer) -> None:
    expired = audited.token("t-export", "teacher", "audit-export", ttl_s=10, now=1_000_000)
    request = urllib.request.Request(
        f"{audited.http_url}/rooms/audit-export/export.json",
        headers={"Authorization": f"Bearer {expired}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    refused.value.close()  # or the server waits for the connection to end when it stops
    assert refused.value.code == 403

    [line] = [line for line in lines(audited) if line.get("room") == "audit-export"]
    assert (line["kind"], line["action"], line["code"]) == ("auth", "export", "token_expired")
    assert expired.split(".")[2] not in (audited.data_dir / "audit.jsonl").read_text()


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [(None, 401, "token_invalid"), ("s-export", 403, "not_allowed")],
)
async def test_an_export_without_a_token_or_by_a_student_is_audited(
    audited: LiveclassServer, who: str | None, status: int, code: str
) -> None:
    room = f"audit-export-{status}"
    headers = {}
    if who is not None:
        headers["Authorization"] = "Bearer " + audited.token(who, "student", room)
    request = urllib.request.Request(
        f"{audited.http_url}/rooms/{room}/export.json", headers=headers
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        await asyncio.to_thread(urllib.request.urlopen, request, timeout=5)
    refused.value.close()
    assert refused.value.code == status

    [line] = await wait_for(
        audited, lambda line: line.get("room") == room, f"the export's {status}"
    )
    assert (line["kind"], line["action"], line["code"]) == ("auth", "export", code)
    assert line["outcome"] == "refused"
    if who is None:
        assert line["actor"] == {"address": "127.0.0.1"}
    else:
        assert line["actor"] == {"identity": who, "role": "student"}


async def test_a_removed_participants_export_is_audited(
    audited: LiveclassServer, teacher_of: Callable[..., Any]
) -> None:
    room = "audit-export-removed"
    teacher = await teacher_of(audited, "t-exr", room, "teacher")
    await teacher_of(audited, "a-exr", room, "assistant")
    await teacher.remove("a-exr")
    request = urllib.request.Request(
        f"{audited.http_url}/rooms/{room}/export.json",
        headers={"Authorization": "Bearer " + audited.token("a-exr", "assistant", room)},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        await asyncio.to_thread(urllib.request.urlopen, request, timeout=5)
    refused.value.close()
    assert refused.value.code == 403

    [line] = await wait_for(
        audited,
        lambda line: line.get("room") == room and line["action"] == "export",
        "the removed assistant's export",
    )
    assert line["actor"] == {"identity": "a-exr", "role": "assistant"}
    assert line["code"] == "participant_removed"


def test_an_audit_log_that_cannot_be_opened_stops_the_start_and_says_so(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "liveclass",
            "serve",
            *("--port", "0", "--data-dir", str(tmp_path), "--log-format", "text"),
            *("--audit-log", str(tmp_path / "no-such-directory" / "audit.jsonl")),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert "cannot open the audit log" in done.stderr and "no-such-directory" in done.stderr


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Bearer not-the-admin-token", 403), ("classroom", 403)],
)
async def test_a_refused_admin_token_is_audited_with_the_peer_address_and_no_token(
    audited: LiveclassServer, authorization: str | None, status: int
) -> None:
    if authorization == "classroom":
        authorization = "Bearer " + audited.token("t-admin", "teacher", "audit-admin")
    request = urllib.request.Request(audited.http_url + "/status.json")
    if authorization is not None:
        request.add_header("Authorization", authorization)
    with pytest.raises(urllib.error.HTTPError) as refused:
        await asyncio.to_thread(urllib.request.urlopen, request, timeout=5)
    assert refused.value.code == status
    refused.value.close()

    found = await wait_for(
        audited,
        lambda line: (
            line["kind"] == "auth"
            and line["action"] == "admin"
            and line["detail"]["status"] == status
        ),
        f"the admin API's {status}",
    )
    line = found[-1]
    assert line["actor"] == {"address": "127.0.0.1"}
    assert line["outcome"] == "refused" and line["code"] == "token_invalid"
    assert line["detail"]["path"] == "/status.json"
    assert "room" not in line and "target" not in line
    text = (audited.data_dir / "audit.jsonl").read_text()
    assert "not-the-admin-token" not in text and ADMIN_TOKEN not in text
    if authorization is not None:
        for part in authorization.removeprefix("Bearer ").split("."):
            assert part not in text, "the presented token reached the audit log"


def test_the_admin_token_is_not_audited_when_it_is_right(audited: LiveclassServer) -> None:
    before = len(lines(audited))
    request = urllib.request.Request(audited.http_url + "/status.json")
    request.add_header("Authorization", f"Bearer {ADMIN_TOKEN}")
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200
    assert [line for line in lines(audited)[before:] if line["kind"] == "auth"] == []


async def test_lowering_every_hand_and_a_broadcast_are_audited_without_the_text(
    audited: LiveclassServer, teacher_of: Callable[..., Any]
) -> None:
    teacher = await teacher_of(audited, "t-bc", "audit-broadcast", "teacher")
    student = await teacher_of(audited, "s-bc", "audit-broadcast")
    await student.raise_hand()
    await teacher.lower_all_hands()
    await teacher.open_breakouts(["Red"], members={"s-bc": "Red"}, duration_s=600)
    await teacher.request("breakout.broadcast", text="broadcast-body-4e1f two minutes left")

    found = await wait_for(
        audited,
        lambda line: (
            line.get("room") == "audit-broadcast"
            and line["action"] in ("hand.lower_all", "breakout.broadcast")
        ),
        "lowering every hand and the broadcast",
        count=2,
    )
    lowered, broadcast = found
    assert lowered["kind"] == "moderation" and lowered["action"] == "hand.lower_all"
    assert broadcast["kind"] == "breakout" and broadcast["action"] == "breakout.broadcast"
    for line in found:
        assert line["actor"] == {"identity": "t-bc", "role": "teacher"}
        assert line["outcome"] == "ok"
    text = (audited.data_dir / "audit.jsonl").read_text()
    assert "broadcast-body-4e1f" not in text, "the broadcast's text reached the audit log"


async def test_a_snapshot_link_used_again_is_audited(
    audited: LiveclassServer, teacher_of: Callable[..., Any]
) -> None:
    room = "audit-snapshot"
    await teacher_of(audited, "t-snap", room, "teacher")  # the holder's session is running
    token = mint_snapshot_token(
        audited.keyring, room=room, board="main", snapshot_id=7, identity="t-snap"
    )
    path = snapshot_path(room, "main", 7, token)
    first, _, _ = await asyncio.to_thread(audited.get, path)
    assert first != 403, "the first use is not refused for its token"
    again, body, _ = await asyncio.to_thread(audited.get, path)
    assert (again, body) == (403, b"token_invalid: this link was used already\n")

    [line] = await wait_for(
        audited, lambda line: line.get("room") == room, "the snapshot link used again"
    )
    assert (line["kind"], line["action"], line["code"]) == ("auth", "snapshot", "token_invalid")
    assert line["actor"] == {"address": "127.0.0.1"}
    assert line["detail"] == {"used": True}
    for part in token.split("."):
        assert part not in (audited.data_dir / "audit.jsonl").read_text()
