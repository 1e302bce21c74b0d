"""Access tokens (docs/protocol.md, "Access tokens"): HS256 JWTs with a ``kid``, verified by
``signaling.auth``. Every refusal is ``TokenInvalid`` or ``TokenExpired`` (close 4401) except a
token for another room, ``TokenWrongRoom`` (close 4403)."""

import base64
import json
import time
from typing import Any

import jwt
import pytest

from rooms import Participant, Role
from signaling import Grants, Keyring, decode_claims, mint, verify
from signaling.errors import TokenExpired, TokenInvalid, TokenWrongRoom

SECRET = b"s" * 64
OTHER_SECRET = b"o" * 64
KEYRING = Keyring({"k1": SECRET}, "k1")
ROOM = "physics-101"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_built_token(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A JWT assembled by hand (RFC 7519 §3), to send headers pyjwt would not produce."""
    parts = [json.dumps(header).encode(), json.dumps(claims).encode()]
    return ".".join([*(b64url(p) for p in parts), b64url(signature)])


def claims_for(identity: str = "s1", role: str = "student", room: str = ROOM) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": "liveclass",
        "sub": identity,
        "name": identity.upper(),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "grants": {"room": room, "role": role, "can_publish": True, "can_subscribe": True},
    }


def signed(claims: dict[str, Any], *, kid: str = "k1", secret: bytes = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": kid})


def student_token(**kwargs: Any) -> str:
    return mint(
        KEYRING,
        identity="s1",
        name="Sam",
        grants=Grants(ROOM, Role.STUDENT),
        ttl_s=kwargs.pop("ttl_s", 600),
        **kwargs,
    )


# Round trip


def test_minted_token_verifies_to_the_participant_it_grants() -> None:
    token = mint(
        KEYRING,
        identity="t1",
        name="Tess",
        grants=Grants(ROOM, Role.TEACHER, can_publish=True, can_subscribe=False),
        ttl_s=600,
    )
    assert verify(KEYRING, token, ROOM) == Participant("t1", "Tess", Role.TEACHER, True, False)


def test_minted_token_carries_the_documented_claims_and_kid() -> None:
    now = int(time.time())
    token = mint(
        KEYRING, identity="s1", name="Sam", grants=Grants(ROOM, Role.STUDENT), ttl_s=60, now=now
    )
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "kid": "k1", "typ": "JWT"}
    claims = decode_claims(KEYRING, token)
    assert claims == {
        "iss": "liveclass",
        "sub": "s1",
        "name": "Sam",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "grants": {"room": ROOM, "role": "student", "can_publish": True, "can_subscribe": True},
    }


@pytest.mark.parametrize("claim", ["name", "room", "role", "can_publish", "can_subscribe"])
def test_token_missing_name_or_a_grant_is_refused_as_invalid(claim: str) -> None:
    """A missing claim is refused (docs/protocol.md): never read as a default, and a missing
    media grant never means more permission."""
    claims = claims_for("s9")
    if claim == "name":
        del claims["name"]
    else:
        del claims["grants"][claim]
    with pytest.raises(TokenInvalid) as refused:
        verify(KEYRING, signed(claims), ROOM)
    assert refused.value.code == "token_invalid" and refused.value.close_code == 4401


@pytest.mark.parametrize("claim", ["iat", "nbf", "exp"])
@pytest.mark.parametrize("kind", ["numeric string", "bool", "float"])
def test_token_times_must_be_integers(claim: str, kind: str) -> None:
    claims = claims_for()
    value = claims[claim]
    claims[claim] = {"numeric string": str(value), "bool": True, "float": value + 0.5}[kind]
    if kind == "bool" and claim == "exp":
        claims["exp"] = True  # 1: long expired, but it must be refused as mistyped either way
    with pytest.raises((TokenInvalid, TokenExpired)) as refused:
        verify(KEYRING, signed(claims), ROOM)
    if kind != "bool":
        assert refused.value.code == "token_invalid"


def test_pyjwt_reads_a_numeric_string_exp_as_a_number() -> None:
    """Why verify checks the types itself: pyjwt accepts ``"exp": "<digits>"``."""
    claims = claims_for()
    claims["exp"] = str(claims["exp"])
    assert decode_claims(KEYRING, signed(claims))["exp"] == claims["exp"]


@pytest.mark.parametrize("room", ["X/b1", "", "a b", "a" * 65, "caf\u00e9", "{tag}", "..", "r\n"])
def test_a_room_that_is_no_room_id_cannot_be_minted_or_verified(room: str) -> None:
    with pytest.raises(ValueError, match="room id"):
        mint(KEYRING, identity="s1", name="Sam", grants=Grants(room, Role.STUDENT), ttl_s=60)
    claims = claims_for(room=room)
    with pytest.raises(TokenInvalid):
        verify(KEYRING, signed(claims), room)


def test_a_token_for_a_room_id_does_not_verify_for_a_join_naming_another() -> None:
    token = mint(KEYRING, identity="s1", name="S", grants=Grants("X", Role.STUDENT), ttl_s=60)
    with pytest.raises(TokenWrongRoom):
        verify(KEYRING, token, "X/b1")


# Key rotation


def test_token_signed_with_old_kid_verifies_while_old_secret_is_in_keyring() -> None:
    old = Keyring({"k1": SECRET}, "k1")
    token = mint(old, identity="s1", name="Sam", grants=Grants(ROOM, Role.STUDENT), ttl_s=600)
    rotated = Keyring({"k1": SECRET, "k2": OTHER_SECRET}, "k2")
    assert verify(rotated, token, ROOM).identity == "s1"
    fresh = mint(rotated, identity="s2", name="Sue", grants=Grants(ROOM, Role.STUDENT), ttl_s=600)
    assert jwt.get_unverified_header(fresh)["kid"] == "k2"
    assert verify(rotated, fresh, ROOM).identity == "s2"


def test_token_signed_with_dropped_kid_is_refused() -> None:
    token = mint(KEYRING, identity="s1", name="Sam", grants=Grants(ROOM, Role.STUDENT), ttl_s=600)
    dropped = Keyring({"k2": OTHER_SECRET}, "k2")
    with pytest.raises(TokenInvalid, match="unknown key id"):
        verify(dropped, token, ROOM)


def test_token_signed_with_another_secret_under_a_known_kid_is_refused() -> None:
    forged = Keyring({"k1": OTHER_SECRET}, "k1")
    token = mint(forged, identity="t1", name="T", grants=Grants(ROOM, Role.TEACHER), ttl_s=600)
    with pytest.raises(TokenInvalid):
        verify(KEYRING, token, ROOM)


def test_token_with_tampered_claims_is_refused() -> None:
    header, _, signature = student_token().split(".")
    claims = claims_for(role="teacher")
    tampered = ".".join([header, b64url(json.dumps(claims).encode()), signature])
    with pytest.raises(TokenInvalid):
        verify(KEYRING, tampered, ROOM)


# Times


def test_expired_token_is_refused_as_expired() -> None:
    token = student_token(now=time.time() - 3600, ttl_s=60)
    with pytest.raises(TokenExpired) as refused:
        verify(KEYRING, token, ROOM)
    assert refused.value.code == "token_expired"
    assert refused.value.close_code == 4401


def test_token_expired_within_the_clock_skew_leeway_is_accepted() -> None:
    token = student_token(now=time.time() - 62, ttl_s=60)
    assert verify(KEYRING, token, ROOM).identity == "s1"


def test_token_not_valid_before_a_future_nbf_is_refused_as_expired() -> None:
    token = student_token(now=time.time() + 3600, ttl_s=7200)
    with pytest.raises(TokenExpired):
        verify(KEYRING, token, ROOM)


# Algorithms


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_unsigned_alg_none_token_is_refused(alg: str) -> None:
    token = hand_built_token({"alg": alg, "typ": "JWT", "kid": "k1"}, claims_for(role="teacher"))
    with pytest.raises(TokenInvalid) as refused:
        verify(KEYRING, token, ROOM)
    assert refused.value.close_code == 4401


def test_alg_none_token_with_a_valid_hs256_signature_attached_is_refused() -> None:
    _, _, signature = student_token().split(".")
    header = b64url(json.dumps({"alg": "none", "kid": "k1"}).encode())
    payload = b64url(json.dumps(claims_for()).encode())
    with pytest.raises(TokenInvalid):
        verify(KEYRING, f"{header}.{payload}.{signature}", ROOM)


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithms_are_refused(alg: str) -> None:
    token = jwt.encode(claims_for(), SECRET, algorithm=alg, headers={"kid": "k1"})
    with pytest.raises(TokenInvalid, match="HS256"):
        verify(KEYRING, token, ROOM)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256", "EdDSA"])
def test_asymmetric_algorithm_headers_are_refused(alg: str) -> None:
    token = hand_built_token({"alg": alg, "typ": "JWT", "kid": "k1"}, claims_for(), b"\x01" * 64)
    with pytest.raises(TokenInvalid):
        verify(KEYRING, token, ROOM)


@pytest.mark.parametrize("kid", ["k9", "", None])
def test_hs256_token_with_unknown_or_absent_kid_is_refused(kid: str | None) -> None:
    headers = {} if kid is None else {"kid": kid}
    token = jwt.encode(claims_for(), SECRET, algorithm="HS256", headers=headers)
    with pytest.raises(TokenInvalid):
        verify(KEYRING, token, ROOM)


@pytest.mark.parametrize(
    "token",
    ["", "not-a-token", "a.b", "a.b.c", "...", "eyJ.eyJ.", b64url(b"[]") + ".e30.", "ä.ö.ü"],
)
def test_malformed_token_is_refused_as_invalid(token: str) -> None:
    with pytest.raises(TokenInvalid):
        verify(KEYRING, token, ROOM)


# Rooms, grants and claims


def test_token_for_another_room_is_refused_as_wrong_room() -> None:
    with pytest.raises(TokenWrongRoom) as refused:
        verify(KEYRING, student_token(), "chemistry-202")
    assert refused.value.code == "token_wrong_room"
    assert refused.value.close_code == 4403


def test_invite_token_is_refused_as_an_access_token() -> None:
    token = mint(
        KEYRING,
        identity="s1",
        name="Sam",
        grants=Grants(ROOM, Role.STUDENT),
        ttl_s=600,
        extra={"invite": True},
    )
    with pytest.raises(TokenInvalid):
        verify(KEYRING, token, ROOM)


@pytest.mark.parametrize("claim", ["sub", "iss", "iat", "nbf", "exp", "grants"])
def test_token_missing_a_required_claim_is_refused(claim: str) -> None:
    claims = claims_for()
    del claims[claim]
    with pytest.raises(TokenInvalid):
        verify(KEYRING, signed(claims), ROOM)


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("iss", "someone-else"),
        ("sub", ""),
        ("sub", 42),
        ("name", ["Sam"]),
        ("exp", "tomorrow"),
        ("grants", "teacher"),
        ("grants", {"room": ROOM, "role": "admin"}),
        ("grants", {"room": ROOM}),
        ("grants", {"room": ROOM, "role": "student", "can_publish": "yes"}),
        ("grants", {"room": ROOM, "role": "student", "can_subscribe": 1}),
    ],
    ids=lambda v: str(v)[:24],
)
def test_token_with_a_wrongly_typed_or_unknown_claim_value_is_refused(
    claim: str, value: Any
) -> None:
    claims = claims_for()
    claims[claim] = value
    with pytest.raises(TokenInvalid):
        verify(KEYRING, signed(claims), ROOM)


# The keyring


@pytest.mark.parametrize("length", [0, 1, 16, 31])
def test_keyring_refuses_a_secret_shorter_than_32_bytes(length: int) -> None:
    with pytest.raises(ValueError, match="shorter than 32 bytes"):
        Keyring({"k1": SECRET, "short": b"x" * length}, "k1")


def test_keyring_accepts_a_32_byte_secret() -> None:
    assert Keyring({"k1": b"x" * 32}, "k1").signing_kid == "k1"


def test_keyring_refuses_no_secrets_and_an_unknown_signing_kid() -> None:
    with pytest.raises(ValueError):
        Keyring({}, "k1")
    with pytest.raises(ValueError, match="has no secret"):
        Keyring({"k1": SECRET}, "k2")
