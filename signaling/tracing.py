"""Optional OpenTelemetry traces of a command's path through a node (off by default).

``liveclass serve --otlp-endpoint URL`` exports spans over OTLP/HTTP (protobuf, the
``/v1/traces`` path of an OpenTelemetry Collector, Jaeger or Tempo) with the ``tracing`` extra
installed (``pip install 'liveclass[tracing]'``: opentelemetry-sdk and the OTLP/HTTP exporter,
pinned). Without the flag nothing here imports OpenTelemetry and every call is a no-op, so the
hot path pays one attribute check.

The spans of one command (names are stable; docs/operations.md, "Tracing"):

- ``liveclass.command`` (kind SERVER): from the frame read to the command's answer (its ack or
  error queued); ``liveclass.command.type`` is the wire type (``chat.send``...), and
  ``liveclass.room`` the room. The root of the trace.
- ``liveclass.batch``: the batch the command was decided in (:mod:`signaling.edge.batch`):
  commands are decided and appended together, so the batch is the child of the first traced
  command in it and *links* to the others (``liveclass.batch.commands`` counts them all).
  Its children, in order: ``liveclass.decide``, ``liveclass.append`` (the store's write; on
  Redis its child ``liveclass.replica_wait`` is the ``WAIT`` for replicas), ``liveclass.deliver``
  (the events and answers queued to this node's connections) and ``liveclass.publish`` (the
  records handed to the other nodes).
- ``liveclass.media`` (kind SERVER): one media frame (``liveclass.media.type``: publish,
  subscribe, answer...); its child ``liveclass.sfu.call`` (kind CLIENT, ``rpc.method``) is each
  call to an SFU worker process over its RPC connection.

No span carries a token, a display name or a message body: the attributes are the ones above
and the node id (the resource's ``service.instance.id``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

#: The instrumentation scope's name.
SCOPE = "liveclass"

_tracer: Any = None
_provider: Any = None


class TracingUnavailable(RuntimeError):
    """``--otlp-endpoint`` was given but the ``tracing`` extra is not installed."""


def enabled() -> bool:
    """Whether spans are recorded (``--otlp-endpoint`` was given, or :func:`use` was called)."""
    return _tracer is not None


def configure(endpoint: str, node_id: str, *, service_name: str = "liveclass") -> None:
    """Export spans to the OTLP/HTTP collector at ``endpoint`` (``http(s)://host:port``; the
    ``/v1/traces`` path is added unless the URL has a path), batched in the background.

    Raises:
        TracingUnavailable: the opentelemetry packages are not installed.
    """
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise TracingUnavailable(
            "--otlp-endpoint needs the tracing extra: pip install 'liveclass[tracing]'"
        ) from exc
    url = endpoint.rstrip("/")
    if url.count("/") <= 2:  # scheme://host:port only
        url += "/v1/traces"
    resource = Resource.create(
        {"service.name": service_name, "service.instance.id": node_id or "liveclass"}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    use(provider)


def use(provider: Any) -> None:
    """Record spans with ``provider`` (an ``opentelemetry.sdk.trace.TracerProvider``; tests pass
    one with an in-memory exporter). ``None`` turns tracing off."""
    global _tracer, _provider
    _provider = provider
    _tracer = None if provider is None else provider.get_tracer(SCOPE)


def shutdown() -> None:
    """Export what is buffered and stop (at the end of a drain)."""
    if _provider is not None:
        _provider.shutdown()
    use(None)


def start_command(command_type: str, room: str) -> Any:
    """Start a ``liveclass.command`` span (None when tracing is off); end it with :func:`end`."""
    if _tracer is None:
        return None
    from opentelemetry.trace import SpanKind

    return _tracer.start_span(
        "liveclass.command",
        kind=SpanKind.SERVER,
        attributes={"liveclass.command.type": command_type, "liveclass.room": room},
    )


def end(span: Any, error_code: str | None = None) -> None:
    """End a span from :func:`start_command` or :func:`start` (None is ignored), marking an
    error answer with its code."""
    if span is None:
        return
    if error_code is not None:
        from opentelemetry.trace import Status, StatusCode

        span.set_attribute("liveclass.error", error_code)
        span.set_status(Status(StatusCode.ERROR, error_code))
    span.end()


def start(name: str) -> Any:
    """Start a child span of the current one without making it current (None when tracing is
    off or no span is current); end it with :func:`end`."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    if not trace.get_current_span().get_span_context().is_valid:
        return None
    return _tracer.start_span(name)


@contextlib.contextmanager
def batch(commands: Sequence[Any], count: int, room: str) -> Iterator[None]:
    """The ``liveclass.batch`` span, current inside the block: the child of the first span in
    ``commands`` (the batch's traced commands' spans, None for untraced ones), linked to the
    rest; ``count`` is every command in the batch. A no-op when none is traced."""
    traced = [span for span in commands if span is not None]
    if _tracer is None or not traced:
        yield
        return
    from opentelemetry import trace

    parent = trace.set_span_in_context(traced[0])
    links = [trace.Link(span.get_span_context()) for span in traced[1:]]
    with _tracer.start_as_current_span(
        "liveclass.batch",
        context=parent,
        links=links,
        attributes={"liveclass.room": room, "liveclass.batch.commands": count},
    ):
        yield


@contextlib.contextmanager
def span(name: str, **attributes: str | int) -> Iterator[None]:
    """A child span of the current one (``liveclass.decide``...), current inside the block. A
    no-op when tracing is off or no span is current (work no traced command led to)."""
    if _tracer is None:
        yield
        return
    from opentelemetry import trace

    if not trace.get_current_span().get_span_context().is_valid:
        yield
        return
    with _tracer.start_as_current_span(name, attributes=attributes):
        yield


@contextlib.contextmanager
def root(name: str, kind: str, **attributes: str | int) -> Iterator[None]:
    """A new trace's root span (``liveclass.media``), current inside the block; ``kind`` is an
    ``opentelemetry.trace.SpanKind`` name (``SERVER``). A no-op when tracing is off."""
    if _tracer is None:
        yield
        return
    from opentelemetry import context, trace

    with _tracer.start_as_current_span(
        name,
        context=context.Context(),
        kind=trace.SpanKind[kind],
        attributes=attributes,
    ):
        yield


@contextlib.contextmanager
def client(name: str, **attributes: str | int) -> Iterator[None]:
    """A CLIENT child span of the current one (an outgoing call, ``liveclass.sfu.call``)."""
    if _tracer is None:
        yield
        return
    from opentelemetry import trace

    if not trace.get_current_span().get_span_context().is_valid:
        yield
        return
    with _tracer.start_as_current_span(name, kind=trace.SpanKind.CLIENT, attributes=attributes):
        yield
