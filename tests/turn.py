"""A real coturn for tests, running the shipped deploy/coturn/turnserver.conf in the foreground.

``Coturn(directory).start()`` renders the shipped config with only the deployment-specific options
replaced (``REPLACED``: addresses, ports, realm, secrets, certificate and file paths) and
``allow-loopback-peers`` added, starts ``turnserver -c <rendered>`` as a child process and waits
until it answers a STUN Binding request on its UDP port and accepts connections on its TCP and
TLS ports. Everything listens and relays on 127.0.0.1 only; the TLS port has a self-signed
certificate for 127.0.0.1 (``ca_file``). ``stop()`` always reaps the process and runs at
interpreter exit too.

The URLs to hand to :meth:`turn_config.TurnConfig.from_options`::

    coturn = Coturn(tmp_path).start()
    config = TurnConfig.from_options(coturn.servers_option(), coturn.secrets[0], 600)
    config.ice_servers("student-1", None, time.time())
    # [{"urls": ["turn:127.0.0.1:P", "turn:127.0.0.1:P?transport=tcp",
    #            "turns:127.0.0.1:T?transport=tcp"], "username": ..., "credential": ...}]
"""

from __future__ import annotations

import atexit
import datetime
import ipaddress
import os
import re
import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_hex

from tests import processes

SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "coturn" / "turnserver.conf"
START_TIMEOUT_S = 10.0
HOST = "127.0.0.1"
#: Options of the shipped config that name this machine, its files or its secret: dropped and
#: set again by :func:`render`. Every other option runs as shipped.
REPLACED = frozenset(
    {
        "listening-ip",
        "relay-ip",
        "external-ip",
        "listening-port",
        "tls-listening-port",
        "static-auth-secret",
        "realm",
        "userdb",
        "cert",
        "pkey",
        "pidfile",
        "log-file",
        "proc-user",
        "proc-group",
    }
)
_OPTION = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*(?:=.*)?$")
_STUN_MAGIC_COOKIE = 0x2112A442


def render(config: str, options: list[tuple[str, str | None]]) -> str:
    """The shipped config without its ``REPLACED`` options, then ``options`` (name, value or None
    for a flag) appended.

    Raises:
        ValueError: ``options`` sets an option the shipped config sets too but that is not in
            ``REPLACED`` (it would be set twice), or one the config does not know how to drop.
    """
    kept: list[str] = []
    shipped: set[str] = set()
    for line in config.splitlines():
        match = _OPTION.match(line)
        if match is not None and not line.lstrip().startswith("#"):
            shipped.add(match[1])
            if match[1] in REPLACED:
                continue
        kept.append(line)
    for name, _ in options:
        if name in shipped and name not in REPLACED:
            raise ValueError(f"{name} is set in the shipped config and not in REPLACED")
    kept.append("")
    kept.append("# ---- rendered by tests/turn.py")
    kept.extend(name if value is None else f"{name}={value}" for name, value in options)
    return "\n".join(kept) + "\n"


def free_udp_tcp_port() -> int:
    """A port number free for both UDP and TCP on 127.0.0.1 (coturn listens on both)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((HOST, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both UDP and TCP on 127.0.0.1")


def self_signed_certificate(cert_path: Path, key_path: Path) -> None:
    """Write a self-signed certificate for IP address 127.0.0.1 (and "localhost"), valid 1 day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "liveclass test TURN")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.IPv4Address(HOST)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)


@dataclass
class Coturn:
    """One ``turnserver`` process on 127.0.0.1, accepting REST API credentials of ``secrets``
    (every one: coturn allows several, as during a secret rotation).

    ``port`` serves TURN over UDP and TCP, ``tls_port`` TURN over TLS; relayed addresses are
    127.0.0.1 with ports in the shipped ``min-port``..``max-port`` range.
    """

    directory: Path
    secrets: list[str] = field(default_factory=lambda: [token_hex(32)])
    realm: str = "liveclass.test"
    port: int = field(default_factory=free_udp_tcp_port)
    tls_port: int = field(default_factory=free_udp_tcp_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.directory / "turnserver.conf"

    @property
    def log_path(self) -> Path:
        """coturn's own log (``log-file``)."""
        return self.directory / "turnserver.log"

    @property
    def output_path(self) -> Path:
        """The process's stdout and stderr (start-up errors before the log file opens)."""
        return self.directory / "turnserver.out"

    @property
    def ca_file(self) -> Path:
        """The self-signed certificate of the TLS port, to trust in a client's SSL context."""
        return self.directory / "cert.pem"

    @property
    def urls(self) -> list[str]:
        """TURN over UDP, TCP and TLS, in the order turn_config/README.md recommends."""
        return [
            f"turn:{HOST}:{self.port}",
            f"turn:{HOST}:{self.port}?transport=tcp",
            f"turns:{HOST}:{self.tls_port}?transport=tcp",
        ]

    def servers_option(self, region: str = "local") -> str:
        """A ``--turn-servers`` value listing :attr:`urls` as region ``region``."""
        return f"{region}={','.join(self.urls)}"

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSL context that trusts the TLS port's certificate (and checks the name)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def start(self) -> Coturn:
        """Render the config, start coturn and wait until its three listeners answer.

        Raises:
            RuntimeError: coturn is not installed, exited, or was not ready in time (the message
                has the end of its log).
        """
        if shutil.which("turnserver") is None:
            raise RuntimeError(
                "coturn is not installed (turnserver not found): "
                "run bash scripts/bootstrap.sh --system-deps"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        key_path = self.directory / "key.pem"
        self_signed_certificate(self.ca_file, key_path)
        options: list[tuple[str, str | None]] = [
            ("listening-ip", HOST),
            ("relay-ip", HOST),
            ("listening-port", str(self.port)),
            ("tls-listening-port", str(self.tls_port)),
            *(("static-auth-secret", secret) for secret in self.secrets),
            ("realm", self.realm),
            ("userdb", str(self.directory / "turndb")),
            ("cert", str(self.ca_file)),
            ("pkey", str(key_path)),
            ("pidfile", str(self.directory / "turnserver.pid")),
            ("log-file", str(self.log_path)),
            ("no-stdout-log", None),
            # The tests' peers are on loopback, which coturn refuses by default (and must in
            # production).
            ("allow-loopback-peers", None),
        ]
        self.config_path.write_text(render(SHIPPED_CONFIG.read_text(), options))
        atexit.register(self.stop)
        with self.output_path.open("ab") as output:
            self.proc = subprocess.Popen(
                ["turnserver", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        processes.wait_ready(self.proc, self._ready, START_TIMEOUT_S, "turnserver", self.log)
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it is still there after 10 s."""
        processes.stop(self.proc)

    def log(self) -> str:
        """The end of coturn's log and of its output."""
        parts = [
            path.read_text(errors="replace")[-3000:]
            for path in (self.output_path, self.log_path)
            if path.exists()
        ]
        return "\n".join(parts)

    def _ready(self) -> bool:
        return self._answers_stun_binding() and all(
            _accepts(port) for port in (self.port, self.tls_port)
        )

    def _answers_stun_binding(self) -> bool:
        """A STUN Binding request (RFC 8489 section 6) to the UDP port gets a success response."""
        transaction_id = os.urandom(12)
        request = (
            (0x0001).to_bytes(2, "big")
            + (0).to_bytes(2, "big")
            + _STUN_MAGIC_COOKIE.to_bytes(4, "big")
            + transaction_id
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.2)
            try:
                sock.sendto(request, (HOST, self.port))
                response = sock.recv(2048)
            except OSError:
                return False
        return response[:2] == b"\x01\x01" and response[8:20] == transaction_id


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False
