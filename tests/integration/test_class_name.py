"""The class has a name: the name typed on the dev landing page (or a staff token's
``class_name`` claim) is the class's display name, recorded once in the room's log
(``room.named``) and sent in every ``welcome``; the room id stays an id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from urllib.parse import parse_qs, quote, urlsplit

import jwt
import pytest

from clients import ClassroomClient, Refused
from rooms import Role
from signaling import Grants, mint
from tests.integration.classroom import close_all, connect_all
from tests.server import LiveclassServer


def _claims(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


async def test_the_class_name_typed_on_the_dev_page_reaches_everyones_welcome(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--dev")
    query = f"teacher_name=Ada&class_name={quote('Algèbre 2')}"
    status, body, _ = server.get(f"/dev/api/new-room?{query}")
    assert status == 200
    links = json.loads(body)
    room = links["room"]
    assert room.startswith("alg") and " " not in room, "the room id stays an id"
    teacher_token = urlsplit(links["teacher_link"]).fragment.removeprefix("token=")
    invite = parse_qs(urlsplit(links["student_link"]).query)["invite"][0]
    assert _claims(invite)["class_name"] == "Algèbre 2", "the join page reads it from the invite"
    status, body, _ = server.get(f"/dev/api/student-token?invite={invite}&name=Grace")
    student_token = json.loads(body)["token"]
    assert _claims(student_token)["class_name"] == "Algèbre 2"

    teacher = ClassroomClient(server.ws_url, teacher_token, room)
    await connect_all([teacher])
    student = ClassroomClient(server.ws_url, student_token, room)
    await connect_all([student])
    try:
        assert teacher.session.room["class_name"] == "Algèbre 2"
        assert teacher.session.room["room_id"] == room
        assert student.session.room["class_name"] == "Algèbre 2"
        named = [e for e in student.session.events if e.type == "room.named"]
        assert named == [], "the student joined after the name was recorded: it is in the welcome"
    finally:
        await close_all([teacher, student])


async def test_the_first_staff_token_names_the_room_once_and_a_restart_keeps_it(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server()

    def token(identity: str, role: Role, class_name: str | None) -> str:
        return mint(
            server.keyring,
            identity=identity,
            name=identity,
            grants=Grants("class", role),
            ttl_s=600,
            extra={"class_name": class_name} if class_name is not None else None,
        )

    student = ClassroomClient(server.ws_url, token("s1", Role.STUDENT, "Hijacked"), "class")
    await connect_all([student])
    assert student.session.room["class_name"] is None, "a student's claim names nothing"
    teacher = ClassroomClient(server.ws_url, token("t1", Role.TEACHER, "Biology"), "class")
    await connect_all([teacher])
    event = await student.wait_for(lambda e: e.type == "room.named")
    assert event.data == {"class_name": "Biology", "by": "t1"}
    assistant = ClassroomClient(server.ws_url, token("a1", Role.ASSISTANT, "Chemistry"), "class")
    await connect_all([assistant])
    assert assistant.session.room["class_name"] == "Biology", "recorded once"
    await close_all([student, teacher, assistant])

    server.stop()
    again = make_server(data_dir=server.data_dir)
    late = ClassroomClient(again.ws_url, again.token("s2"), "class")
    await connect_all([late])
    try:
        assert late.session.room["class_name"] == "Biology"
    finally:
        await close_all([late])


@pytest.mark.parametrize("bad", ["", "x" * 101, 42])
async def test_a_token_whose_class_name_is_not_1_to_100_characters_is_refused(
    server: LiveclassServer, bad: object
) -> None:
    token = mint(
        server.keyring,
        identity="t1",
        name="Tess",
        grants=Grants("class", Role.TEACHER),
        ttl_s=600,
        extra={"class_name": bad},
    )
    client = ClassroomClient(server.ws_url, token, "class", reconnect=False)
    with pytest.raises(Refused) as refused:
        await client.connect()
    assert refused.value.code == "token_invalid"
    await client.close()


def test_liveclass_token_puts_the_class_name_in_the_token(server: LiveclassServer) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "liveclass", "token", "--room", "class", "--identity", "t1"),
            *("--role", "teacher", "--class-name", "Year 9 History"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "LIVECLASS_SECRETS": f"test:{server.secret}"},
        timeout=30,
        check=True,
    )
    assert _claims(result.stdout.strip())["class_name"] == "Year 9 History"
