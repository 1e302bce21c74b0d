"""Configuration in one place: every option has a CLI flag, an environment variable and a default
that works on a laptop. Precedence: flag, then environment, then default.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import secrets
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signaling import (
    HttpSettings,
    HubSettings,
    Keyring,
    NodeSettings,
    OriginPolicy,
    RedisAccess,
    loopback_origins,
    normalize_origin,
    parse_access,
    parse_seeds,
)
from signaling.admin import check_admin_token
from signaling.balance import BalanceSettings
from signaling.sfu_placement import PlacementSettings
from signaling.tls import ServerTls, TlsFileError
from turn_config import TurnConfig, TurnConfigError
from whiteboard import WhiteboardSettings

WEB_ROOT = Path(__file__).resolve().parent.parent / "clients" / "web"


def parse_ice_max_addresses(value: object) -> int:
    """``--sfu-ice-max-addresses``: 1 to 64.

    Raises:
        ConfigError: out of range.
    """
    count = int(str(value))
    if not 1 <= count <= 64:
        raise ConfigError("--sfu-ice-max-addresses must be between 1 and 64")
    return count


def parse_announced_ip(text: str) -> str | None:
    """``--sfu-announced-ip``: None (empty) or the IP address.

    Raises:
        ConfigError: not an IP address.
    """
    text = text.strip()
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError as exc:
        raise ConfigError(f"--sfu-announced-ip: {text!r} is not an IP address") from exc


def parse_listen_ips(text: str) -> tuple[str, ...] | None:
    """``--sfu-listen-ips``: None (empty) or the IP addresses.

    Raises:
        ConfigError: an item is not an IP address.
    """
    text = text.strip()
    if not text:
        return None
    ips = []
    for item in text.split(","):
        try:
            ips.append(str(ipaddress.ip_address(item.strip())))
        except ValueError as exc:
            raise ConfigError(f"--sfu-listen-ips: {item.strip()!r} is not an IP address") from exc
    return tuple(ips)


def rpc_client_tls(ca_file: str) -> ssl.SSLContext | None:
    """``--sfu-tls-ca-file``: the context a node's ``wss://`` RPC connections verify the
    workers' certificates with (None without a file: the system's CAs; ``ws://`` workers
    ignore it).

    Raises:
        ConfigError: the file is missing or holds no PEM certificate.
    """
    if not ca_file:
        return None
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"--sfu-tls-ca-file {ca_file}: {exc}") from exc


def parse_log_format(value: object) -> str:
    """``--log-format``: auto, json or text.

    Raises:
        ConfigError: anything else.
    """
    text = str(value).strip().lower()
    if text not in ("auto", "json", "text"):
        raise ConfigError(f"--log-format {value!r}: use auto, json or text")
    return text


@dataclass(frozen=True, slots=True)
class MediaSettings:
    """Media: the embedded SFU worker's ICE addresses (``listen_ips`` None gathers on every
    address but 127.0.0.1), and, on a Redis Cluster, how the node uses the registered worker
    processes (``placement``)."""

    listen_ips: tuple[str, ...] | None = None
    placement: PlacementSettings = field(default_factory=PlacementSettings)
    announced_ip: str | None = None
    ice_max_addresses: int = 8

    @classmethod
    def from_values(cls, v: dict[str, object]) -> MediaSettings:
        """Raises ConfigError for an address list that is not IP addresses, or bad timings."""
        rpc_timeout_ms = int(str(v["sfu_rpc_timeout_ms"]))
        reconnect_ms = int(str(v["sfu_reconnect_ms"]))
        if rpc_timeout_ms < 100 or reconnect_ms < 0:
            raise ConfigError("--sfu-rpc-timeout-ms must be >= 100, --sfu-reconnect-ms >= 0")
        placement = PlacementSettings(
            call_timeout_s=rpc_timeout_ms / 1000,
            reconnect_s=reconnect_ms / 1000,
            rpc_tls=rpc_client_tls(str(v["sfu_tls_ca_file"])),
        )
        return cls(
            parse_listen_ips(str(v["sfu_listen_ips"])),
            placement,
            parse_announced_ip(str(v["sfu_announced_ip"])),
            parse_ice_max_addresses(v["sfu_ice_max_addresses"]),
        )


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    type: type
    default: Any
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "LIVECLASS_" + self.name.upper()


DATA_DIR = Option("data_dir", Path, Path("var"), "directory of the SQLite store and the secret")
SFU_LISTEN_IPS = Option(
    "sfu_listen_ips",
    str,
    "",
    "addresses media ICE candidates are gathered on, comma-separated "
    "(default: every address but 127.0.0.1)",
)
SFU_ANNOUNCED_IP = Option(
    "sfu_announced_ip",
    str,
    "",
    "public address written into the SFU's ICE host candidates (mediasoup's announcedIp: a "
    "server behind 1:1 NAT or listening on 0.0.0.0; default: the gathered addresses)",
)
SFU_ICE_MAX_ADDRESSES = Option(
    "sfu_ice_max_addresses",
    int,
    8,
    "remote addresses whose ICE checks one media connection answers (more are ignored)",
)
LOG_LEVEL = Option("log_level", str, "info", "debug, info, warning or error")
LOG_FORMAT = Option(
    "log_format",
    str,
    "auto",
    "json (one JSON object per line), text, or auto: text when stderr is a terminal, else json",
)
AUDIT_LOG = Option(
    "audit_log",
    str,
    "",
    "append the audit log (JSON lines: moderation, breakouts, failed authentication, origin "
    "refusals, rate-limit blocks) to this file, or '-' for stdout (default: off)",
)
REDIS_CLUSTER = Option(
    "redis_cluster",
    str,
    "",
    "scale out: Redis Cluster seeds redis://host:port[,...] (rediss:// for TLS; "
    "[user:password@] for AUTH; default: embedded, SQLite)",
)
#: Credentials and TLS for every connection to the Redis Cluster (``liveclass serve`` and ``sfu``).
REDIS_ACCESS_OPTIONS: tuple[Option, ...] = (
    Option(
        "redis_username",
        str,
        "",
        "Redis ACL user for AUTH (default: the one in the seeds' URL, else 'default')",
    ),
    Option(
        "redis_password",
        str,
        "",
        "Redis AUTH password (default: the one in the seeds' URL; prefer the environment "
        "variable: flags show in ps)",
    ),
    Option(
        "redis_tls_ca_file",
        str,
        "",
        "with rediss:// seeds: CA certificate(s) the cluster's certificates are verified "
        "against (default: the system's CAs)",
    ),
    Option(
        "redis_tls_cert_file",
        str,
        "",
        "with rediss:// seeds: client certificate, for a cluster with tls-auth-clients yes",
    ),
    Option("redis_tls_key_file", str, "", "with rediss:// seeds: the client certificate's key"),
)


#: TLS on the listening port (``liveclass serve``: the whole port; ``liveclass sfu``: its RPC).
TLS_OPTIONS: tuple[Option, ...] = (
    Option(
        "tls_cert",
        str,
        "",
        "serve https:// and wss:// with this certificate chain (PEM; with --tls-key; SIGHUP "
        "reloads both; default: plain http)",
    ),
    Option("tls_key", str, "", "the --tls-cert certificate's private key (PEM, unencrypted)"),
)


def server_tls(v: dict[str, Any]) -> ServerTls | None:
    """``--tls-cert``/``--tls-key``: None without them.

    Raises:
        ConfigError: only one of the two, or a file that is missing, unreadable or not a pair.
    """
    cert, key = str(v["tls_cert"]), str(v["tls_key"])
    if not cert and not key:
        return None
    if not cert or not key:
        raise ConfigError("--tls-cert and --tls-key go together: give both or neither")
    try:
        return ServerTls(Path(cert), Path(key))
    except TlsFileError as exc:
        raise ConfigError(str(exc)) from exc


def redis_access(v: dict[str, Any]) -> RedisAccess:
    """Credentials and TLS for the cluster: from the seeds' URL (``rediss://user:pw@...``),
    the flags overriding it.

    Raises:
        ConfigError: malformed seeds, TLS files without ``rediss://``, a key without a
            certificate, or a file that does not exist.
    """
    try:
        access = parse_access(str(v["redis_cluster"]))
    except ValueError as exc:
        raise ConfigError(f"--redis-cluster: {exc}") from exc
    username = str(v["redis_username"]) or access.username
    password = str(v["redis_password"]) or access.password
    files = {name: str(v[f"redis_tls_{name}_file"]) or None for name in ("ca", "cert", "key")}
    if any(files.values()) and not access.tls:
        raise ConfigError("--redis-tls-*-file need rediss:// seeds (TLS)")
    if files["key"] and not files["cert"]:
        raise ConfigError("--redis-tls-key-file needs --redis-tls-cert-file")
    for name, path in files.items():
        if path and not Path(path).is_file():
            raise ConfigError(f"--redis-tls-{name}-file: {path} is not a file")
    if username and not password:
        raise ConfigError("--redis-username needs a password (--redis-password)")
    return RedisAccess(
        username=username,
        password=password,
        tls=access.tls,
        ca_file=files["ca"],
        cert_file=files["cert"],
        key_file=files["key"],
    )


#: The operators' status page and admin API (signaling/admin.py): ``liveclass serve`` and
#: ``liveclass admin``.
ADMIN_OPTIONS: tuple[Option, ...] = (
    Option(
        "admin_token_file",
        str,
        "",
        "file holding the operators' admin token for /status and /admin/* (default: the "
        "status page and admin API are off)",
    ),
    Option("admin_token", str, "", "the admin token itself (use LIVECLASS_ADMIN_TOKEN)"),
)
SERVE_OPTIONS: tuple[Option, ...] = (
    Option("host", str, "127.0.0.1", "address to bind"),
    Option("port", int, 8080, "TCP port for HTTP and WebSocket"),
    DATA_DIR,
    Option("public_url", str, "", "URL clients reach this server at (default http://host:port)"),
    Option("dev", bool, False, "serve the /dev landing page that creates rooms and links"),
    Option("dev_allow_public", bool, False, "allow --dev on a non-loopback address"),
    Option(
        "allowed_origins",
        str,
        "",
        "origins (scheme://host[:port], comma-separated) whose pages may open /ws and "
        "/whiteboard, besides the public URL's; with --dev or a loopback or wildcard --host "
        "also http://localhost, 127.0.0.1 and [::1] on --port. A handshake without Origin (not "
        "a browser) is always allowed",
    ),
    Option("max_frame_bytes", int, 16 * 1024, "largest client frame accepted (bytes)"),
    Option(
        "ws_max_message_bytes",
        int,
        64 * 1024,
        "largest WebSocket message read on /ws, and on a whiteboard before its token verified "
        "(bytes; a larger one closes the connection with 1009 unread)",
    ),
    Option("rate_per_s", float, 20.0, "client frames per second per connection"),
    Option("rate_burst", float, 40.0, "client frames a connection may burst"),
    Option("send_queue_frames", int, 1024, "frames queued for a lagging client before 4008"),
    Option("send_queue_bytes", int, 1024 * 1024, "bytes queued for a lagging client before 4008"),
    Option(
        "join_timeout_s",
        float,
        30.0,
        "a /ws connection that has not joined this long after it opened is closed (4401)",
    ),
    Option("ping_interval_s", float, 20.0, "WebSocket ping interval (s)"),
    Option(
        "ping_timeout_s", float, 20.0, "close a peer that does not answer a ping this long (1011)"
    ),
    Option("join_rate_per_s", float, 500.0, "joins this node admits per second (join storms)"),
    Option("join_burst", float, 500.0, "joins this node admits at once before rate limiting"),
    Option(
        "identity_rate_per_s",
        float,
        0.0,
        "frames per second one identity's connections to a room on this node send together "
        "(0: the same as --rate-per-s)",
    ),
    Option(
        "identity_burst",
        float,
        0.0,
        "frames one identity's connections together may burst (0: the same as --rate-burst)",
    ),
    Option(
        "max_connections_per_identity",
        int,
        8,
        "connections one identity may hold to a room on this node; one more closes the oldest",
    ),
    Option(
        "auth_failure_rate_per_s",
        float,
        2.0,
        "joins with a token that does not verify, per second per source address, before such "
        "joins are answered rate_limited (they never spend the node's join budget)",
    ),
    Option("auth_failure_burst", float, 20.0, "failed joins a source address may burst"),
    Option(
        "auth_failure_addresses",
        int,
        10_000,
        "source addresses whose failed joins are counted (least recently seen forgotten first)",
    ),
    Option(
        "presence_interval_ms",
        int,
        250,
        "presence changes, and a large room's votes to students, are coalesced per this interval",
    ),
    Option(
        "large_room",
        int,
        100,
        "above this many online, students see only staff in rosters and get votes as tallies",
    ),
    Option("resume_max_events", int, 5000, "beyond this many missed events a resume is a snapshot"),
    Option(
        "room_snapshot_every",
        int,
        10_000,
        "store a room snapshot every this many events; trim the log behind it (0: never)",
    ),
    Option(
        "room_idle_s",
        float,
        30.0,
        "unload a room from this node this long after its last member here left",
    ),
    Option("heartbeat_ms", int, 15000, "application ping interval the web app uses"),
    Option("board_max_message_bytes", int, 16 * 1024 * 1024, "largest whiteboard message"),
    Option("board_max_bytes", int, 16 * 1024 * 1024, "largest whiteboard (bytes, compacted)"),
    Option("board_send_queue_frames", int, 4096, "frames queued for a lagging board client"),
    Option(
        "board_send_queue_bytes",
        int,
        4 * 1024 * 1024,
        "bytes queued for a lagging board client before 1013",
    ),
    Option("board_awareness_per_s", float, 30.0, "awareness messages per second per connection"),
    Option(
        "board_awareness_clients", int, 4, "awareness client ids one board connection may introduce"
    ),
    Option(
        "board_staff_boards",
        int,
        8,
        "boards staff may open per room besides main and the breakout rooms' (loaded at once)",
    ),
    Option("board_compact_updates", int, 1000, "compact a board's log after this many updates"),
    Option("board_idle_s", float, 30.0, "unload a board this long after its last connection"),
    Option(
        "media",
        bool,
        True,
        "audio/video: an SFU worker in this process, or with --redis-cluster the registered "
        "'liveclass sfu' workers",
    ),
    SFU_LISTEN_IPS,
    SFU_ANNOUNCED_IP,
    SFU_ICE_MAX_ADDRESSES,
    Option(
        "sfu_rpc_timeout_ms",
        int,
        10_000,
        "with --redis-cluster: a call an SFU worker leaves unanswered this long loses the worker",
    ),
    Option(
        "sfu_reconnect_ms",
        int,
        500,
        "with --redis-cluster: a worker whose connection closed and cannot be reopened within "
        "this long is lost; its rooms are placed on another worker",
    ),
    Option(
        "turn_servers",
        str,
        "",
        "TURN servers per region, 'eu=turn:h:3478,turns:h:443?transport=tcp;us=...' "
        "(first region is the default; see turn_config/README.md)",
    ),
    Option("turn_secret", str, "", "coturn's static-auth-secret (use LIVECLASS_TURN_SECRET)"),
    Option("turn_ttl_s", int, 600, "lifetime of the TURN credentials handed out at join (s)"),
    LOG_LEVEL,
    Option(
        "otlp_endpoint",
        str,
        "",
        "export OpenTelemetry traces of each command's path to this OTLP/HTTP collector "
        "(http://host:4318; needs the tracing extra; off when empty)",
    ),
    LOG_FORMAT,
    AUDIT_LOG,
    REDIS_CLUSTER,
    Option("node_id", str, "", "this node's name in presence (default: random per start)"),
    Option("presence_ttl_ms", int, 3000, "a node silent this long is dead; its members leave"),
    Option("redis_replicas", int, 1, "replicas that must hold an event before its ack (WAIT)"),
    Option("redis_replica_wait_ms", int, 100, "how long an ack waits for those replicas"),
    *REDIS_ACCESS_OPTIONS,
    Option(
        "rebalance",
        bool,
        True,
        "with --redis-cluster: a node holding more than its share of connections asks some "
        "clients to reconnect (to a less loaded node)",
    ),
    Option("rebalance_interval_s", float, 2.0, "seconds between two load reports of a node"),
    Option(
        "rebalance_quiet_s",
        float,
        30.0,
        "no rebalancing this long after the node started or a node joined or left the tier",
    ),
    Option(
        "rebalance_tolerance",
        float,
        0.1,
        "rebalancing starts past the fair share x (1 + this) and stops at the fair share",
    ),
    Option("rebalance_batch", int, 10, "clients a node asks to reconnect per round at most"),
    Option("rebalance_spread_s", float, 5.0, "one round's asks are spread over this long (s)"),
    *TLS_OPTIONS,
    Option(
        "sfu_tls_ca_file",
        str,
        "",
        "with --redis-cluster: CA certificate(s) the SFU workers' wss:// RPC certificates are "
        "verified against (default: the system's CAs)",
    ),
    *ADMIN_OPTIONS,
)
KEY_OPTIONS: tuple[Option, ...] = (
    Option(
        "secrets", str, "", "HS256 secrets 'kid:secret,kid2:secret2' (default: data-dir/secret)"
    ),
    Option("signing_kid", str, "", "key id new tokens are signed with (default: the first)"),
)


SFU_OPTIONS: tuple[Option, ...] = (
    Option("listen", str, "127.0.0.1:8090", "host:port of the RPC endpoint signaling nodes call"),
    Option(
        "data_dir",
        Path,
        Path("var"),
        "directory whose 'secret' a node on this host made: the secrets when --secrets is not "
        "given (a worker never makes one)",
    ),
    Option(
        "rpc_url",
        str,
        "",
        "URL signaling nodes reach the RPC endpoint at (default ws://<listen>, wss:// with "
        "--tls-cert)",
    ),
    *TLS_OPTIONS,
    REDIS_CLUSTER,
    *REDIS_ACCESS_OPTIONS,
    SFU_LISTEN_IPS,
    SFU_ANNOUNCED_IP,
    SFU_ICE_MAX_ADDRESSES,
    Option("worker_id", str, "", "this worker's name in the registry (default: random)"),
    Option(
        "heartbeat_ttl_ms",
        int,
        3000,
        "a worker whose registration is not refreshed this long is dead (refreshed every "
        "TTL / 3, at most 1 s apart)",
    ),
    LOG_LEVEL,
    LOG_FORMAT,
    AUDIT_LOG,
)


class ConfigError(Exception):
    """A configuration value is invalid; the message says which and why."""


def add_options(parser: argparse.ArgumentParser, options: tuple[Option, ...]) -> None:
    for opt in options:
        if opt.type is bool:
            parser.add_argument(
                opt.flag,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{opt.help} [env {opt.env}]",
            )
        else:
            parser.add_argument(
                opt.flag,
                type=opt.type,
                default=None,
                help=f"{opt.help} [env {opt.env}; default {opt.default}]",
            )


def resolve(args: argparse.Namespace, options: tuple[Option, ...]) -> dict[str, Any]:
    """Values of ``options`` from flags, then environment, then defaults.

    Raises:
        ConfigError: an environment value does not parse.
    """
    values: dict[str, Any] = {}
    for opt in options:
        value = getattr(args, opt.name, None)
        if value is None and opt.env in os.environ:
            raw = os.environ[opt.env]
            try:
                value = (
                    raw.lower() in ("1", "true", "yes", "on") if opt.type is bool else opt.type(raw)
                )
            except ValueError as exc:
                raise ConfigError(f"{opt.env}={raw!r}: {exc}") from exc
        values[opt.name] = opt.default if value is None else value
    return values


def admin_token(v: dict[str, Any]) -> str:
    """The admin token: ``--admin-token-file``'s content, else ``--admin-token``; '' (off).

    Raises:
        ConfigError: the file cannot be read, or the token is shorter than 16 characters.
    """
    path = str(v.get("admin_token_file") or "")
    token = str(v.get("admin_token") or "")
    if path:
        try:
            token = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"--admin-token-file: {exc}") from exc
    try:
        return check_admin_token(token)
    except ValueError as exc:
        raise ConfigError(f"admin token: {exc}") from exc


def load_keyring(values: dict[str, Any], data_dir: Path, *, create: bool = True) -> Keyring:
    """Secrets from ``--secrets``/``LIVECLASS_SECRETS``, else ``data_dir/secret`` (made once, 0600,
    if ``create``).

    Raises:
        ConfigError: malformed secrets, an unknown signing kid, or no secrets at all (no
            ``--secrets``, no ``data_dir/secret`` and not ``create``).
    """
    spec = str(values.get("secrets") or "")
    if not spec:
        path = data_dir / "secret"
        if not path.exists() and not create:
            raise ConfigError(
                f"no secrets: set --secrets (LIVECLASS_SECRETS) to the nodes' secrets; "
                f"{path} does not exist either"
            )
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(f"k1:{secrets.token_urlsafe(48)}\n")
        spec = path.read_text().strip()
    pairs: dict[str, bytes] = {}
    for item in spec.split(","):
        kid, sep, secret = item.strip().partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", kid) or not secret:
            raise ConfigError("secrets must look like 'kid:secret,kid2:secret2'")
        pairs[kid] = secret.encode()
    signing = str(values.get("signing_kid") or next(iter(pairs)))
    try:
        return Keyring(pairs, signing)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def origin_policy(
    allowed: str, public_url: str, port: int, loopback: bool, scheme: str = "http"
) -> OriginPolicy:
    """``--allowed-origins``: the listed origins, the public URL's origin, and with ``loopback``
    (``--dev``, or a loopback or wildcard ``--host``: the server answers on loopback) the
    loopback names of this port.

    Raises:
        ConfigError: an item, or the public URL, is not an http(s) origin.
    """
    origins: set[str] = set()
    try:
        origins.add(normalize_origin(_origin_of(public_url)))
    except ValueError as exc:
        raise ConfigError(f"--public-url: {exc}") from exc
    for item in allowed.split(","):
        if not item.strip():
            continue
        try:
            origins.add(normalize_origin(item))
        except ValueError as exc:
            raise ConfigError(f"--allowed-origins: {exc}") from exc
    if loopback:
        origins |= loopback_origins(scheme, port)
    return OriginPolicy(frozenset(origins))


def _origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL (its path dropped)."""
    scheme, sep, rest = url.strip().partition("://")
    return f"{scheme}{sep}{rest.split('/', 1)[0]}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: The longest replica wait an append may have: its ``WAIT`` ends well within the read timeout
