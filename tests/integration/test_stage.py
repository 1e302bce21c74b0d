"""The stage as a room command over real WebSockets to a `liveclass serve`: staff put the
whiteboard or the video on every page's stage, students are refused, and a late joiner, a resumed
client and a restarted server all hold the staff's choice (docs/protocol.md, "The stage")."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from clients import ClassroomClient, CommandFailed
from tests.integration.classroom import client, close_all, connect_all, wait_all
from tests.server import LiveclassServer


async def refused(c: ClassroomClient, view: object) -> tuple[str, str | None]:
    """The (code, field) of the error ``stage.set`` with ``view`` gets."""
    with pytest.raises(CommandFailed) as error:
        await c.request("stage.set", view=view)
    return error.value.code, error.value.field


def stages_seen(c: ClassroomClient) -> list[tuple[str, str]]:
    return [(e.data["view"], e.data["by"]) for e in c.session.events if e.type == "stage.changed"]


async def test_staff_choose_everyones_stage_and_students_may_not(
    server: LiveclassServer,
) -> None:
    teacher, assistant = client(server, "t", "teacher"), client(server, "a", "assistant")
    alice, bob = client(server, "alice"), client(server, "bob")
    everyone = [teacher, assistant, alice, bob]
    await connect_all(everyone)
    late: list[ClassroomClient] = []
    try:
        assert alice.session.room["stage"] == "board"
        assert await refused(alice, "video") == ("not_allowed", None)
        assert await refused(teacher, "poster") == ("bad_field", "view")
        assert (await teacher.request("stage.set", view="board"))["ids"] == []

        await bob.drop()  # bob is away while the stage changes, and resumes
        last = (await assistant.request("stage.set", view="video"))["ids"][0]
        await wait_all(everyone, last)
        assert bob.session.resumes == 1
        for c in everyone:
            assert stages_seen(c) == [("video", "a")]

        carol = client(server, "carol")
        late.append(carol)
        await carol.connect()
        assert carol.session.room["stage"] == "video"

        last = (await teacher.set_stage("board"))["ids"][0]
        await wait_all(everyone, last)
        assert stages_seen(alice) == [("video", "a"), ("board", "t")]
        dave = client(server, "dave")
        late.append(dave)
        await dave.connect()
        assert dave.session.room["stage"] == "board"
    finally:
        await close_all([*everyone, *late])


async def test_the_stage_survives_a_restart_from_the_rooms_snapshot(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server(*("--room-snapshot-every", "5", "--rate-per-s", "1000"))
    teacher = client(server, "t", "teacher")
    await teacher.connect()
    try:
        await teacher.request("stage.set", view="video")
        for i in range(6):  # past a snapshot, so the restart reads the stage from it
            await teacher.chat(f"line {i}")
        server.kill()
        await asyncio.to_thread(server.start)
        await teacher.wait_until(lambda: teacher.session.resumes >= 1, 15)
        viewer = client(server, "viewer", reconnect=False)
        await viewer.connect()
        assert viewer.session.room["stage"] == "video"
        await viewer.close()
    finally:
        await teacher.close()
