"""liveclass.logs: JSON lines and text lines with the node, room and connection ids, the ``auto``
format rule, and the chattiest libraries held at WARNING below debug."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from liveclass import logs
from liveclass.cli import build_parser
from liveclass.config import ConfigError, ServeConfig
from signaling.log_context import CONNECTION, ROOM, in_room, unbound


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in ("aioice", "websockets.server")}
    process = dict(logs._process)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in quiet.items():
        logging.getLogger(name).setLevel(saved)
    logs._process.clear()
    logs._process.update(process)


def record(msg: str, *args: object, **kwargs: object) -> logging.LogRecord:
    logger = logging.getLogger("signaling.node")
    return logger.makeRecord(logger.name, logging.INFO, __file__, 1, msg, args, None, **kwargs)  # type: ignore[arg-type]


def test_a_json_line_has_time_level_logger_message_and_the_bound_ids() -> None:
    logs.set_process(node="n1")
    room, connection = ROOM.set("class"), CONNECTION.set("c0ffee")
    try:
        line = logs.JsonFormatter().format(
            record("join: %s", "ada", extra={"identity": "ada", "role": "student"})
        )
    finally:
        ROOM.reset(room)
        CONNECTION.reset(connection)
    assert "\n" not in line
    value = json.loads(line)
    assert value["ts"].endswith("Z") and value["ts"][10] == "T"
    assert value["level"] == "INFO"
    assert value["logger"] == "signaling.node"
    assert value["msg"] == "join: ada"
    assert value["node"] == "n1"
    assert value["room"] == "class"
    assert value["connection"] == "c0ffee"
    assert value["identity"] == "ada" and value["role"] == "student"


def test_a_json_line_has_no_ids_it_does_not_know() -> None:
    value = json.loads(logs.JsonFormatter().format(record("started")))
    assert set(value) == {"ts", "level", "logger", "msg"}


def test_unbound_drops_the_connection_and_keeps_the_room() -> None:
    room, connection = ROOM.set("class"), CONNECTION.set("c0ffee")
    try:
        with unbound():
            value = json.loads(logs.JsonFormatter().format(record("batch")))
        assert CONNECTION.get() == "c0ffee"
    finally:
        ROOM.reset(room)
        CONNECTION.reset(connection)
    assert value["room"] == "class" and "connection" not in value


def test_an_exception_is_one_exc_string_on_the_same_line() -> None:
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        logger = logging.getLogger("x")
        rec = logger.makeRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = logs.JsonFormatter().format(rec)
    assert line.count("\n") == 0
    value = json.loads(line)
    assert "Traceback" in value["exc"] and "RuntimeError: boom" in value["exc"]


def test_a_text_line_carries_the_ids_after_the_message() -> None:
    connection = CONNECTION.set("c0ffee")
    try:
        line = logs.TextFormatter().format(record("leave: %s", "ada"))
    finally:
        CONNECTION.reset(connection)
    assert line.endswith("INFO signaling.node leave: ada connection=c0ffee")


def test_an_extra_string_is_redacted_like_the_message() -> None:
    value = json.loads(
        logs.JsonFormatter().format(record("request", extra={"path": "/ws?token=abc.def"}))
    )
    assert value["path"] == "/ws?token=<redacted>"


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_auto_is_text_on_a_terminal_and_json_otherwise() -> None:
    assert logs.resolve_format("auto", _Stream(tty=True)) == "text"
    assert logs.resolve_format("auto", _Stream(tty=False)) == "json"
    assert logs.resolve_format("json", _Stream(tty=True)) == "json"
    assert logs.resolve_format("text", _Stream(tty=False)) == "text"
    with pytest.raises(ValueError):
        logs.resolve_format("xml")


@pytest.mark.parametrize(("level", "quiet"), [("info", logging.WARNING), ("debug", 0)])
def test_aioice_and_websockets_are_held_at_warning_unless_debug(level: str, quiet: int) -> None:
    assert logs.setup_logging(level, "json") == "json"
    assert logging.getLogger("aioice").level == quiet
    assert logging.getLogger("websockets.server").level == quiet
    [handler] = logging.getLogger().handlers
    assert isinstance(handler.formatter, logs.JsonFormatter)


def test_log_format_and_audit_log_come_from_flags_then_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def serve(*argv: str) -> ServeConfig:
        args = build_parser().parse_args(["serve", "--data-dir", str(tmp_path), *argv])
        return ServeConfig.from_args(args)

    assert (serve().log_format, serve().audit_log) == ("auto", "")
    monkeypatch.setenv("LIVECLASS_LOG_FORMAT", "text")
    monkeypatch.setenv("LIVECLASS_AUDIT_LOG", "-")
    assert (serve().log_format, serve().audit_log) == ("text", "-")
    assert serve("--log-format", "JSON").log_format == "json"
    with pytest.raises(ConfigError, match="--log-format"):
        serve("--log-format", "xml")


def test_an_extra_object_is_left_out_rather_than_written_as_its_repr() -> None:
    class Connection:
        def __repr__(self) -> str:
            return "<Connection token=eyJhbGciOi.payload.sig>"

    value = json.loads(
        logs.JsonFormatter().format(record("closed", extra={"websocket": Connection(), "n": 3}))
    )
    assert "websocket" not in value and value["n"] == 3


def test_in_room_binds_the_room_without_the_connection_and_restores_both() -> None:
    room, connection = ROOM.set("a"), CONNECTION.set("c0ffee")
    try:
        with in_room("b"):
            value = json.loads(logs.JsonFormatter().format(record("subscribed")))
        assert (ROOM.get(), CONNECTION.get()) == ("a", "c0ffee")
    finally:
        ROOM.reset(room)
        CONNECTION.reset(connection)
    assert value["room"] == "b" and "connection" not in value