#: of the router's commands (2 s, :class:`signaling.redis_cluster.ClusterRouter`); past that the
#: pipeline is sent again, finds its own append and is reported failed although it committed.
REPLICA_WAIT_MAX_MS = 1000


def balance_settings(v: dict[str, Any]) -> BalanceSettings:
    """The ``--rebalance*`` options.

    Raises:
        ConfigError: out-of-range values.
    """
    settings = BalanceSettings(
        enabled=bool(v["rebalance"]),
        interval_s=float(v["rebalance_interval_s"]),
        quiet_s=float(v["rebalance_quiet_s"]),
        tolerance=float(v["rebalance_tolerance"]),
        batch=int(v["rebalance_batch"]),
        spread_s=float(v["rebalance_spread_s"]),
    )
    if settings.interval_s < 0.1 or settings.quiet_s < 0 or settings.spread_s < 0:
        raise ConfigError(
            "--rebalance-interval-s must be >= 0.1, --rebalance-quiet-s and "
            "--rebalance-spread-s >= 0"
        )
    if settings.tolerance < 0 or settings.batch < 1:
        raise ConfigError("--rebalance-tolerance must be >= 0, --rebalance-batch >= 1")
    return settings


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """Scale-out on a Redis Cluster (``--redis-cluster``)."""

    seeds: str
    node_id: str
    presence_ttl_ms: int
    replicas: int
    replica_wait_ms: int
    access: RedisAccess = field(default_factory=RedisAccess)
    balance: BalanceSettings = field(default_factory=BalanceSettings)

    @classmethod
    def from_values(cls, v: dict[str, Any]) -> ClusterSettings | None:
        """None without ``--redis-cluster``.

        Raises:
            ConfigError: malformed seeds or out-of-range timings.
        """
        seeds = str(v["redis_cluster"]).strip()
        if not seeds:
            return None
        try:
            parse_seeds(seeds)
        except ValueError as exc:
            raise ConfigError(
                f"--redis-cluster: {exc}; use redis[s]://[user:password@]host:port[,...]"
            ) from exc
        if int(v["presence_ttl_ms"]) < 300:
            raise ConfigError("--presence-ttl-ms must be at least 300")
        if int(v["redis_replicas"]) < 0 or int(v["redis_replica_wait_ms"]) < 0:
            raise ConfigError("--redis-replicas and --redis-replica-wait-ms must be >= 0")
        if int(v["redis_replica_wait_ms"]) > REPLICA_WAIT_MAX_MS:
            raise ConfigError(
                f"--redis-replica-wait-ms must be at most {REPLICA_WAIT_MAX_MS}: an append that "
                "waits longer outlasts the 2 s Redis read timeout and is answered unavailable "
                "although it committed"
            )
        node_id = str(v["node_id"])
        if node_id and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", node_id):
            raise ConfigError("--node-id: letters, digits, '_', '.', '-' (at most 64)")
        return cls(
            seeds,
            node_id,
            int(v["presence_ttl_ms"]),
            int(v["redis_replicas"]),
            int(v["redis_replica_wait_ms"]),
            redis_access(v),
            balance_settings(v),
        )


