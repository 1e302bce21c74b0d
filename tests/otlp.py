"""An OpenTelemetry collector for tests: an OTLP/HTTP trace receiver on loopback, in the test's
process, that decodes what a ``liveclass serve --otlp-endpoint`` exports (opentelemetry-proto)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

#: How long :meth:`Collector.wait_until` waits for the batched exports.
EXPORT_WAIT_S = 10.0
#: ``Span.kind`` values (opentelemetry-proto's SpanKind).
SERVER, CLIENT = 2, 3


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
