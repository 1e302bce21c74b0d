"""The ``liveclass`` command: ``serve`` runs a node, ``sfu`` runs an SFU worker process,
``token`` mints an access token, ``admin`` calls the operators' admin API."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import resource
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from rooms import CLASS_NAME_MAX, Role
from signaling import ClusterUnavailable, Grants, mint, tracing
from signaling.audit import AuditLog
from signaling.sfu_registry import RegistryUnavailable
from signaling.tls import ServerTls, TlsFileError

from .admin_cli import add_admin_parser
from .config import (
    DATA_DIR,
    KEY_OPTIONS,
    SERVE_OPTIONS,
    SFU_OPTIONS,
    ConfigError,
    ServeConfig,
    SfuConfig,
    add_options,
    load_keyring,
    resolve,
)
from .data_dir import private_umask, tighten
from .logs import set_process, setup_logging
from .redaction import redact
from .wiring import build_node, build_sfu_worker

log = logging.getLogger("liveclass")

_TTL = re.compile(r"^(\d+)([smhd]?)$")
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> int:
    """``90``, ``90s``, ``30m``, ``2h``, ``1d`` -> seconds.

    Raises:
        argparse.ArgumentTypeError: anything else, or zero.
    """
    match = _TTL.match(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"ttl {text!r}: use e.g. 90s, 30m, 2h or 1d")
    return int(match.group(1)) * _TTL_UNITS[match.group(2)]


def _reload_tls_on_sighup(tls: ServerTls | None) -> None:
    """SIGHUP reads ``--tls-cert``/``--tls-key`` again (a renewed certificate): new connections
    get it, open ones keep theirs; a pair that does not load is logged and the old one kept."""
    if tls is None:
        return

    def reload() -> None:
        try:
            tls.reload()
        except TlsFileError as exc:
            log.error("SIGHUP: kept the TLS certificate in use: %s", exc)
            return
        log.info("SIGHUP: reloaded the TLS certificate %s", tls.cert_file)

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


#: The format the logs were set up in (:func:`liveclass.logs.setup_logging`): json or text.
_log_format = "text"


def _announce(message: str, **fields: str) -> None:
    """A start-up line: printed for a person at a terminal (text logs), a log record (with
    ``fields``) when the logs are JSON lines, so the output stays one JSON object per line."""
    if _log_format == "json":
        log.info("%s", message, extra=fields)
    else:
        print(message, flush=True)


def _fatal(message: str) -> None:
    """Why the process exits, once logging is set up: a CRITICAL record when the logs are JSON
    lines (stderr stays one JSON object per line), else a line on stderr."""
    if _log_format == "json":
        log.critical("%s", message)
    else:
        print(message, file=sys.stderr, flush=True)


def _bound(sockets: Sequence[socket.socket]) -> str:
    """The addresses a server listens on, ``host:port`` (``[host]:port`` for IPv6)."""
    shown = []
    for sock in sockets:
        host, port = sock.getsockname()[:2]
        shown.append(f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}")
    return ", ".join(dict.fromkeys(shown))


async def _serve(config: ServeConfig, audit: AuditLog) -> None:
    node = build_node(config)
    node_id = getattr(node.bus, "node_id", None) or socket.gethostname()
    set_process(node=node_id)
    audit.node = node_id
    node.audit = audit
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _reload_tls_on_sighup(config.tls)
    server = await node.start()
    url = config.http.public_url
    if config.cluster is not None:
        where = f"node {node_id} on Redis Cluster {redact(config.cluster.seeds)}"
    else:
        where = f"node {node_id}, data in {config.data_dir.resolve()}"
    bound = _bound(list(server.sockets))
    _announce(
        f"liveclass serving on {bound}, public URL {url} ({where})",
        event="serving",
        listen=bound,
        public_url=url,
    )
    if config.http.dev:
        _announce(f"open {url}/dev to start a class")
    else:
        _announce(
            f"open a join link: {url}/#token=<token from "
            "'liveclass token --room R --identity I --name N --role teacher'>"
        )
    try:
        await stop.wait()
        log.info("stopping: telling clients to reconnect")
    finally:
        await node.drain()
        close_media = getattr(node.media, "close", None)
        if config.cluster is not None and close_media is not None:
            await close_media()  # the RPC connections to the SFU workers
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), 5)
        except TimeoutError:  # an OSError: it must not read as "cannot serve"
            log.warning("stopping: connections still open after 5 s were dropped")


def _setup_logging(level: str, format_name: str) -> None:
    global _log_format
    _log_format = setup_logging(level, format_name)


def cmd_serve(args: argparse.Namespace) -> int:
    private_umask()  # before anything in the data directory is made (the secret, the stores)
    try:
        config = ServeConfig.from_args(args)
    except ConfigError as exc:
        print(f"liveclass: {exc}", file=sys.stderr)
        return 2
    _setup_logging(config.log_level, config.log_format)
    _raise_fd_limit()
    if config.otlp_endpoint:
        node_id = config.cluster.node_id if config.cluster is not None else ""
        try:
            tracing.configure(config.otlp_endpoint, node_id)
        except tracing.TracingUnavailable as exc:
            _fatal(f"liveclass: {exc}")
            return 2
    try:
        for change in tighten(config.data_dir):
            log.warning("data directory was readable by others; tightened %s", change)
    except OSError as exc:
        _fatal(f"liveclass: cannot secure the data directory: {exc}")
        return 1
    try:
        audit = AuditLog.open(config.audit_log)
    except OSError as exc:
        _fatal(f"liveclass: cannot open the audit log: {exc}")
        return 1
    import uvloop

    try:
        uvloop.run(_serve(config, audit))
        tracing.shutdown()  # export the spans still buffered
    except ClusterUnavailable as exc:
        seeds = redact(config.cluster.seeds) if config.cluster is not None else ""
        _fatal(f"liveclass: cannot reach the Redis Cluster at {seeds}: {exc}")
        return 1
    except OSError as exc:
        _fatal(f"liveclass: cannot serve: {exc}")
        return 1
    return 0


async def _run_sfu(config: SfuConfig, audit: AuditLog) -> None:
    worker = build_sfu_worker(config, audit)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Drain (no new room placed here; its rooms stay until they end), and undo it.
    loop.add_signal_handler(signal.SIGUSR1, worker.request_drain, True)
    loop.add_signal_handler(signal.SIGUSR2, worker.request_drain, False)
    _reload_tls_on_sighup(config.tls)
    await worker.start()
    shown = f"[{config.host}]" if ":" in config.host else config.host
    _announce(
        f"liveclass sfu worker {config.worker_id} serving RPC on {shown}:{config.port}, "
        f"nodes reach it at {config.rpc_url} (registered on Redis Cluster "
        f"{redact(config.seeds)}; nodes' tokens verified with key ids "
        f"{', '.join(config.keyring.secrets)})",
        event="serving",
        listen=f"{shown}:{config.port}",
        rpc_url=config.rpc_url,
    )
    try:
        await stop.wait()
        log.info("stopping: leaving placement; nodes move this worker's rooms")
    finally:
        await worker.close()


def cmd_sfu(args: argparse.Namespace) -> int:
    try:
        config = SfuConfig.from_args(args)
    except ConfigError as exc:
        print(f"liveclass: {exc}", file=sys.stderr)
        return 2
    _setup_logging(config.log_level, config.log_format)
    set_process(worker=config.worker_id)
    _raise_fd_limit()
    try:
        audit = AuditLog.open(config.audit_log, node=config.worker_id)
    except OSError as exc:
        _fatal(f"liveclass: cannot open the audit log: {exc}")
        return 1
    import uvloop

    try:
        uvloop.run(_run_sfu(config, audit))
    except ClusterUnavailable as exc:
        _fatal(f"liveclass: cannot reach the Redis Cluster at {redact(config.seeds)}: {exc}")
        return 1
    except RegistryUnavailable as exc:
        _fatal(f"liveclass: cannot register the worker: {exc}")
        return 1
    except OSError as exc:
        _fatal(f"liveclass: cannot serve: {exc}")
        return 1
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    private_umask()  # it may make the data directory and its secret
    try:
        values = resolve(args, (*KEY_OPTIONS, DATA_DIR))
        keyring = load_keyring(values, Path(values["data_dir"]))
    except ConfigError as exc:
        print(f"liveclass: {exc}", file=sys.stderr)
        return 2
    class_name = args.class_name.strip()
    if len(class_name) > CLASS_NAME_MAX:
        print(f"liveclass: --class-name is at most {CLASS_NAME_MAX} characters", file=sys.stderr)
        return 2
    try:
        token = mint(
            keyring,
            identity=args.identity,
            name=args.name or args.identity,
            grants=Grants(args.room, Role(args.role), args.can_publish, args.can_subscribe),
            ttl_s=args.ttl,
            extra={"class_name": class_name} if class_name else None,
        )
    except ValueError as exc:
        print(f"liveclass: {exc}", file=sys.stderr)
        return 2
    print(f"{args.link.rstrip('/')}/#token={token}" if args.link else token)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liveclass", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a classroom server (embedded default: one process)")
    add_options(serve, SERVE_OPTIONS + KEY_OPTIONS)
    serve.set_defaults(func=cmd_serve)
    sfu = sub.add_parser(
        "sfu", help="run an SFU worker process (one per core) registered on a Redis Cluster"
    )
    add_options(sfu, SFU_OPTIONS + KEY_OPTIONS)
    sfu.set_defaults(func=cmd_sfu)
    token = sub.add_parser("token", help="mint an access token (JWT, HS256)")
    token.add_argument("--room", required=True)
    token.add_argument("--identity", required=True, help="unique in the room")
    token.add_argument("--name", default="", help="display name (default: the identity)")
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument(
        "--class-name",
        default="",
        help="the class's display name (claim class_name); a staff token names the room once",
    )
    token.add_argument("--ttl", type=parse_ttl, default=parse_ttl("2h"), help="e.g. 90m, 2h")
    token.add_argument("--can-publish", action=argparse.BooleanOptionalAction, default=True)
    token.add_argument("--can-subscribe", action=argparse.BooleanOptionalAction, default=True)
    token.add_argument("--link", default="", help="print a join link on this base URL instead")
    add_options(token, (*KEY_OPTIONS, DATA_DIR))
    token.set_defaults(func=cmd_token)
    add_admin_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
