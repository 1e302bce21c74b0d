"""turn_config's credentials against a real coturn running the shipped deploy/coturn config.

One coturn (tests/turn.py) on 127.0.0.1 for the module, with two static-auth-secrets as during a
rotation; clients are aioice's TURN client, aiortc peer connections limited to relay candidates,
and coturn's own turnutils_uclient. Every address involved is 127.0.0.1: coturn listens and
relays there, the peers are echo sockets there (``allow-loopback-peers``), and the private
addresses of the denied-peer test only ever appear inside CreatePermission requests to coturn,
which refuses them before anything is sent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import shutil
import socket
import subprocess
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from secrets import token_hex
from typing import cast

import pytest
from aioice import stun
from aioice.turn import TurnClientTcpProtocol, TurnClientUdpProtocol, create_turn_endpoint
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
)

from tests.turn import HOST, Coturn
from turn_config import MIN_TTL_S, IceUrl, TurnConfig, mint, parse_url

#: Seconds any one TURN exchange may take on loopback before the test fails.
EXCHANGE_TIMEOUT_S = 5.0
#: The relayed ports come from the shipped min-port..max-port.
RELAY_PORTS = range(49152, 65536)
TRANSPORTS = ["udp", "tcp", "tls"]

TurnClient = TurnClientUdpProtocol | TurnClientTcpProtocol


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    # secrets[0] is the current secret, secrets[1] the one a rotation is retiring.
    server = Coturn(tmp_path_factory.mktemp("coturn"), secrets=[token_hex(32), token_hex(32)])
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def config(coturn: Coturn) -> TurnConfig:
    return TurnConfig.from_options(coturn.servers_option(), coturn.secrets[0], 600)


class Inbox(asyncio.DatagramProtocol):
    """Collects what arrives through a TURN allocation: (data, peer address)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))


class Echo(asyncio.DatagramProtocol):
    """A UDP peer on 127.0.0.1 that sends every datagram back to where it came from."""

    transport: asyncio.DatagramTransport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)


@asynccontextmanager
async def echo_peer() -> AsyncIterator[tuple[str, int]]:
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        Echo, local_addr=(HOST, 0)
    )
    try:
        yield transport.get_extra_info("sockname")
    finally:
        transport.close()


def fields(server: dict[str, object]) -> tuple[list[str], str, str]:
    """The urls, username and credential of one RTCIceServer dictionary."""
    urls, username, credential = server["urls"], server["username"], server["credential"]
    assert isinstance(urls, list) and isinstance(username, str) and isinstance(credential, str)
    return [str(url) for url in urls], username, credential


def url_for(config: TurnConfig, transport: str) -> IceUrl:
    """The configured URL whose client transport is ``transport`` (udp, tcp or tls)."""
    return next(url for url in config.region(None).urls if url.relay_transport == transport)


#: The local UDP ports this module's allocations came from.
USED_UDP_PORTS: set[int] = set()


def unused_udp_socket(server: tuple[str, int]) -> socket.socket:
    """A UDP socket connected to ``server`` from a local port no earlier test here used.

    coturn keeps a 5-tuple's session, and the username it first saw there, after the allocation
    is deleted; an Allocate with another username on a reused port is refused with 437
    ("Allocation mismatch: wrong credentials"), not with the 401 a test expects.
    """
    while True:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
        if port not in USED_UDP_PORTS:
            USED_UDP_PORTS.add(port)
            sock.connect(server)
            sock.setblocking(False)
            return sock
        sock.close()


