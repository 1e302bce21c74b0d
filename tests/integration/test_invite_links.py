"""Removal keeps someone out (``--dev`` links): a personal link always gives its student the same
identity, so a removed student cannot come back through it under a new name; the class link,
once the teacher revokes it, admits no new identity (those who joined through it still can)."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import parse_qs, quote, urlsplit

import jwt
import pytest

from clients import ClassroomClient, Refused
from tests.integration.classroom import close_all, connect_all
from tests.server import LiveclassServer


def _fragment_token(link: str) -> str:
    return urlsplit(link).fragment.removeprefix("token=")


def _invite_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["invite"][0]


def _trade(server: LiveclassServer, invite: str, name: str) -> str:
    status, body, _ = server.get(f"/dev/api/student-token?invite={invite}&name={quote(name)}")
    assert status == 200, body
    return str(json.loads(body)["token"])


async def _refused(server: LiveclassServer, token: str, room: str) -> Refused:
    client = ClassroomClient(server.ws_url, token, room, reconnect=False)
    try:
        with pytest.raises(Refused) as refused:
            await client.connect()
        return refused.value
    finally:
        await client.close()


@pytest.fixture
def dev(make_server: Callable[..., LiveclassServer]) -> LiveclassServer:
    return make_server("--dev")


async def test_a_removed_student_cannot_come_back_through_their_personal_link(
    dev: LiveclassServer,
) -> None:
    links = json.loads(dev.get("/dev/api/new-room?teacher_name=Ada")[1])
    room, teacher_token = links["room"], _fragment_token(links["teacher_link"])
    status, body, _ = dev.get(f"/dev/api/personal-invite?teacher={teacher_token}&name=Mallory")
    assert status == 200
    personal = json.loads(body)["link"]
    assert "name=Mallory" in personal
    student_token = _trade(dev, _invite_of(personal), "Mallory")
    teacher = ClassroomClient(dev.ws_url, teacher_token, room)
    mallory = ClassroomClient(dev.ws_url, student_token, room, reconnect=False)
    await connect_all([teacher, mallory])
    try:
        await teacher.remove(mallory.session.identity, "disruptive")
        await mallory.wait_until(lambda: mallory.closed_with is not None, 5)
        # The same link under another name: the same identity, still removed.
        again = _trade(dev, _invite_of(personal), "Totally Someone Else")
        assert jwt.decode(again, options={"verify_signature": False})["sub"] == (
            mallory.session.identity
        )
        assert (await _refused(dev, again, room)).code == "participant_removed"
        # Only staff hand out personal links.
        assert dev.get(f"/dev/api/personal-invite?teacher={student_token}&name=X")[0] == 403
        assert dev.get(f"/dev/api/personal-invite?teacher={teacher_token}&name=")[0] == 400
    finally:
        await close_all([teacher, mallory])


async def test_a_revoked_class_link_admits_no_new_identity(dev: LiveclassServer) -> None:
    links = json.loads(dev.get("/dev/api/new-room?teacher_name=Ada")[1])
    room, teacher_token = links["room"], _fragment_token(links["teacher_link"])
    invite = _invite_of(links["student_link"])
    link_id = jwt.decode(teacher_token, options={"verify_signature": False})["invite_id"]
    teacher = ClassroomClient(dev.ws_url, teacher_token, room)
    grace = ClassroomClient(dev.ws_url, _trade(dev, invite, "Grace"), room, reconnect=False)
    mallory = ClassroomClient(dev.ws_url, _trade(dev, invite, "Mallory"), room, reconnect=False)
    await connect_all([teacher, grace, mallory])
    try:
        await teacher.remove(mallory.session.identity, "disruptive")
        await teacher.request("invite.revoke", invite_id=link_id)
        # Mallory comes back through the class link under a new name: refused.
        refused = await _refused(dev, _trade(dev, invite, "Mal 2"), room)
        assert refused.code == "invite_revoked"
        # Grace joined through it before it was revoked: she comes back.
        await grace.close()
        back = ClassroomClient(dev.ws_url, grace.token, room, reconnect=False)
        assert (await back.connect())["t"] == "welcome"
        await back.close()
    finally:
        await close_all([teacher, grace, mallory])
