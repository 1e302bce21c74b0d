"""``--tls-cert``/``--tls-key`` (serve and sfu) and ``--sfu-tls-ca-file``: both or neither, a
file that does not load named in the error, the https/wss defaults they imply, and a reload that
keeps the pair in use when the new one does not load."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from liveclass.cli import build_parser
from liveclass.config import ConfigError, ServeConfig, SfuConfig
from signaling.tls import ServerTls, TlsFileError

SECRETS = "k1:" + "s" * 48


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    issued = trustme.CA().issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    return cert, key


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TLS_CERT", "TLS_KEY", "SFU_TLS_CA_FILE", "PUBLIC_URL", "RPC_URL"):
        monkeypatch.delenv(f"LIVECLASS_{name}", raising=False)
    monkeypatch.setenv("LIVECLASS_SECRETS", SECRETS)


def serve(tmp_path: Path, *argv: str) -> ServeConfig:
    args = build_parser().parse_args(["serve", "--data-dir", str(tmp_path), *argv])
    return ServeConfig.from_args(args)


def sfu(*argv: str) -> SfuConfig:
    args = build_parser().parse_args(["sfu", "--redis-cluster", "redis://127.0.0.1:7000", *argv])
    return SfuConfig.from_args(args)


def test_without_the_flags_the_port_is_plain_http(tmp_path: Path) -> None:
    config = serve(tmp_path)
    assert config.tls is None and config.node.tls is None
    assert config.http.public_url.startswith("http://")


def test_with_a_pair_the_port_serves_https_tls_1_2_at_least(
    tmp_path: Path, pair: tuple[Path, Path]
) -> None:
    config = serve(tmp_path, "--tls-cert", str(pair[0]), "--tls-key", str(pair[1]))
    assert config.tls is not None and config.node.tls is config.tls.context
    assert config.node.tls.minimum_version == ssl.TLSVersion.TLSv1_2
    assert config.http.public_url == f"https://127.0.0.1:{config.node.port}"
    assert config.node.origins.allows([f"https://localhost:{config.node.port}"])


@pytest.mark.parametrize("given", ["--tls-cert", "--tls-key"])
def test_one_flag_without_the_other_is_refused(
    tmp_path: Path, pair: tuple[Path, Path], given: str
) -> None:
    with pytest.raises(ConfigError, match="give both or neither"):
        serve(tmp_path, given, str(pair[0]))


def test_the_environment_variables_give_the_pair(
    tmp_path: Path, pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVECLASS_TLS_CERT", str(pair[0]))
    monkeypatch.setenv("LIVECLASS_TLS_KEY", str(pair[1]))
    assert serve(tmp_path).tls is not None


def test_a_key_of_another_certificate_is_refused_naming_both_files(
    tmp_path: Path, pair: tuple[Path, Path]
) -> None:
    other = trustme.CA().issue_cert("127.0.0.1")
    wrong_key = tmp_path / "other-key.pem"
    other.private_key_pem.write_to_path(str(wrong_key))
    with pytest.raises(ConfigError) as refused:
        serve(tmp_path, "--tls-cert", str(pair[0]), "--tls-key", str(wrong_key))
    assert str(pair[0]) in str(refused.value) and str(wrong_key) in str(refused.value)


def test_an_unreadable_key_is_refused_naming_it(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    # A directory where the key should be cannot be read, by root either (a file's mode would
    # not stop root).
    pair[1].unlink()
    pair[1].mkdir()
    with pytest.raises(ConfigError, match=f"TLS key {pair[1]}: Is a directory"):
        serve(tmp_path, "--tls-cert", str(pair[0]), "--tls-key", str(pair[1]))


def test_a_reload_that_fails_keeps_the_pair_in_use(pair: tuple[Path, Path]) -> None:
    tls = ServerTls(*pair)
    in_use = tls._current
    pair[1].write_text("not a key\n")
    with pytest.raises(TlsFileError, match="do not load as a pair"):
        tls.reload()
    assert tls._current is in_use
    pair[1].unlink()
    with pytest.raises(TlsFileError, match="No such file"):
        tls.reload()
    assert tls._current is in_use


def test_a_worker_with_a_pair_announces_wss(pair: tuple[Path, Path]) -> None:
    config = sfu("--tls-cert", str(pair[0]), "--tls-key", str(pair[1]))
    assert config.tls is not None
    assert config.rpc_url == "wss://127.0.0.1:8090"
    assert sfu().rpc_url == "ws://127.0.0.1:8090" and sfu().tls is None


def test_the_nodes_ca_file_for_worker_rpc_loads_or_is_refused(
    tmp_path: Path, pair: tuple[Path, Path]
) -> None:
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    config = serve(
        tmp_path, "--redis-cluster", "redis://127.0.0.1:7000", "--sfu-tls-ca-file", str(ca)
    )
    assert config.media is not None and config.media.placement.rpc_tls is not None
    assert serve(tmp_path).media.placement.rpc_tls is None  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="--sfu-tls-ca-file"):
        serve(tmp_path, "--sfu-tls-ca-file", str(tmp_path / "missing.pem"))
