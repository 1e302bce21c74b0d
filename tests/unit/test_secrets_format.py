"""The secret format and what ``liveclass token`` prints (docs/protocol.md, "Access tokens"): what a
token service of one's own needs to mint tokens a liveclass node accepts."""

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from liveclass.cli import main
from liveclass.config import ConfigError, load_keyring
from rooms import Role
from signaling import verify

ROOM = "physics-101"
#: Not ASCII and holding a ':', to pin both halves of the rule.
SECRET = "clé:partagée-" + "x" * 24


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    """``liveclass token`` sets the process umask; give it back for the other tests."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_hmac_key_is_the_utf8_text_after_the_kid() -> None:
    keyring = load_keyring({"secrets": f"k1:{SECRET}, k2:{'y' * 32}"}, Path("/nonexistent"))
    assert dict(keyring.secrets) == {"k1": SECRET.encode("utf-8"), "k2": b"y" * 32}
    assert keyring.signing_kid == "k1"
    token = jwt.encode(
        {
            "iss": "liveclass",
            "sub": "s1",
            "name": "S",
            "iat": 0,
            "nbf": 0,
            "exp": 2**40,
            "grants": {"room": ROOM, "role": "student", "can_publish": True, "can_subscribe": True},
        },
        SECRET.encode("utf-8"),
        algorithm="HS256",
        headers={"kid": "k1"},
    )
    assert verify(keyring, token, ROOM).identity == "s1"


@pytest.mark.parametrize("spec", ["no-colon", "bad kid!:" + "x" * 32, "k1:", ":" + "x" * 32])
def test_secrets_not_of_the_documented_form_are_refused(spec: str) -> None:
    with pytest.raises(ConfigError):
        load_keyring({"secrets": spec}, Path("/nonexistent"))


def test_the_secret_file_a_node_makes_has_the_same_format(tmp_path: Path) -> None:
    keyring = load_keyring({"secrets": ""}, tmp_path)
    kid, _, secret = (tmp_path / "secret").read_text().strip().partition(":")
    assert dict(keyring.secrets) == {kid: secret.encode("utf-8")}


def test_liveclass_token_prints_the_token_alone_or_the_join_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = ["--secrets", f"k1:{SECRET}", "--data-dir", str(tmp_path)]
    who = ["--room", ROOM, "--identity", "t1", "--name", "Ada", "--role", "teacher"]
    assert main(["token", *who, *keys]) == 0
    (token,) = capsys.readouterr().out.splitlines()
    keyring = load_keyring({"secrets": f"k1:{SECRET}"}, tmp_path)
    participant = verify(keyring, token, ROOM)
    assert (participant.identity, participant.name, participant.role) == ("t1", "Ada", Role.TEACHER)
    assert main(["token", *who, *keys, "--link", "https://class.example/"]) == 0
    (link,) = capsys.readouterr().out.splitlines()
    prefix = "https://class.example/#token="
    assert link.startswith(prefix)
    assert verify(keyring, link.removeprefix(prefix), ROOM).identity == "t1"


def test_liveclass_token_makes_a_private_data_dir_and_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "var"
    who = ["--room", ROOM, "--identity", "t1", "--role", "teacher"]
    assert main(["token", *who, "--data-dir", str(data_dir)]) == 0
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "secret").stat().st_mode) == 0o600
    (token,) = capsys.readouterr().out.splitlines()
    assert verify(load_keyring({}, data_dir, create=False), token, ROOM).identity == "t1"
