"""turn_config, pure: TURN REST API credentials (draft-uberti-behave-turn-rest-00 as coturn checks
them), STUN/TURN URL parsing (RFC 7064/7065), the ``--turn-servers`` format and the RTCIceServer
lists per region. The same credentials against a real coturn: tests/integration/test_coturn.py."""

import base64
import hashlib
import hmac
import math
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from turn_config import (
    DEFAULT_REGION,
    DEFAULT_TTL_S,
    MAX_IDENTITY_CHARS,
    MAX_TTL_S,
    MIN_TTL_S,
    InvalidIdentity,
    InvalidSecret,
    InvalidServers,
    InvalidTtl,
    TurnConfig,
    TurnConfigError,
    check_identity,
    mint,
    parse_servers,
    parse_url,
    turn_identity,
)

SECRET = "liveclass-test-secret"
NOW = 1_700_000_000.9
EU = "turn:turn-eu.example.org:3478,turns:turn-eu.example.org:443?transport=tcp"
US = "turn:turn-us.example.org:3478,turn:turn-us.example.org:3478?transport=tcp"
SERVERS = f"eu={EU};us={US}"


def hmac_sha1_base64(secret: str, username: str) -> str:
    return base64.b64encode(
        hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    ).decode()


# -- credentials -----------------------------------------------------------------------------------


def test_mint_matches_a_vector_computed_with_openssl() -> None:
    # printf 1700000600:student-1 | openssl dgst -sha1 -hmac liveclass-test-secret -binary | base64
    credential = mint(SECRET.encode(), "student-1", 600, NOW)
    assert credential.username == "1700000600:student-1"
    assert credential.password == "lCZEvVeH/4oHOyr4YIUvIoeOJkY="
    assert credential.expires_at == 1_700_000_600


@pytest.mark.parametrize("identity", ["student-1", "teacher:42", "a@example.org", "x" * 256])
def test_the_password_is_base64_hmac_sha1_of_the_whole_username(identity: str) -> None:
    credential = mint(SECRET.encode(), identity, 3600, NOW)
    assert credential.username == f"{math.floor(NOW) + 3600}:{identity}"
    assert credential.password == hmac_sha1_base64(SECRET, credential.username)
    assert len(credential.password) == 28


def test_the_expiry_is_now_in_whole_seconds_plus_the_ttl() -> None:
    assert mint(b"k", "a", 600, 1_700_000_000.0).expires_at == 1_700_000_600
    assert mint(b"k", "a", 600, 1_700_000_000.999).expires_at == 1_700_000_600
    assert mint(b"k", "a", MIN_TTL_S, 0).expires_at == MIN_TTL_S
    assert mint(b"k", "a", MAX_TTL_S, NOW).expires_at == 1_700_000_000 + 86_400


def test_an_identity_with_colons_keeps_the_expiry_first() -> None:
    # coturn reads the expiry from the digits before the first ':'.
    credential = mint(SECRET.encode(), "teacher:42", 600, NOW)
    assert credential.username == "1700000600:teacher:42"
    assert credential.password == "O8fcqGlpwg7a8eHwTIdtVpMedl0="


@pytest.mark.parametrize("ttl_s", [0, -1, MIN_TTL_S - 1, MAX_TTL_S + 1, 600.0, True, "600"])
def test_a_ttl_outside_the_bounds_or_not_an_integer_is_refused(ttl_s: object) -> None:
    with pytest.raises(InvalidTtl, match="--turn-ttl-s"):
        mint(b"k", "a", ttl_s, NOW)  # type: ignore[arg-type]


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(InvalidSecret, match="empty"):
        mint(b"", "a", 600, NOW)


@pytest.mark.parametrize("now", [math.nan, math.inf, -1.0])
def test_now_must_be_a_unix_time(now: float) -> None:
    with pytest.raises(ValueError, match="unix time"):
        mint(b"k", "a", 600, now)


@pytest.mark.parametrize(
    ("identity", "reason"),
    [
        ("", "non-empty"),
        ("x" * (MAX_IDENTITY_CHARS + 1), "more than"),
        ("zoë", "printable ASCII"),
        ("a b", "printable ASCII"),
        ("a\tb", "printable ASCII"),
        ("o'brien", "quotes"),
        ('say "hi"', "quotes"),
        ("back\\slash", "quotes"),
        ("Union-Select", "union"),
    ],
)
def test_identities_coturn_refuses_are_refused_by_mint(identity: str, reason: str) -> None:
    with pytest.raises(InvalidIdentity, match=reason):
        mint(b"k", identity, 600, NOW)


def test_turn_identity_keeps_identities_coturn_accepts() -> None:
    for identity in ["student-1", "teacher:42", "a@example.org", "~x_y.z!$&()*+,;=/"]:
        assert turn_identity(identity) == identity


