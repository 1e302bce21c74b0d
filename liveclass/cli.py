"""The ``liveclass`` command: ``serve`` runs a node, ``sfu`` runs an SFU worker process,
``token`` mints an access token, ``admin`` calls the operators' admin API."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import resource
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from rooms import CLASS_NAME_MAX, Role
from signaling import ClusterUnavailable, Grants, mint
from signaling.sfu_registry import RegistryUnavailable

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
from .redaction import redact, redact_handlers
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


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _serve(config: ServeConfig) -> None:
    node = build_node(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await node.start()
    url = config.http.public_url
    if config.cluster is not None:
        where = f"node {node.bus.node_id} on Redis Cluster {redact(config.cluster.seeds)}"  # type: ignore[attr-defined]
    else:
        where = f"data in {config.data_dir.resolve()}"
    print(f"liveclass serving on {url} ({where})", flush=True)
    if config.http.dev:
        print(f"open {url}/dev to start a class", flush=True)
    else:
        print(
            f"open a join link: {url}/#token=<token from "
            "'liveclass token --room R --identity I --name N --role teacher'>",
            flush=True,
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
        await asyncio.wait_for(server.wait_closed(), 5)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    redact_handlers()  # no token in any line, at any level (liveclass/redaction.py)
    if level.lower() != "debug":
        # websockets logs every connection at INFO: a 5,000-student class would fill the log.
        logging.getLogger("websockets.server").setLevel(logging.WARNING)
        # aioice logs every ICE candidate and check (participants' addresses) at INFO.
        logging.getLogger("aioice").setLevel(logging.WARNING)


def cmd_serve(args: argparse.Namespace) -> int:
    private_umask()  # before anything in the data directory is made (the secret, the stores)
    try:
        config = ServeConfig.from_args(args)
    except ConfigError as exc:
        print(f"liveclass: {exc}", file=sys.stderr)
        return 2
    _setup_logging(config.log_level)
    _raise_fd_limit()
    try:
        for change in tighten(config.data_dir):
            log.warning("data directory was readable by others; tightened %s", change)
    except OSError as exc:
        print(f"liveclass: cannot secure the data directory: {exc}", file=sys.stderr)
        return 1
    import uvloop

    try:
        uvloop.run(_serve(config))
    except ClusterUnavailable as exc:
        seeds = redact(config.cluster.seeds) if config.cluster is not None else ""
        print(f"liveclass: cannot reach the Redis Cluster at {seeds}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"liveclass: cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0


async def _run_sfu(config: SfuConfig) -> None:
    worker = build_sfu_worker(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await worker.start()
    print(
        f"liveclass sfu worker {config.worker_id} serving RPC on {config.rpc_url} "
        f"(registered on Redis Cluster {redact(config.seeds)}; nodes' tokens verified with key ids "
        f"{', '.join(config.keyring.secrets)})",
        flush=True,
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
    _setup_logging(config.log_level)
    _raise_fd_limit()
    import uvloop

    try:
        uvloop.run(_run_sfu(config))
    except ClusterUnavailable as exc:
        print(
            f"liveclass: cannot reach the Redis Cluster at {redact(config.seeds)}: {exc}",
            file=sys.stderr,
        )
        return 1
    except RegistryUnavailable as exc:
        print(f"liveclass: cannot register the worker: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"liveclass: cannot serve: {exc}", file=sys.stderr)
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
