"""Credentials and TLS for the Redis Cluster: read from the seeds' URLs
(``rediss://user:password@host:port``) and the flags/environment (liveclass/config.py), turned into
the connection arguments every cluster connection gets (signaling/redis_cluster.py)."""

from pathlib import Path

import pytest

from liveclass.cli import build_parser
from liveclass.config import ConfigError, ServeConfig
from signaling import RedisAccess, parse_access, parse_seeds


def test_seeds_name_their_scheme_credentials_and_addresses() -> None:
    seeds = "rediss://app:p%40ss@10.0.0.1:7000,rediss://10.0.0.2:7001"
    assert parse_seeds(seeds) == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    assert parse_access(seeds) == RedisAccess("app", "p@ss", tls=True)
    assert parse_access("redis://:only-password@h:1") == RedisAccess(None, "only-password")
    assert parse_access("h:1,h:2") == RedisAccess()
    for bad in ("redis://a:1,rediss://b:2", "http://a:1", "redis://u:x@a:1,redis://u:y@b:2"):
        with pytest.raises(ValueError):
            parse_access(bad)


def test_the_password_stays_out_of_reprs_and_errors() -> None:
    assert "s3cret" not in repr(RedisAccess("app", "s3cret"))
    with pytest.raises(ValueError) as refused:
        parse_seeds("http://app:s3cret@a:1")
    assert "s3cret" not in str(refused.value)


def test_connection_arguments_carry_auth_and_verified_tls() -> None:
    assert RedisAccess().connection_kwargs() == {}
    assert RedisAccess(None, "pw").connection_kwargs() == {"password": "pw"}
    kwargs = RedisAccess("app", "pw", tls=True, ca_file="/ca.crt").connection_kwargs()
    assert kwargs["username"] == "app" and kwargs["password"] == "pw"
    assert kwargs["ssl_ca_certs"] == "/ca.crt" and kwargs["ssl_cert_reqs"] == "required"
    assert kwargs["ssl_check_hostname"] is True


def serve_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *argv: str) -> ServeConfig:
    monkeypatch.setenv("LIVECLASS_SECRETS", "k:" + "s" * 40)
    args = build_parser().parse_args(["serve", "--data-dir", str(tmp_path), *argv])
    return ServeConfig.from_args(args)


def test_flags_and_environment_override_the_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("not checked here")
    monkeypatch.setenv("LIVECLASS_REDIS_PASSWORD", "from-env")
    config = serve_config(
        monkeypatch,
        tmp_path,
        "--redis-cluster",
        "rediss://app:from-url@h:1",
        "--redis-tls-ca-file",
        str(ca),
    )
    assert config.cluster is not None
    assert config.cluster.access == RedisAccess("app", "from-env", tls=True, ca_file=str(ca))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--redis-cluster", "redis://h:1", "--redis-tls-ca-file", "x"], "rediss://"),
        (["--redis-cluster", "rediss://h:1", "--redis-tls-ca-file", "/nope"], "not a file"),
        (["--redis-cluster", "redis://h:1", "--redis-username", "app"], "needs a password"),
        (["--redis-cluster", "rediss://h:1", "--redis-tls-key-file", "k"], "cert-file"),
    ],
)
def test_inconsistent_redis_access_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        serve_config(monkeypatch, tmp_path, *argv)


def test_a_replica_wait_that_would_outlast_the_read_timeout_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A longer ``WAIT`` makes every append time out after it committed (answered unavailable,
    its retry finding the log moved by itself)."""
    cluster = ("--redis-cluster", "redis://h:1")
    config = serve_config(monkeypatch, tmp_path, *cluster, "--redis-replica-wait-ms", "1000")
    assert config.cluster is not None and config.cluster.replica_wait_ms == 1000
    with pytest.raises(ConfigError, match="at most 1000"):
        serve_config(monkeypatch, tmp_path, *cluster, "--redis-replica-wait-ms", "2500")