@pytest.mark.parametrize(
    ("identity", "encoded"),
    [
        ("zoë b", "zo%C3%AB%20b"),
        ("100%", "100%25"),
        ("o'brien", "o%27brien"),
        ('"q"\\', "%22q%22%5C"),
        ("union select", "union%20s%65lect"),
        ("UNION SELECT", "UNION%20S%45LECT"),
    ],
)
def test_turn_identity_percent_encodes_what_coturn_would_refuse(
    identity: str, encoded: str
) -> None:
    assert turn_identity(identity) == encoded
    assert urllib.parse.unquote(encoded) == identity


@given(st.text(min_size=1, max_size=40))
def test_turn_identity_is_reversible_and_always_mintable(identity: str) -> None:
    encoded = turn_identity(identity)
    check_identity(encoded)
    assert urllib.parse.unquote(encoded) == identity


def test_turn_identity_refuses_what_is_too_long_once_encoded() -> None:
    with pytest.raises(InvalidIdentity, match="more than"):
        turn_identity("ë" * 50)
    with pytest.raises(InvalidIdentity, match="non-empty"):
        turn_identity("")


# -- URLs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scheme", "host", "port", "transport", "relay", "normalized"),
    [
        ("turn:turn.example.org", "turn", "turn.example.org", 3478, None, "udp", None),
        ("turn:turn.example.org:3479", "turn", "turn.example.org", 3479, None, "udp", None),
        ("turn:203.0.113.5:3478?transport=udp", "turn", "203.0.113.5", 3478, "udp", "udp", None),
        ("TURN:h.example:3478?transport=TCP", "turn", "h.example", 3478, "tcp", "tcp",
         "turn:h.example:3478?transport=tcp"),
        ("turns:turn.example.org:443?transport=tcp", "turns", "turn.example.org", 443, "tcp",
         "tls", None),
        ("turns:turn.example.org", "turns", "turn.example.org", 5349, None, "tls", None),
        ("turn:[2001:db8::1]:3478", "turn", "2001:db8::1", 3478, None, "udp", None),
        ("stun:stun.example.org:19302", "stun", "stun.example.org", 19302, None, "udp", None),
        ("stuns:stun.example.org", "stuns", "stun.example.org", 5349, None, "tls", None),
    ],
)  # fmt: skip
def test_stun_and_turn_urls_parse(
    text: str,
    scheme: str,
    host: str,
    port: int,
    transport: str | None,
    relay: str,
    normalized: str | None,
) -> None:
    url = parse_url(text)
    assert (url.scheme, url.host, url.port, url.transport) == (scheme, host, port, transport)
    assert url.relay_transport == relay
    assert url.text == (normalized or text)
    assert url.is_turn == scheme.startswith("turn")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("turn-eu.example.org:3478", "scheme"),
        ("http://turn.example.org", "scheme"),
        ("turn://turn.example.org:3478", "no '//'"),
        ("turn:", "host is missing"),
        ("turn::3478", "host is missing"),
        ("turn:user:pass@turn.example.org", "credentials"),
        ("turn:user@turn.example.org", "credentials"),
        ("turn:turn.example.org:0", "1..65535"),
        ("turn:turn.example.org:65536", "1..65535"),
        ("turn:turn.example.org:34x", "number"),
        ("turn:300.1.2.3:3478", "not an IPv4 address"),
        ("turn:[2001:db8::zz]:3478", "not an IPv6 address"),
        ("turn:-bad-.example.org", "not a hostname"),
        ("turn:under_score.example.org", "not a hostname"),
        ("turn:turn.example.org?transport=sctp", "?transport=udp or ?transport=tcp"),
        ("turn:turn.example.org?foo=bar", "?transport=udp or ?transport=tcp"),
        ("turns:turn.example.org:443?transport=udp", "DTLS"),
        ("stun:stun.example.org?transport=udp", "no '?' parameters"),
    ],
)
def test_malformed_urls_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidServers) as refused:
        parse_url(text)
    assert reason in str(refused.value)
    assert text in str(refused.value)


# -- --turn-servers --------------------------------------------------------------------------------


def test_regions_parse_in_order_with_their_urls() -> None:
    eu, us = parse_servers(SERVERS)
    assert eu.name == "eu" and [url.text for url in eu.urls] == EU.split(",")
    assert us.name == "us" and [url.text for url in us.urls] == US.split(",")


def test_blanks_line_breaks_and_empty_entries_are_tolerated() -> None:
    text = f"\n  EU = {EU.replace(',', ' , ')} ,;\n\n us={US};\n"
    assert parse_servers(text) == parse_servers(SERVERS)


def test_a_single_region_needs_no_name() -> None:
    [region] = parse_servers(EU)
    assert region.name == DEFAULT_REGION
    assert [url.text for url in region.urls] == EU.split(",")