@dataclass(frozen=True, slots=True)
class ServeConfig:
    node: NodeSettings
    whiteboard: WhiteboardSettings
    http: HttpSettings
    keyring: Keyring
    data_dir: Path
    log_level: str
    cluster: ClusterSettings | None = None
    media: MediaSettings | None = None
    turn: TurnConfig = field(default_factory=lambda: TurnConfig.from_options("", "", 600))
    #: ``--otlp-endpoint``: where traces go (empty: no tracing).
    otlp_endpoint: str = ""
    #: ``--tls-cert``/``--tls-key``: the port's TLS, reloaded on SIGHUP.
    tls: ServerTls | None = None
    log_format: str = "auto"
    #: The audit log's file, ``-`` for stdout, or empty: off.
    audit_log: str = ""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ServeConfig:
        """Build the server's configuration.

        Raises:
            ConfigError: invalid values, or ``--dev`` on a public address without
                ``--dev-allow-public``.
        """
        v = resolve(args, SERVE_OPTIONS + KEY_OPTIONS)
        host, port = str(v["host"]), int(v["port"])
        if v["dev"] and not is_loopback(host) and not v["dev_allow_public"]:
            raise ConfigError(
                f"--dev hands out teacher links to anyone who can reach it; refusing to bind "
                f"{host}. Bind 127.0.0.1, or pass --dev-allow-public if you mean it."
            )
        if not 0 <= port <= 65535:
            raise ConfigError(f"port {port} is out of range")
        if int(v["max_connections_per_identity"]) < 1:
            raise ConfigError("--max-connections-per-identity must be at least 1")
        if float(v["identity_rate_per_s"]) < 0 or float(v["identity_burst"]) < 0:
            raise ConfigError("--identity-rate-per-s and --identity-burst must be >= 0")
        if float(v["room_idle_s"]) < 0:
            raise ConfigError("--room-idle-s must be >= 0")
        if int(v["room_snapshot_every"]) < 0 or int(v["resume_max_events"]) < 0:
            raise ConfigError("--room-snapshot-every and --resume-max-events must be >= 0")
        if int(v["send_queue_bytes"]) < 1 or int(v["board_send_queue_bytes"]) < 1:
            raise ConfigError("--send-queue-bytes and --board-send-queue-bytes must be >= 1")
        if int(v["board_awareness_clients"]) < 1 or int(v["board_staff_boards"]) < 0:
            raise ConfigError("--board-awareness-clients must be >= 1, --board-staff-boards >= 0")
        data_dir = Path(v["data_dir"])
        shown_host = f"[{host}]" if ":" in host else host
        tls = server_tls(v)
        scheme = "https" if tls is not None else "http"
        public_url = str(v["public_url"] or f"{scheme}://{shown_host}:{port}")
        if float(v["auth_failure_rate_per_s"]) <= 0 or float(v["auth_failure_burst"]) < 1:
            raise ConfigError("--auth-failure-rate-per-s must be > 0, --auth-failure-burst >= 1")
        if int(v["ws_max_message_bytes"]) < int(v["max_frame_bytes"]):
            raise ConfigError("--ws-max-message-bytes must be at least --max-frame-bytes")
        if int(v["auth_failure_addresses"]) < 1:
            raise ConfigError("--auth-failure-addresses must be at least 1")
        serves_loopback = bool(v["dev"]) or is_loopback(host) or host in ("0.0.0.0", "::")
        origins = origin_policy(
            str(v["allowed_origins"]), public_url, port, serves_loopback, scheme
        )
        hub = HubSettings(
            presence_interval_s=int(v["presence_interval_ms"]) / 1000,
            large_room=int(v["large_room"]),
            resume_max_events=int(v["resume_max_events"]),
            heartbeat_ms=int(v["heartbeat_ms"]),
            snapshot_every=int(v["room_snapshot_every"]),
        )
        node = NodeSettings(
            host=host,
            port=port,
            max_frame_bytes=int(v["max_frame_bytes"]),
            ws_max_size=int(v["ws_max_message_bytes"]),
            rate_per_s=float(v["rate_per_s"]),
            rate_burst=float(v["rate_burst"]),
            send_queue_frames=int(v["send_queue_frames"]),
            send_queue_bytes=int(v["send_queue_bytes"]),
            join_timeout_s=float(v["join_timeout_s"]),
            ping_interval_s=float(v["ping_interval_s"]),
            ping_timeout_s=float(v["ping_timeout_s"]),
            join_rate_per_s=float(v["join_rate_per_s"]),
            join_burst=float(v["join_burst"]),
            identity_rate_per_s=float(v["identity_rate_per_s"]) or float(v["rate_per_s"]),
            identity_burst=float(v["identity_burst"]) or float(v["rate_burst"]),
            max_connections_per_identity=int(v["max_connections_per_identity"]),
            auth_failure_rate_per_s=float(v["auth_failure_rate_per_s"]),
            auth_failure_burst=float(v["auth_failure_burst"]),
            auth_failure_addresses=int(v["auth_failure_addresses"]),
            origins=origins,
            hub=hub,
            board_send_queue_frames=int(v["board_send_queue_frames"]),
            board_send_queue_bytes=int(v["board_send_queue_bytes"]),
            room_idle_s=float(v["room_idle_s"]),
            tls=tls.context if tls is not None else None,
        )
        whiteboard = WhiteboardSettings(
            max_message_bytes=int(v["board_max_message_bytes"]),
            max_board_bytes=int(v["board_max_bytes"]),
            awareness_rate_per_s=float(v["board_awareness_per_s"]),
            awareness_burst=2 * float(v["board_awareness_per_s"]),
            max_awareness_clients=int(v["board_awareness_clients"]),
            max_staff_boards=int(v["board_staff_boards"]),
            compact_updates=int(v["board_compact_updates"]),
            board_idle_s=float(v["board_idle_s"]),
        )
        http = HttpSettings(
            web_root=WEB_ROOT, dev=bool(v["dev"]), public_url=public_url, admin_token=admin_token(v)
        )
        keyring = load_keyring(v, data_dir)
        cluster = ClusterSettings.from_values(v)
        media = MediaSettings.from_values(v) if v["media"] else None
        try:
            turn = TurnConfig.from_options(
                str(v["turn_servers"]), str(v["turn_secret"]), int(v["turn_ttl_s"])
            )
        except TurnConfigError as exc:
            raise ConfigError(f"TURN: {exc}") from exc
        otlp_endpoint = str(v["otlp_endpoint"]).strip()
        if otlp_endpoint and not re.match(r"https?://[^/\s]+", otlp_endpoint):
            raise ConfigError(f"--otlp-endpoint: {otlp_endpoint!r} is not an http(s) URL")
        return cls(
            node,
            whiteboard,
            http,
            keyring,
            data_dir,
            str(v["log_level"]),
            cluster,
            media,
            turn,
            otlp_endpoint,
            tls,
            parse_log_format(v["log_format"]),
            str(v["audit_log"]).strip(),
        )


