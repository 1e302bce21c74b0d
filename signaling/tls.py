"""TLS on a listening port: the server's certificate and key, reloaded without a restart.

``ServerTls(cert, key).context`` is what ``serve(ssl=...)`` is given: TLS 1.2 at least (1.3
preferred, as OpenSSL negotiates the highest both sides speak), Python's default ciphers
(``ssl.create_default_context``: no RC4, 3DES, export or anonymous suites). :meth:`ServerTls.reload`
reads the pair again (a renewed certificate, on SIGHUP): a handshake that starts after it gets the
new certificate; connections already open keep the session they negotiated. A pair that does not
load leaves the one in use in place.

The swap is atomic: the listening context's SNI callback (RFC 6066 section 3; OpenSSL calls it
for every ClientHello, with ``None`` when the client sends no server name) hands each new
connection the context of the last pair that loaded, so a half-loaded pair (a new certificate
with the old key) is never served.
"""

from __future__ import annotations

import ssl
from pathlib import Path


class TlsFileError(Exception):
    """A certificate or key file cannot be used; the message names the file."""


def load_pair(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server context holding ``cert_file`` (PEM, the chain leaf first) and ``key_file`` (PEM).

    Raises:
        TlsFileError: a file is missing or unreadable, is not PEM, or the key does not match
            the certificate.
    """
    for what, path in (("certificate", cert_file), ("key", key_file)):
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise TlsFileError(f"TLS {what} {path}: {exc.strerror or exc}") from exc
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        raise TlsFileError(
            f"TLS certificate {cert_file} and key {key_file} do not load as a pair: "
            f"{exc.reason or exc}"
        ) from exc
    return context


class ServerTls:
    """The listening port's TLS (see the module docstring).

    Args:
        cert_file: the certificate chain, PEM.
        key_file: its private key, PEM (unencrypted: the server starts unattended).

    Raises:
        TlsFileError: the pair does not load (:func:`load_pair`).
    """

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self._current = load_pair(cert_file, key_file)
        #: Listens; its own pair serves only if the callback did not run (it always does).
        self.context = load_pair(cert_file, key_file)
        self.context.sni_callback = self._pick

    def reload(self) -> None:
        """Load the files again; new handshakes get the pair from now on.

        Raises:
            TlsFileError: the new pair does not load; the one in use stays.
        """
        self._current = load_pair(self.cert_file, self.key_file)

    def _pick(self, connection: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        connection.context = self._current