@asynccontextmanager
async def allocation(
    coturn: Coturn,
    url: IceUrl,
    username: str,
    password: str,
    timeout: float = EXCHANGE_TIMEOUT_S,
) -> AsyncIterator[tuple[TurnClient, Inbox]]:
    """A TURN allocation made through ``url`` with these credentials, deleted on exit.

    Raises:
        aioice.stun.TransactionFailed: coturn refused the Allocate (``error_code`` 401...).
        TimeoutError: coturn did not answer within ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    server = (url.host, url.port)
    client: TurnClient
    inner: asyncio.BaseTransport
    if url.relay_transport == "udp":
        inner, client = await loop.create_datagram_endpoint(
            lambda: TurnClientUdpProtocol(server, username, password, 600, 500),
            sock=unused_udp_socket(server),
        )
    else:
        inner, client = await loop.create_connection(
            lambda: TurnClientTcpProtocol(server, username, password, 600, 500),
            host=url.host,
            port=url.port,
            ssl=coturn.ssl_context() if url.relay_transport == "tls" else None,
        )
    try:
        await asyncio.wait_for(client.connect(), timeout)
    except BaseException:
        inner.close()
        raise
    inbox = Inbox()
    client.receiver = inbox
    try:
        yield client, inbox
    finally:
        await asyncio.wait_for(client.delete(), EXCHANGE_TIMEOUT_S)


async def relays(client: TurnClient, inbox: Inbox, peer: tuple[str, int]) -> bool:
    """A datagram sent through the allocation to the echo ``peer`` comes back from it."""
    payload = token_hex(8).encode()
    await asyncio.wait_for(client.send_data(payload, peer), EXCHANGE_TIMEOUT_S)
    return await asyncio.wait_for(inbox.queue.get(), EXCHANGE_TIMEOUT_S) == (payload, peer)


async def refused_with(coturn: Coturn, url: IceUrl, username: str, password: str) -> int | None:
    """The STUN error code coturn refuses an Allocate with; None if it allocated."""
    try:
        async with allocation(coturn, url, username, password):
            return None
    except stun.TransactionFailed as exc:
        return exc.response.error_code


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_minted_credential_gets_a_relay_that_relays_through_each_listed_url(
    coturn: Coturn, config: TurnConfig, transport: str
) -> None:
    [server] = config.ice_servers("student-1", "local", time.time())
    urls, username, password = fields(server)
    url = url_for(config, transport)
    assert url.text in urls
    async with echo_peer() as peer, allocation(coturn, url, username, password) as (client, inbox):
        assert client.relayed_address is not None
        host, port = client.relayed_address
        assert host == HOST and port in RELAY_PORTS
        assert await relays(client, inbox, peer)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_expired_credential_is_refused_with_401(
    coturn: Coturn, config: TurnConfig, transport: str
) -> None:
    expired = mint(config.secret, "student-1", 600, now=time.time() - 3600)
    assert expired.expires_at < time.time()
    url = url_for(config, transport)
    assert await refused_with(coturn, url, expired.username, expired.password) == 401


async def test_a_credential_minted_with_another_secret_is_refused_with_401(
    coturn: Coturn, config: TurnConfig
) -> None:
    forged = mint(token_hex(32).encode(), "student-1", 600, now=time.time())
    url = url_for(config, "udp")
    assert await refused_with(coturn, url, forged.username, forged.password) == 401


async def test_a_credential_minted_with_the_secret_being_rotated_out_still_allocates(
    coturn: Coturn,
) -> None:
    previous = TurnConfig.from_options(coturn.servers_option(), coturn.secrets[1], 600)
    credential = previous.credential("student-1", time.time())
    url = url_for(previous, "udp")
    async with allocation(coturn, url, credential.username, credential.password) as (client, _):
        assert client.relayed_address is not None


async def test_an_allocation_outlives_its_credential_but_the_credential_admits_no_new_one(
    coturn: Coturn, config: TurnConfig
) -> None:
    # The shortest TTL, minted as if MIN_TTL_S - 2 seconds ago: it expires in 1 to 2 s.
    credential = mint(config.secret, "student-1", MIN_TTL_S, now=time.time() - (MIN_TTL_S - 2))
    url = url_for(config, "udp")
    async with (
        echo_peer() as first_peer,
        echo_peer() as second_peer,
        allocation(coturn, url, credential.username, credential.password) as (client, inbox),
    ):
        assert await relays(client, inbox, first_peer)
        # coturn accepts a credential through its expiry second (it compares whole seconds).
        await asyncio.sleep(max(0.0, credential.expires_at + 2 - time.time()))
        refresh = stun.Message(stun.Method.REFRESH, stun.Class.REQUEST)
        refresh.attributes["LIFETIME"] = 600
        response, _ = await asyncio.wait_for(client.request_with_retry(refresh), EXCHANGE_TIMEOUT_S)
        assert response.attributes["LIFETIME"] > 0
        # A peer never seen before: a new permission and channel under the expired credential.
        assert await relays(client, inbox, second_peer)
        assert await refused_with(coturn, url, credential.username, credential.password) == 401


@pytest.mark.parametrize(
    "identity", ["teacher:42", "zoë van der berg", 'o\'brien "the" \\ union select']
)
async def test_identities_coturn_would_refuse_are_encoded_and_allocate(
    coturn: Coturn, config: TurnConfig, identity: str
) -> None:
    credential = config.credential(identity, time.time())
    expiry, _, turn_identity = credential.username.partition(":")
    assert int(expiry) == credential.expires_at
    assert urllib.parse.unquote(turn_identity) == identity
    url = url_for(config, "udp")
    async with allocation(coturn, url, credential.username, credential.password) as (client, _):
        assert client.relayed_address is not None


async def test_coturn_does_not_answer_a_username_with_a_space(
    coturn: Coturn, config: TurnConfig
) -> None:
    """Why mint() refuses such identities and turn_identity() encodes them: coturn drops the
    request without an answer (``is_secure_username``), so a client would only time out."""
    username = f"{int(time.time()) + 600}:zoë van der berg"
    password = base64.b64encode(
        hmac.new(config.secret, username.encode(), hashlib.sha1).digest()
    ).decode()
    with pytest.raises(TimeoutError):
        async with allocation(coturn, url_for(config, "udp"), username, password, timeout=2.0):
            pass
    assert "wrong username" in coturn.log()


@pytest.mark.parametrize(
    "peer", ["10.1.2.3", "169.254.169.254", "172.16.0.1", "192.168.1.1", "100.64.0.1"]
)
async def test_the_shipped_config_refuses_to_relay_to_private_addresses(
    coturn: Coturn, config: TurnConfig, peer: str
) -> None:
    credential = config.credential("student-1", time.time())
    async with allocation(
        coturn, url_for(config, "udp"), credential.username, credential.password
    ) as (client, _):
        # Permissions are installed in coturn only; nothing is sent to the peer address.
        allowed = stun.Message(stun.Method.CREATE_PERMISSION, stun.Class.REQUEST)
        allowed.attributes["XOR-PEER-ADDRESS"] = (HOST, 9)
        await asyncio.wait_for(client.request_with_retry(allowed), EXCHANGE_TIMEOUT_S)
        denied = stun.Message(stun.Method.CREATE_PERMISSION, stun.Class.REQUEST)
        denied.attributes["XOR-PEER-ADDRESS"] = (peer, 9)
        with pytest.raises(stun.TransactionFailed) as refused:
            await asyncio.wait_for(client.request_with_retry(denied), EXCHANGE_TIMEOUT_S)
        assert refused.value.response.error_code == 403


async def test_aioice_turn_endpoint_relays_with_the_ice_servers_of_a_client(
    config: TurnConfig,
) -> None:
    [server] = config.ice_servers("student-1", None, time.time())
    urls, username, password = fields(server)
    url = parse_url(urls[0])
    async with echo_peer() as peer:
        transport, inbox = await asyncio.wait_for(
            create_turn_endpoint(
                Inbox, server_addr=(url.host, url.port), username=username, password=password
            ),
            EXCHANGE_TIMEOUT_S,
        )
        try:
            transport.sendto(b"ping", peer)
            assert await asyncio.wait_for(inbox.queue.get(), EXCHANGE_TIMEOUT_S) == (b"ping", peer)
        finally:
            transport.close()


async def test_relay_only_peer_connections_exchange_data_through_coturn(
    config: TurnConfig,
) -> None:
    """The acceptance shape of a relay-only client: aiortc with iceTransportPolicy "relay" and
    the iceServers turn_config hands out, on both sides."""
    now = time.time()

    def relay_only(identity: str) -> RTCConfiguration:
        servers = [
            RTCIceServer(*fields(server)) for server in config.ice_servers(identity, None, now)
        ]
        return RTCConfiguration(iceServers=servers, iceTransportPolicy=RTCIceTransportPolicy.RELAY)

    teacher, student = (
        RTCPeerConnection(relay_only("teacher")),
        RTCPeerConnection(relay_only("student")),
    )
    try:
        channel = teacher.createDataChannel("chat")
        opened = asyncio.Event()
        replies: asyncio.Queue[str] = asyncio.Queue()
        channel.on("open", opened.set)
        channel.on("message", replies.put_nowait)

        @student.on("datachannel")
        def echo(remote: RTCDataChannel) -> None:
            remote.on("message", lambda message: remote.send(f"echo {message}"))

        await teacher.setLocalDescription(await teacher.createOffer())
        await student.setRemoteDescription(teacher.localDescription)
        await student.setLocalDescription(await student.createAnswer())
        await teacher.setRemoteDescription(student.localDescription)
        for description in (teacher.localDescription, student.localDescription):
            candidates = [
                line for line in description.sdp.splitlines() if line.startswith("a=candidate:")
            ]
            assert candidates, description.sdp
            assert all(f" {HOST} " in line and " typ relay" in line for line in candidates)
        await asyncio.wait_for(opened.wait(), 20)
        channel.send("hello")
        assert await asyncio.wait_for(replies.get(), 10) == "echo hello"
    finally:
        await teacher.close()
        await student.close()


def turnutils_uclient(
    coturn: Coturn, username: str, password: str
) -> subprocess.CompletedProcess[str]:
    """coturn's own test client: two allocations over UDP relaying a message to each other
    (``-y``), with these credentials."""
    uclient = shutil.which("turnutils_uclient")
    assert uclient is not None, "run bash scripts/bootstrap.sh --system-deps (coturn)"
    command = [uclient, "-u", username, "-w", password, "-y", "-n", "1", "-m", "1"]
    return subprocess.run(
        [*command, "-p", str(coturn.port), HOST],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=coturn.directory,
    )


def test_turnutils_uclient_relays_with_a_minted_credential(
    coturn: Coturn, config: TurnConfig
) -> None:
    credential = config.credential("student-1", time.time())
    result = turnutils_uclient(coturn, credential.username, credential.password)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Total lost packets 0 " in result.stdout, result.stdout


def test_turnutils_uclient_is_refused_an_expired_credential(
    coturn: Coturn, config: TurnConfig
) -> None:
    expired = mint(config.secret, "student-1", 600, now=time.time() - 3600)
    result = turnutils_uclient(coturn, expired.username, expired.password)
    assert result.returncode != 0
    assert "Cannot complete Allocation" in result.stdout + result.stderr
