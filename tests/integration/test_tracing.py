"""OpenTelemetry traces of a command's path: a real ``liveclass serve --otlp-endpoint`` exports
over OTLP/HTTP to a collector run by the test in this process (opentelemetry-proto decodes what
it receives), and the spans and their parent links are those docs/operations.md names."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from clients import ClassroomClient
from clients.sdk import CommandFailed
from tests.server import LiveclassServer

pytestmark = pytest.mark.timeout(60)

#: How long the test waits for the batched exports (the server exports every 100 ms).
EXPORT_WAIT_S = 10.0


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: bytes
    span_id: bytes
    parent: bytes
    kind: int
    links: tuple[bytes, ...]
    attributes: dict[str, object]
    error: bool


class Collector:
    """An OTLP/HTTP trace receiver on loopback: what ``POST /v1/traces`` brought, as spans."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.paths: list[str] = []
        self.resources: list[dict[str, object]] = []
        self._lock = threading.Condition()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                collector.receive(self.path, body)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def receive(self, path: str, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        with self._lock:
            self.paths.append(path)
            for resource_spans in request.resource_spans:
                self.resources.append(
                    {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                )
                for scope_spans in resource_spans.scope_spans:
                    for s in scope_spans.spans:
                        self.spans.append(
                            Span(
                                name=s.name,
                                trace_id=s.trace_id,
                                span_id=s.span_id,
                                parent=s.parent_span_id,
                                kind=s.kind,
                                links=tuple(link.span_id for link in s.links),
                                attributes={a.key: _value(a.value) for a in s.attributes},
                                error=s.status.code == 2,
                            )
                        )
            self._lock.notify_all()

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        """Block until ``condition()`` holds after an export, at most EXPORT_WAIT_S."""
        with self._lock:
            assert self._lock.wait_for(condition, EXPORT_WAIT_S), what

    def named(self, name: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.name == name]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _value(value: object) -> object:
    kind = value.WhichOneof("value")  # type: ignore[attr-defined]
    return getattr(value, kind) if kind else None


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
        assert span.kind == 2  # SPAN_KIND_SERVER
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
    assert all(s.parent == b"" and s.kind == 2 for s in media.values())
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
