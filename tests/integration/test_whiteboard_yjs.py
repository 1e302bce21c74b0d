"""Real Yjs clients (yjs 13.6 + y-websocket 3.1 in Node) against ``/whiteboard/<room>/<board>``.

Every client is its own Node process (tests/yjs/client.mjs) with fixed Yjs client ids, so the
outcome of each conflict is fixed: concurrent Y.Map writes are won by the higher client id, and
concurrent inserts at one position are ordered by ascending client id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.yjs import (
    YjsClient,
    YjsClients,
    wait_converged,
    wait_for,
    wait_synced,
)
from tests.server import LiveclassServer

ALICE, BOB, CAROL, DAVE, ERIN = 101, 202, 303, 404, 505
TRIO = {"alice": ALICE, "bob": BOB, "carol": CAROL}

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def yjs(tmp_path: Path) -> Iterator[YjsClients]:
    clients = YjsClients(tmp_path)
    yield clients
    clients.close()


def presence(name: str, x: int, y: int) -> dict[str, Any]:
    """An awareness state as docs/whiteboard.md defines it (``user`` as the server binds it to
    the token: the tests' tokens are named after their identity)."""
    return {
        "user": {"name": name, "identity": name, "color": "#336699"},
        "cursor": {"x": x, "y": y},
        "tool": "pen",
    }


def others_unseen(client: YjsClient, base: dict[str, int]) -> bool:
    """True while ``client`` has seen nothing newer than the state vector ``base`` from others."""
    own = str(client.client_id)
    return {c: n for c, n in client.state()["clocks"].items() if c != own} == {
        c: n for c, n in base.items() if c != own
    }


def test_conflicting_concurrent_offline_and_late_edits_converge_everywhere(
    make_server: Callable[..., LiveclassServer], yjs: YjsClients
) -> None:
    server = make_server()
    alice, bob, carol = yjs.open_many(server, TRIO)
    trio = [alice, bob, carol]
    wait_synced(trio)
    alice.call(
        "edit",
        ops=[
            ["array.push", "list", [f"l{i}" for i in range(10)]],
            ["text.insert", "text", 0, "hello world"],
            ["map.set", "map", "color", "#000000"],
            ["map.set", "map", "shape", "rect"],
        ],
    )
    base = wait_converged(trio)[0]["clocks"]

    # Round 1, connected: inbound messages are held back while every client makes the same
    # conflicting edits, so each edit is concurrent with the others' (none has seen another's).
    for client in trio:
        client.call("hold")
    for i, client in enumerate(trio):
        client.call(
            "edit",
            ops=[
                ["map.set", "map", "color", f"#{client.client_id:06d}"],
                ["map.set", "map", "shape", client.name],
                ["array.insert", "list", 3, [f"{client.name}@3"]],
                ["array.delete", "list", 6, 1],  # l5 (after the insert at 3), deleted by all
                ["text.insert", "text", 5, f"[{client.name}]"],
                ["text.delete", "text", 0, 1],  # the "h", deleted by all
            ],
        )
        client.call("random", seed=1000 + i, count=40, tag=client.name)
    assert all(others_unseen(c, base) for c in trio), "an edit of round 1 was not concurrent"
    for client in trio:
        client.call("release")
    states = wait_converged(trio)
    doc = states[0]["json"]
    assert doc["map"] == {"color": f"#{CAROL:06d}", "shape": "carol"}
    assert doc["list"] == [
        *["l0", "l1", "l2", "alice@3", "bob@3", "carol@3", "l3", "l4"],
        *["l6", "l7", "l8", "l9"],
    ]
    assert doc["text"] == "ello[alice][bob][carol] world"

    # A late joiner gets all of it from the server.
    dave = yjs.open(server, "dave", client_id=DAVE)
    quartet = [alice, bob, carol, dave]
    at_disconnect = wait_converged(quartet)[0]["clocks"]

    # Round 2: bob goes offline and edits; the others edit the same things online meanwhile.
    bob.call("disconnect")
    wait_for("bob offline", lambda: not bob.state()["connected"], 5)
    bob.call(
        "edit",
        ops=[
            ["map.set", "map", "color", "#b0b0b0"],
            ["array.delete", "list", doc["list"].index("l7"), 1],
            ["text.insert", "text", 0, "(bob)"],
        ],
    )
    bob.call("random", seed=2001, count=30, tag="bob-offline")
    alice.call(
        "edit",
        ops=[
            ["array.delete", "list", doc["list"].index("l7"), 1],
            ["text.insert", "text", 0, "(alice)"],
        ],
    )
    carol.call("edit", ops=[["map.set", "map", "color", "#c0c0c0"]])
    for i, client in enumerate([alice, carol, dave]):
        client.call("random", seed=2100 + i, count=30, tag=f"{client.name}-2")
    online = wait_converged([alice, carol, dave])[0]["clocks"]
    assert others_unseen(bob, at_disconnect), "bob got updates while disconnected"
    assert online[str(BOB)] == at_disconnect[str(BOB)], "bob's offline edits leaked"

    bob.call("connect")
    wait_converged(quartet)

    # A fresh client joining at the end has exactly the same document.
    erin = yjs.open(server, "erin", client_id=ERIN)
    final = wait_converged([*quartet, erin])
    doc = final[0]["json"]
    assert doc["map"] == {"color": "#c0c0c0", "shape": "carol"}  # carol (303) beats bob (202)
    assert doc["list"] == [
        *["l0", "l1", "l2", "alice@3", "bob@3", "carol@3", "l3", "l4"],
        *["l6", "l8", "l9"],
    ]
    assert doc["text"] == "(alice)(bob)ello[alice][bob][carol] world"


def test_a_late_joiner_sees_the_cursors_of_everyone_already_there(
    make_server: Callable[..., LiveclassServer], yjs: YjsClients
) -> None:
    server = make_server()
    here = yjs.open_many(server, TRIO, awareness=lambda name, _: presence(name, 10, 10))
    wait_synced(here)
    expected = {str(cid): presence(name, cid, 2 * cid) for name, cid in TRIO.items()}
    for client in here:
        client.call("awareness", state=expected[str(client.client_id)])
    for client in here:
        wait_for(
            f"{client.name} to see every cursor",
            lambda c=client: c.state()["awareness"] == expected,
            5,
        )

    dave = yjs.open(server, "dave", client_id=DAVE, awareness=presence("dave", 1, 1))
    # y-websocket clients renew their own state only every 15 s: within this wait only the
    # server's greeting can bring the existing states.
    wait_for(
        "the late joiner to see the existing cursors",
        lambda: dave.state()["awareness"] == {**expected, str(DAVE): presence("dave", 1, 1)},
        3,
    )


def test_a_killed_clients_cursor_disappears_everywhere_within_a_second(
    make_server: Callable[..., LiveclassServer], yjs: YjsClients
) -> None:
    server = make_server()
    alice, bob, carol = yjs.open_many(server, TRIO, awareness=lambda n, cid: presence(n, cid, cid))
    survivors = [alice, bob]
    wait_synced([alice, bob, carol])
    for client in [alice, bob, carol]:  # a move once all are in: no reliance on the greeting
        client.call("awareness", state=presence(client.name, 5, 5))
    for client in [alice, bob, carol]:
        wait_for(
            f"{client.name} to see three cursors",
            lambda c=client: set(c.state()["awareness"]) == {str(ALICE), str(BOB), str(CAROL)},
            5,
        )

    killed_at = time.monotonic()
    carol.kill()  # SIGKILL: no goodbye, the kernel closes the socket
    gone_after: dict[str, float] = {}
    deadline = killed_at + 3  # beyond the 1 s promise, to report how late it was
    while len(gone_after) < len(survivors) and time.monotonic() < deadline:
        for client in survivors:
            if client.name not in gone_after and str(CAROL) not in client.state()["awareness"]:
                gone_after[client.name] = time.monotonic() - killed_at
        time.sleep(0.005)
    assert set(gone_after) == {"alice", "bob"}, (
        f"carol's cursor still shown after 3 s: {gone_after}"
    )
    assert max(gone_after.values()) < 1.0, f"carol's cursor removed too late (s): {gone_after}"
    for client in survivors:
        assert set(client.state()["awareness"]) == {str(ALICE), str(BOB)}
        removals = [e for e in client.call("log")["awareness"] if CAROL in e["removed"]]
        assert len(removals) == 1

    dave = yjs.open(server, "dave", client_id=DAVE, awareness=presence("dave", 1, 1))
    wait_synced([dave])
    wait_for(
        "the late joiner to see alice's and bob's cursors",
        lambda: set(dave.state()["awareness"]) == {str(ALICE), str(BOB), str(DAVE)},
        3,
    )


def test_updates_every_client_received_survive_a_server_sigkill(
    make_server: Callable[..., LiveclassServer], yjs: YjsClients
) -> None:
    server = make_server()
    writers = yjs.open_many(server, {f"w{i}": 1000 + i for i in range(4)})
    wait_synced(writers)
    per_writer = 50
    for client in writers:
        client.call("records", prefix=client.name, count=per_writer, identity=client.name)
    keys = {f"w{i}-{n}" for i in range(4) for n in range(per_writer)}  # 200 updates

    def has_all(client: YjsClient) -> bool:
        records = client.state()["json"]["records"]
        return len(records) == len(keys) and {r["key"] for r in records} == keys

    for client in writers:
        wait_for(f"{client.name} to confirm all 200 updates", lambda c=client: has_all(c), 15)
    confirmed = wait_converged(writers)[0]

    server.kill()
    for client in writers:  # no client may bring the data back after the restart
        client.kill()
    server.start()

    fresh = yjs.open(server, "fresh", client_id=2000)
    wait_synced([fresh])
    wait_for("the fresh client to see all 200 updates", lambda: has_all(fresh), 10)
    after = fresh.state()
    assert after["sv"] == confirmed["sv"]
    assert after["json"]["records"] == confirmed["json"]["records"]


def test_updates_reach_everyone_else_and_are_never_echoed_to_their_sender(
    make_server: Callable[..., LiveclassServer], yjs: YjsClients
) -> None:
    server = make_server()
    alice, bob, carol = yjs.open_many(server, TRIO)
    everyone = [alice, bob, carol]
    wait_synced(everyone)
    before = {c.name: len(c.call("updates")["updates"]) for c in everyone}
    alice.call("editEach", ops=[["map.set", "map", f"a{i}", i] for i in range(20)])
    bob.call("editEach", ops=[["text.insert", "text", 0, f"b{i}"] for i in range(15)])
    wait_converged(everyone)
    # Bob's last word comes after everything alice sent: once alice has it, any echo of her own
    # updates would have arrived before it.
    bob.call("editEach", ops=[["map.set", "map", "done", True]])
    wait_converged(everyone)

    got = {c.name: c.call("updates")["updates"][before[c.name] :] for c in everyone}
    for client in everyone:
        echoes = [u for u in got[client.name] if client.client_id in u]
        assert echoes == [], f"{client.name} got its own updates back: {len(echoes)}"
    assert got["alice"] == [[BOB]] * 16
    assert got["bob"] == [[ALICE]] * 20
    assert sorted(map(tuple, got["carol"])) == [(ALICE,)] * 20 + [(BOB,)] * 16