@dataclass(frozen=True, slots=True)
class SfuConfig:
    """``liveclass sfu``: one SFU worker process registered on a Redis Cluster."""

    host: str
    port: int
    rpc_url: str
    seeds: str
    listen_ips: tuple[str, ...] | None
    announced_ip: str | None
    ice_max_addresses: int
    worker_id: str
    heartbeat_ttl_ms: int
    log_level: str
    #: The nodes' secrets: a node's RPC connection must present a token signed with one of them.
    keyring: Keyring
    redis_access: RedisAccess = field(default_factory=RedisAccess)
    #: ``--tls-cert``/``--tls-key``: the RPC port's TLS, reloaded on SIGHUP.
    tls: ServerTls | None = None
    log_format: str = "auto"
    #: ``--audit-log``: where refused RPC handshakes are recorded ('' off, '-' stdout).
    audit_log: str = ""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SfuConfig:
        """Raises ConfigError for missing or malformed values, and without secrets: a worker
        never makes its own (no node would know it, so it would refuse every node while looking
        healthy to probes)."""
        v = resolve(args, SFU_OPTIONS + KEY_OPTIONS)
        host, sep, port_text = str(v["listen"]).rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            raise ConfigError(f"--listen {v['listen']!r}: use host:port")
        port = int(port_text)
        seeds = str(v["redis_cluster"]).strip()
        if not seeds:
            raise ConfigError("--redis-cluster is required: workers register in the cluster")
        try:
            parse_seeds(seeds)
        except ValueError as exc:
            raise ConfigError(
                f"--redis-cluster: {exc}; use redis[s]://[user:password@]host:port[,...]"
            ) from exc
        worker_id = str(v["worker_id"]) or f"w-{secrets.token_hex(6)}"
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", worker_id):
            raise ConfigError("--worker-id: letters, digits, '_', '.', '-' (at most 64)")
        if int(v["heartbeat_ttl_ms"]) < 300:
            raise ConfigError("--heartbeat-ttl-ms must be at least 300")
        if host in ("0.0.0.0", "::") and not v["rpc_url"]:
            raise ConfigError(f"--listen {host}: give --rpc-url, the address nodes connect to")
        shown = f"[{host}]" if ":" in host else host
        tls = server_tls(v)
        scheme = "wss" if tls is not None else "ws"
        return cls(
            host=host,
            port=port,
            rpc_url=str(v["rpc_url"] or f"{scheme}://{shown}:{port}"),
            seeds=seeds,
            listen_ips=parse_listen_ips(str(v["sfu_listen_ips"])),
            announced_ip=parse_announced_ip(str(v["sfu_announced_ip"])),
            ice_max_addresses=parse_ice_max_addresses(v["sfu_ice_max_addresses"]),
            worker_id=worker_id,
            heartbeat_ttl_ms=int(v["heartbeat_ttl_ms"]),
            log_level=str(v["log_level"]),
            keyring=load_keyring(v, Path(v["data_dir"]), create=False),
            redis_access=redis_access(v),
            tls=tls,
            log_format=parse_log_format(v["log_format"]),
            audit_log=str(v["audit_log"]).strip(),
        )
