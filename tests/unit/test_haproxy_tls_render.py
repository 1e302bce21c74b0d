"""tests/haproxy.py renders deploy/haproxy/haproxy-tls.cfg as it renders haproxy.cfg: only the
bind address, the ``ssl crt`` file, the servers and the stats socket change."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.haproxy import SHIPPED_CONFIG, SHIPPED_TLS_CONFIG, render

BACKENDS = [("127.0.0.1", 8081), ("127.0.0.1", 8082)]


def bind_line(config: str) -> str:
    return next(line.strip() for line in config.splitlines() if line.strip().startswith("bind "))


def test_the_tls_config_keeps_its_bind_options_with_the_tests_certificate() -> None:
    config = render(
        SHIPPED_TLS_CONFIG.read_text(), 9443, BACKENDS, Path("/s.sock"), Path("/t/crt.pem")
    )
    assert bind_line(config) == "bind 127.0.0.1:9443 ssl crt /t/crt.pem alpn http/1.1"
    assert "ssl-min-ver TLSv1.2" in config


def test_the_tls_config_is_the_plain_one_but_for_its_tls_lines() -> None:
    def settings(path: Path) -> list[str]:
        lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
        return [
            line for line in lines if line and "ssl" not in line and not line.startswith("bind")
        ]

    assert settings(SHIPPED_TLS_CONFIG) == settings(SHIPPED_CONFIG)


def test_the_plain_config_renders_as_before_and_refuses_a_certificate() -> None:
    config = render(SHIPPED_CONFIG.read_text(), 9080, BACKENDS, Path("/s.sock"))
    assert bind_line(config) == "bind 127.0.0.1:9080"
    with pytest.raises(ValueError, match="ssl crt"):
        render(SHIPPED_CONFIG.read_text(), 9080, BACKENDS, Path("/s.sock"), Path("/crt.pem"))
    with pytest.raises(ValueError, match="ssl crt"):
        render(SHIPPED_TLS_CONFIG.read_text(), 9080, BACKENDS, Path("/s.sock"))
