"""An append whose reply a node reads late is in the log once, and acknowledged as such.

The router's Redis client sends a pipeline once more when its reply is not read within the read
timeout (``retry=Retry(NoBackoff(), 1)``, 2 s), and an append's pipeline is the append script,
``WAIT`` and the wake-up. When the first one committed, the second finds the log moved by that
very append. Taken for a conflict, the hub would catch up, decide the command again and append it
a second time; the append script recognizes its own nonce instead and answers as the commit it
was. A node that stalls past the read timeout while an append is in flight (CPU starvation, a
long pause: SIGSTOP here) sends the pipeline again deterministically.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from clients import ClassroomClient
from signaling.redis_store import RedisEventStore
from tests.redis_cluster import RedisCluster
from tests.server import LiveclassServer


async def test_a_chat_line_whose_append_reply_is_read_late_is_in_the_log_once(
    cluster: RedisCluster, tmp_path: Path
) -> None:
    # Each append's reply waits 1 s for a second replica that does not exist, so the test can
    # stop the node while its append is in flight.
    slow = ("--redis-replicas", "2", "--redis-replica-wait-ms", "1000")
    node = LiveclassServer(
        tmp_path / "node", ["--redis-cluster", cluster.seeds, "--no-media", *slow]
    )
    node.data_dir.mkdir(parents=True)
    node.start()
    assert node.proc is not None
    room = "late-reply"
    teacher = ClassroomClient(
        node.ws_url, node.token("teacher", "teacher", room), room, reconnect=False
    )
    try:
        await teacher.connect()
        chat = asyncio.create_task(teacher.request("chat.send", 20, text="once", to=None))
        await asyncio.sleep(0.3)  # the node has sent the append; its reply comes at 1 s
        node.proc.send_signal(signal.SIGSTOP)
        await asyncio.sleep(2.2)  # past the 2 s read timeout, counted from the send
        node.proc.send_signal(signal.SIGCONT)
        ack = await chat
        store = RedisEventStore.connect(cluster.seeds)
        try:
            records = await store.read(room, 0)
        finally:
            await store.close()
    finally:
        node.proc.send_signal(signal.SIGCONT)
        await teacher.close()
        node.stop()
    lines = [r.id for r in records if r.event.type == "chat.message"]
    assert lines == ack["ids"], f"one chat line sent, acknowledged as {ack['ids']}; log: {lines}"
