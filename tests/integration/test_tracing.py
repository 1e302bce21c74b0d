"""OpenTelemetry traces of a command's path: a real ``liveclass serve --otlp-endpoint`` exports
over OTLP/HTTP to a collector run by the test in this process (opentelemetry-proto decodes what
it receives), and the spans and their parent links are those docs/operations.md names."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from clients import ClassroomClient
from clients.sdk import CommandFailed
from tests.otlp import SERVER, Collector, Span
from tests.server import LiveclassServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def collector() -> Iterator[Collector]:
    made = Collector()
    yield made
    made.close()


async def test_a_commands_spans_follow_its_path_and_link_the_batch_it_was_decided_in(
    make_server: Callable[..., LiveclassServer],
    collector: Collector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # export every 100 ms (the SDK's env)
    server = make_server("--otlp-endpoint", collector.url, "--rate-burst", "50")
    token = server.token("t", "teacher")
    teacher = ClassroomClient(server.ws_url, token, "class", reconnect=False)
    await teacher.connect()
    secret_text = "a message body no span may carry"
    try:
        # Sent together: the node decides them in fewer batches than commands.
        answers = await asyncio.gather(*(teacher.chat(f"{secret_text} {i}") for i in range(12)))
        assert len(answers) == 12
        await teacher.request("room.lock", locked=True)
        with pytest.raises(CommandFailed) as refusal:
            await teacher.request("poll.close", poll_id=99)
        assert refusal.value.code == "no_such_poll"
        await teacher.subscribe_media()
        with pytest.raises(CommandFailed):
            await teacher.unpublish_media("camera")  # nothing published
    finally:
        await teacher.close()

    def commands() -> list[Span]:
        return collector.named("liveclass.command")

    def batched() -> bool:
        """Every command's span and its batch's (which ends after its steps) arrived."""
        batches = collector.named("liveclass.batch")
        in_batches = {b.parent for b in batches} | {link for b in batches for link in b.links}
        return (
            len(commands()) >= 14
            and all(c.span_id in in_batches for c in commands())
            and len(collector.named("liveclass.media")) >= 2
        )

    await asyncio.to_thread(collector.wait_until, batched, "every command's batch was exported")
    assert set(collector.paths) == {"/v1/traces"}
    assert {r.get("service.name") for r in collector.resources} == {"liveclass"}

    by_id = {s.span_id: s for s in collector.spans}
    chats = [s for s in commands() if s.attributes["liveclass.command.type"] == "chat.send"]
    assert len(chats) == 12
    for span in commands():
        assert span.parent == b"", "a command's span is the root of its trace"
        assert span.kind == SERVER
        assert span.attributes["liveclass.room"] == "class"
    [refused] = [s for s in commands() if s.attributes["liveclass.command.type"] == "poll.close"]
    assert refused.error and refused.attributes["liveclass.error"] == "no_such_poll"

    # Each command is the parent of its batch or linked from it, never both, never neither.
    batches = collector.named("liveclass.batch")
    parent_of = {b.parent: b for b in batches}
    linked_from = {link: b for b in batches for link in b.links}
    for span in commands():
        assert (span.span_id in parent_of) != (span.span_id in linked_from), span
    for batch in batches:
        parent = by_id[batch.parent]
        assert parent.name == "liveclass.command" and batch.trace_id == parent.trace_id
        assert batch.attributes["liveclass.batch.commands"] == 1 + len(batch.links)
    assert len(batches) < len(commands()), "no two commands were decided in one batch"
    assert any(b.links for b in batches)

    # A batch's steps are its children, in the path's order.
    for batch in batches:
        steps = sorted(
            (s for s in collector.spans if s.parent == batch.span_id), key=lambda s: s.span_id
        )
        names = {s.name for s in steps}
        if batch.attributes["liveclass.batch.commands"] == 1 and by_id[batch.parent].error:
            assert names == {"liveclass.decide"}, "a refused command appends nothing"
            continue
        assert names == {
            "liveclass.decide",
            "liveclass.append",
            "liveclass.deliver",
            "liveclass.publish",
        }
        for step in steps:
            assert step.trace_id == batch.trace_id

    # Media frames are traced on their own (in one process the SFU is called directly; a
    # worker process's calls are liveclass.sfu.call children, docs/operations.md).
    media = {s.attributes["liveclass.media.type"]: s for s in collector.named("liveclass.media")}
    assert set(media) == {"media.subscribe", "media.unpublish"}
    assert all(s.parent == b"" and s.kind == SERVER for s in media.values())
    assert media["media.unpublish"].error and not media["media.subscribe"].error

    # No span carries a token, a display name or a message body.
    for span in collector.spans:
        for value in map(str, span.attributes.values()):
            assert secret_text not in value
            assert not any(part in value for part in token.split("."))


async def test_a_server_without_the_endpoint_exports_nothing_and_a_bad_endpoint_is_refused(
    make_server: Callable[..., LiveclassServer], collector: Collector
) -> None:
    server = make_server()
    teacher = ClassroomClient(server.ws_url, server.token("t", "teacher"), "class", reconnect=False)
    await teacher.connect()
    try:
        await teacher.chat("hello")
    finally:
        await teacher.close()
    server.stop()  # a traced server exports what it holds when it stops
    assert collector.spans == [] and collector.paths == []

    bad = LiveclassServer(server.data_dir / "bad", args=("--otlp-endpoint", "collector:4318"))
    bad.data_dir.mkdir()
    with pytest.raises(RuntimeError):
        bad.start()
    assert "--otlp-endpoint" in bad.log()
