"""End of class: staff download the class from the room's log over HTTP with their access token
(``Authorization: Bearer``), as JSON or as CSV tables: the chat with the private threads, the
questions with their votes, the polls with their results, and the attendance."""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.request

from tests.integration.classroom import client, close_all, connect_all, wait_all
from tests.server import LiveclassServer


def fetch(server: LiveclassServer, path: str, token: str | None) -> tuple[int, bytes, str]:
    request = urllib.request.Request(f"{server.http_url}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read(), answer.headers.get("Content-Disposition", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), ""


async def test_staff_export_the_class_as_json_and_csv_after_it_ended(
    server: LiveclassServer,
) -> None:
    teacher = client(server, "t1", "teacher")
    ada, bob = client(server, "ada"), client(server, "bob", reconnect=False)
    cleo = client(server, "cleo", reconnect=False)
    await connect_all([teacher, ada, bob, cleo])
    try:
        await ada.chat("Good morning")
        await ada.chat("Can I hand in late?", to="staff")
        await teacher.chat("Yes", to="ada")
        asked = await ada.ask("What is a monad?")
        await wait_all([bob], asked["ids"][-1])
        question_id = bob.session.events[-1].data["question_id"]
        await bob.upvote(question_id)
        opened = await teacher.open_poll("Tea or coffee?", ["tea", "coffee"])
        await wait_all([ada], opened["ids"][-1])
        poll_id = ada.session.events[-1].data["poll_id"]
        await ada.answer_poll(poll_id, [1])
        await bob.answer_poll(poll_id, [1])
        await teacher.close_poll(poll_id)
        await teacher.remove("bob", "left early")
        await cleo.leave()  # the Leave button: her leaving time is in the log
        await teacher.end_session("see you")
    finally:
        await close_all([teacher, ada, bob, cleo])

    staff_token = server.token("t1", "teacher")
    status, body, disposition = fetch(server, "/rooms/class/export.json", staff_token)
    assert status == 200 and 'filename="class-class.json"' in disposition
    export = json.loads(body)
    assert export["room_id"] == "class" and export["truncated"] is False
    assert export["ended_at"] is not None
    chat = [(m["from"], m["text"], m["thread"]) for m in export["chat"]]
    assert chat == [
        ("ada", "Good morning", None),
        ("ada", "Can I hand in late?", "ada"),
        ("t1", "Yes", "ada"),
    ], "staff get the private threads"
    (question,) = export["questions"]
    assert question["text"] == "What is a monad?" and question["votes"] == 1
    assert question["voters"] == ["bob"]
    (poll,) = export["polls"]
    assert poll["tally"] == [0, 2] and poll["voters"] == 2 and poll["open"] is False
    people = {p["identity"]: p for p in export["attendance"]}
    assert set(people) == {"t1", "ada", "bob", "cleo"}
    assert people["bob"]["removed_at"] is not None and people["ada"]["removed_at"] is None
    assert people["cleo"]["left_at"] is not None and people["ada"]["left_at"] is None
    assert people["cleo"]["joined_at"] <= people["cleo"]["left_at"]
    assert people["ada"]["joined_at"] <= people["ada"]["last_seen_at"]

    status, body, disposition = fetch(server, "/rooms/class/export.csv?table=polls", staff_token)
    assert status == 200 and 'filename="class-polls.csv"' in disposition
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0][:3] == ["poll_id", "ts", "question"]
    assert [(r[6], r[7]) for r in rows[1:]] == [("tea", "0"), ("coffee", "2")]
    status, body, _ = fetch(server, "/rooms/class/export.csv?table=attendance", staff_token)
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert status == 200 and len(rows) == 5 and "left_at" in rows[0]
    status, body, _ = fetch(server, "/rooms/class/export.csv", staff_token)
    assert status == 200 and body.decode().count("\n") == 4, "chat is the default table"


async def test_only_the_rooms_staff_export_it(server: LiveclassServer) -> None:
    teacher = client(server, "t1", "teacher")
    await connect_all([teacher])
    await teacher.chat("hello")
    await close_all([teacher])
    assert fetch(server, "/rooms/class/export.json", None)[0] == 401
    assert fetch(server, "/rooms/class/export.json", server.token("ada"))[0] == 403
    other_room = server.token("t9", "teacher", room="other")
    assert fetch(server, "/rooms/class/export.json", other_room)[0] == 403
    assert fetch(server, "/rooms/class/export.json", "not-a-token")[0] == 403
    staff = server.token("a1", "assistant")
    assert fetch(server, "/rooms/class/export.csv?table=nope", staff)[0] == 404
    assert fetch(server, "/rooms/class/export.xml", staff)[0] == 404
    assert fetch(server, "/rooms/class/export.json", staff)[0] == 200