@pytest.mark.parametrize("text", ["", "   ", ";", "\n;\n"])
def test_an_empty_value_is_no_regions(text: str) -> None:
    assert parse_servers(text) == ()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f"{EU};us={US}", "has no region name"),
        (f"eu={EU};EU={US}", "region 'eu' is listed twice"),
        ("eu=turn:a.example,turn:a.example", "turn:a.example is listed twice"),
        ("eu=stun:stun.example.org", "region 'eu' has no turn: or turns: URL"),
        ("eu=", "region 'eu' has no turn: or turns: URL"),
        ("eu=turn://a.example", "region 'eu'"),
        ("eu/west=turn:a.example", "'eu/west' is not a region name"),
    ],
)
def test_a_bad_servers_value_is_refused_naming_the_region(text: str, reason: str) -> None:
    with pytest.raises(InvalidServers, match="--turn-servers") as refused:
        parse_servers(text)
    assert reason in str(refused.value)


# -- TurnConfig ------------------------------------------------------------------------------------


@pytest.fixture
def config() -> TurnConfig:
    return TurnConfig.from_options(SERVERS, SECRET, 600)


def test_ice_servers_are_one_rtcicerserver_with_the_regions_urls_and_a_credential(
    config: TurnConfig,
) -> None:
    assert config.ice_servers("student-1", "eu", NOW) == [
        {
            "urls": EU.split(","),
            "username": "1700000600:student-1",
            "credential": "lCZEvVeH/4oHOyr4YIUvIoeOJkY=",
        }
    ]


@pytest.mark.parametrize(
    ("region", "urls"),
    [("us", US), ("US", US), ("eu", EU), (None, EU), ("", EU), ("ap-south", EU)],
)
def test_a_region_not_given_or_not_listed_falls_back_to_the_first(
    config: TurnConfig, region: str | None, urls: str
) -> None:
    [server] = config.ice_servers("student-1", region, NOW)
    assert server["urls"] == urls.split(",")


def test_the_credential_uses_the_encoded_identity_and_the_configured_ttl() -> None:
    config = TurnConfig.from_options(SERVERS, SECRET, 900)
    [server] = config.ice_servers("zoë b", None, NOW)
    assert server["username"] == "1700000900:zo%C3%AB%20b"
    assert server["credential"] == hmac_sha1_base64(SECRET, "1700000900:zo%C3%AB%20b")


def test_no_servers_and_no_secret_turn_turn_off() -> None:
    config = TurnConfig.from_options("", "", DEFAULT_TTL_S)
    assert not config.enabled
    assert config.ice_servers("student-1", "eu", NOW) == []
    assert config.warnings() == []
    assert TurnConfig() == config
    with pytest.raises(LookupError):
        config.region(None)


@pytest.mark.parametrize(
    ("servers", "secret", "reason"),
    [
        (SERVERS, "", "--turn-secret is required"),
        ("", SECRET, "--turn-servers is empty"),
        (SERVERS, "short", "at least 16"),
        (SERVERS, "with a blank in the middle", "without blanks"),
        (SERVERS, " " + SECRET, "without blanks"),
        (SERVERS, "sécret-sécret-sécret", "printable ASCII"),
    ],
)
def test_a_missing_or_weak_secret_is_refused(servers: str, secret: str, reason: str) -> None:
    with pytest.raises(InvalidSecret, match=reason):
        TurnConfig.from_options(servers, secret, 600)


@pytest.mark.parametrize("ttl_s", [MIN_TTL_S - 1, MAX_TTL_S + 1])
def test_a_ttl_out_of_bounds_is_refused_at_start_up(ttl_s: int) -> None:
    with pytest.raises(InvalidTtl):
        TurnConfig.from_options(SERVERS, SECRET, ttl_s)
    with pytest.raises(InvalidTtl):
        TurnConfig.from_options("", "", ttl_s)


def test_the_secret_never_shows_in_repr(config: TurnConfig) -> None:
    assert SECRET not in repr(config)
    assert "turn-eu.example.org" in repr(config)


def test_warnings_name_regions_without_turns_on_443(config: TurnConfig) -> None:
    [warning] = config.warnings()
    assert "'us'" in warning and "443" in warning


def test_every_error_is_a_value_error() -> None:
    for error in (InvalidIdentity, InvalidSecret, InvalidServers, InvalidTtl):
        assert issubclass(error, TurnConfigError)
    assert issubclass(TurnConfigError, ValueError)


@given(st.text(max_size=60) | st.from_regex(r"(turns?|stuns?):[\[\]0-9a-f:.?=@/a-z-]{0,40}"))
def test_any_text_either_parses_or_is_refused_with_invalid_servers(text: str) -> None:
    try:
        url = parse_url(text)
    except InvalidServers:
        return
    assert parse_url(url.text) == url


@given(st.text(alphabet="eu=;,\n turns:a.example0-9?transport=tcp[]", max_size=80))
def test_any_servers_value_either_parses_or_is_refused_with_invalid_servers(text: str) -> None:
    try:
        regions = parse_servers(text)
    except InvalidServers:
        return
    assert all(any(url.is_turn for url in region.urls) for region in regions)
