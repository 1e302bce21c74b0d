"""The tokens a node presents to an SFU worker's RPC endpoint (``signaling.auth``: audience
``liveclass-sfu``, subject the worker id, signed with the cluster's keyring), the bearer header
(``sfu.rpc``), the worker's check as wired (``liveclass.wiring``), and where a worker's secrets come
from (``liveclass sfu`` refuses to start without any)."""

import time
from pathlib import Path

import jwt
import pytest

from liveclass.cli import build_parser
from liveclass.config import ConfigError, SfuConfig
from liveclass.wiring import worker_token_check, worker_tokens
from rooms import Role
from sfu import rpc
from signaling import Grants, Keyring, decode_claims, mint, verify
from signaling.auth import (
    WORKER_AUDIENCE,
    WORKER_TOKEN_MAX_TTL_S,
    mint_worker_token,
    verify_worker_token,
)
from signaling.errors import TokenExpired, TokenInvalid

OLD, NEW = b"o" * 48, b"n" * 48
KEYRING = Keyring({"k1": OLD}, "k1")
WORKER = "w-1"


def test_a_worker_token_names_the_worker_the_audience_and_the_signing_kid() -> None:
    token = mint_worker_token(KEYRING, WORKER, now=1_000_000)
    assert jwt.get_unverified_header(token)["kid"] == "k1"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == WORKER and claims["aud"] == WORKER_AUDIENCE
    assert claims["exp"] - claims["iat"] == 60


def test_a_fresh_token_for_the_worker_verifies() -> None:
    verify_worker_token(KEYRING, mint_worker_token(KEYRING, WORKER), WORKER)


def test_a_token_for_another_worker_is_invalid() -> None:
    with pytest.raises(TokenInvalid, match="another worker"):
        verify_worker_token(KEYRING, mint_worker_token(KEYRING, "w-2"), WORKER)


def test_an_expired_token_is_expired() -> None:
    token = mint_worker_token(KEYRING, WORKER, now=time.time() - 120)
    with pytest.raises(TokenExpired):
        verify_worker_token(KEYRING, token, WORKER)


def test_a_token_signed_with_another_secret_or_an_unknown_kid_is_invalid() -> None:
    other_secret = mint_worker_token(Keyring({"k1": b"x" * 48}, "k1"), WORKER)
    unknown_kid = mint_worker_token(Keyring({"k9": OLD}, "k9"), WORKER)
    for token in (other_secret, unknown_kid, "not-a-jwt"):
        with pytest.raises(TokenInvalid):
            verify_worker_token(KEYRING, token, WORKER)


def test_any_kid_of_the_keyring_verifies_during_rotation() -> None:
    rotated = Keyring({"k2": NEW, "k1": OLD}, "k2")
    verify_worker_token(rotated, mint_worker_token(KEYRING, WORKER), WORKER)  # an old node
    verify_worker_token(rotated, mint_worker_token(rotated, WORKER), WORKER)
    with pytest.raises(TokenInvalid):  # a worker not yet given k2
        verify_worker_token(KEYRING, mint_worker_token(rotated, WORKER), WORKER)


def test_access_tokens_and_worker_tokens_are_not_interchangeable() -> None:
    access = mint(KEYRING, identity=WORKER, name="w", grants=Grants("r", Role.TEACHER), ttl_s=60)
    with pytest.raises(TokenInvalid):
        verify_worker_token(KEYRING, access, WORKER)
    worker_token = mint_worker_token(KEYRING, WORKER)
    with pytest.raises(TokenInvalid):
        decode_claims(KEYRING, worker_token)
    with pytest.raises(TokenInvalid):
        verify(KEYRING, worker_token, "r")


def test_the_bearer_header_round_trips_and_anything_else_is_unauthorized() -> None:
    assert rpc.bearer_token([rpc.bearer("abc")]) == "abc"
    assert rpc.bearer_token(["bearer  abc "]) == "abc"
    for values in ([], ["Basic abc"], ["Bearer "], ["abc"], ["Bearer a", "Bearer b"]):
        with pytest.raises(rpc.Unauthorized):
            rpc.bearer_token(values)


def test_the_wired_check_accepts_the_wired_tokens_and_turns_refusals_into_unauthorized() -> None:
    check = worker_token_check(Keyring({"k2": NEW, "k1": OLD}, "k2"))
    check(worker_tokens(KEYRING)(WORKER), WORKER)
    with pytest.raises(rpc.Unauthorized, match="TokenInvalid"):
        check(worker_tokens(KEYRING)("w-2"), WORKER)
    with pytest.raises(rpc.Unauthorized, match="TokenExpired"):
        check(mint_worker_token(KEYRING, WORKER, now=time.time() - 120), WORKER)


def sfu_config(monkeypatch: pytest.MonkeyPatch, *argv: str) -> SfuConfig:
    monkeypatch.delenv("LIVECLASS_SECRETS", raising=False)
    monkeypatch.delenv("LIVECLASS_SIGNING_KID", raising=False)
    monkeypatch.delenv("LIVECLASS_DATA_DIR", raising=False)
    args = build_parser().parse_args(["sfu", "--redis-cluster", "redis://127.0.0.1:7000", *argv])
    return SfuConfig.from_args(args)


def test_a_worker_without_secrets_refuses_to_start_and_makes_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="no secrets"):
        sfu_config(monkeypatch, "--data-dir", str(tmp_path))
    assert not (tmp_path / "secret").exists()


def test_a_worker_takes_secrets_from_the_option_or_env_or_a_nodes_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = "s" * 40
    assert sfu_config(monkeypatch, "--secrets", f"k1:{secret}").keyring.secrets == {
        "k1": secret.encode()
    }
    (tmp_path / "secret").write_text(f"k7:{secret}\n")  # as `liveclass serve` makes it
    config = sfu_config(monkeypatch, "--data-dir", str(tmp_path))
    assert config.keyring.secrets == {"k7": secret.encode()}
    monkeypatch.setenv("LIVECLASS_SECRETS", f"k2:{secret},k1:{secret}")
    args = build_parser().parse_args(["sfu", "--redis-cluster", "redis://127.0.0.1:7000"])
    assert list(SfuConfig.from_args(args).keyring.secrets) == ["k2", "k1"]


def _worker_token(iat: int, nbf: int, exp: int, key: bytes = OLD) -> str:
    claims = {"iss": "liveclass", "aud": WORKER_AUDIENCE, "sub": WORKER}
    claims |= {"iat": iat, "nbf": nbf, "exp": exp}
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": "k1"})


def test_a_worker_token_living_longer_than_the_cap_is_invalid() -> None:
    now = int(time.time())
    with pytest.raises(TokenInvalid, match="lifetime"):
        verify_worker_token(KEYRING, _worker_token(now, now, now + 10**8), WORKER)
    with pytest.raises(TokenInvalid, match="lifetime"):  # an early nbf counts too
        verify_worker_token(KEYRING, _worker_token(now, now - 10**6, now + 60), WORKER)
    over = WORKER_TOKEN_MAX_TTL_S + 1
    with pytest.raises(TokenInvalid, match="lifetime"):
        verify_worker_token(KEYRING, _worker_token(now - 10, now - 10, now - 10 + over), WORKER)
    verify_worker_token(
        KEYRING,
        _worker_token(now - 10, now - 10, now - 10 + WORKER_TOKEN_MAX_TTL_S),
        WORKER,
    )
    with pytest.raises(TokenInvalid, match="lifetime"):  # what the minting side would refuse
        verify_worker_token(KEYRING, mint_worker_token(KEYRING, WORKER, ttl_s=over), WORKER)
