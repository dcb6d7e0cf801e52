"""ClientHello layout, reply parsing, and the parser's behaviour on hostile bytes."""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools.errors import ProbeError
from tools.lab import Lab, LabEndpoint
from tools.tls import groups
from tools.tls.wire import (
    HRR_RANDOM,
    TLS10,
    TLS12,
    TLS13,
    Alert,
    Closed,
    NotTls,
    ReplyParser,
    ServerHello,
    ServerReply,
    SshBanner,
    WireError,
    build_client_hello,
    parse_server_reply,
    read_server_reply,
)

X25519, SECP256R1, X25519MLKEM768, P256MLKEM768 = 0x001D, 0x0017, 0x11EC, 0x11EB

# A TLS 1.3-only hello offering x25519 with an empty key_share, TLS_AES_128_GCM_SHA256,
# all-zero random and session id, no SNI: written out by hand from RFC 8446 §4.1.2.
GOLDEN_HELLO = bytes.fromhex(
    "16 0301 009b"  # record: handshake, TLS 1.0 record version, 155 bytes
    "01 000097"  # ClientHello, 151 bytes
    "0303"
    + "00" * 32
    + "20"
    + "00" * 32  # legacy_version, random, session id
    + "0002 1301"  # cipher suites
    "01 00"  # compression: null
    "004c"  # 76 bytes of extensions
    "000a 0004 0002 001d"  # supported_groups: x25519
    "000d 0028 0026"  # signature_algorithms, 19 schemes
    "0807 0808 0403 0503 0603 0804 0805 0806 0809 080a 080b"
    "0904 0905 0906 0401 0501 0601 0203 0201"
    "ff01 0001 00"  # renegotiation_info, empty
    "002b 0003 02 0304"  # supported_versions: TLS 1.3
    "002d 0002 01 01"  # psk_key_exchange_modes: psk_dhe_ke
    "0033 0002 0000"  # key_share: no shares
)


# --- a ClientHello reader for checking what we build -------------------------


@dataclass
class ParsedHello:
    legacy_version: int
    session_id: bytes
    ciphers: list[int]
    extensions: dict[int, bytes]


def parse_client_hello(data: bytes) -> ParsedHello:
    """Split our own ClientHello back into its fields (the test's oracle)."""
    assert data[0] == 22
    payload = b""
    while data:
        length = struct.unpack("!H", data[3:5])[0]
        payload += data[5 : 5 + length]
        data = data[5 + length :]
    assert payload[0] == 1
    assert int.from_bytes(payload[1:4], "big") == len(payload) - 4
    body = payload[4:]
    sid_len = body[34]
    pos = 35 + sid_len
    cipher_len = struct.unpack("!H", body[pos : pos + 2])[0]
    ciphers = [
        struct.unpack("!H", body[i : i + 2])[0]
        for i in range(pos + 2, pos + 2 + cipher_len, 2)
    ]
    pos += 2 + cipher_len + 2  # ciphers, then compression methods (1, null)
    ext_len = struct.unpack("!H", body[pos : pos + 2])[0]
    assert pos + 2 + ext_len == len(body)
    return ParsedHello(
        legacy_version=struct.unpack("!H", body[:2])[0],
        session_id=body[35 : 35 + sid_len],
        ciphers=ciphers,
        extensions=_extensions(body[pos + 2 :]),
    )


def _extensions(block: bytes) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    while block:
        ext_type, length = struct.unpack("!HH", block[:4])
        assert ext_type not in found
        found[ext_type] = block[4 : 4 + length]
        block = block[4 + length :]
    return found


def _key_shares(data: bytes) -> dict[int, bytes]:
    total = struct.unpack("!H", data[:2])[0]
    assert total == len(data) - 2
    shares, pos = {}, 2
    while pos < len(data):
        group, length = struct.unpack("!HH", data[pos : pos + 4])
        shares[group] = data[pos + 4 : pos + 4 + length]
        pos += 4 + length
    return shares


# --- building ------------------------------------------------------------------


def test_golden_minimal_hello() -> None:
    hello = build_client_hello(
        server_name=None,
        groups=[X25519],
        ciphers=[0x1301],
        random=bytes(32),
        session_id=bytes(32),
    )
    assert hello == GOLDEN_HELLO


def test_hello_extensions_and_key_shares() -> None:
    hello = build_client_hello(
        server_name="example.test",
        groups=[X25519MLKEM768, P256MLKEM768, X25519, SECP256R1],
        key_shares=[X25519MLKEM768, P256MLKEM768, X25519, SECP256R1],
        versions=(TLS13, TLS12),
    )
    parsed = parse_client_hello(hello)
    ext = parsed.extensions
    assert ext[0x0000] == b"\x00\x0f\x00\x00\x0cexample.test"
    assert ext[0x002B] == b"\x04\x03\x04\x03\x03"
    assert ext[0x000B] == b"\x01\x00"  # ec_point_formats because 1.2 is offered
    assert {0x0904, 0x0905, 0x0906, 0x0807} <= _u16_set(ext[0x000D][2:])
    shares = _key_shares(ext[0x0033])
    assert len(shares[X25519MLKEM768]) == 1216
    assert shares[X25519MLKEM768][:1152] == bytes(1152)
    assert len(shares[P256MLKEM768]) == 1249
    assert shares[P256MLKEM768][0] == 4  # uncompressed P-256 point comes first
    assert len(shares[X25519]) == 32
    assert len(shares[SECP256R1]) == 65
    assert len(parsed.session_id) == 32
    assert {0x1301, 0x1302, 0x1303, 0xC02B} <= set(parsed.ciphers)


def _u16_set(data: bytes) -> set[int]:
    return {struct.unpack("!H", data[i : i + 2])[0] for i in range(0, len(data), 2)}


def test_no_sni_for_ip_literals() -> None:
    for address in ("127.0.0.1", "::1"):
        hello = build_client_hello(server_name=address, groups=[X25519])
        ext = parse_client_hello(hello).extensions
        assert 0x0000 not in ext


def test_legacy_hello_has_no_tls13_parts() -> None:
    parsed = parse_client_hello(
        build_client_hello(server_name="a.test", groups=[X25519], versions=(TLS10,))
    )
    ext = parsed.extensions
    assert parsed.legacy_version == TLS10
    assert not {0x002B, 0x0033, 0x002D} & set(ext)
    ciphers = parsed.ciphers
    assert 0x1301 not in ciphers  # no TLS 1.3 suite
    assert 0xC02F not in ciphers  # no TLS 1.2-only suite
    assert 0xC013 in ciphers


def test_every_buildable_share_has_its_size() -> None:
    for group in groups.GROUPS:
        if group.share_size is None:
            with pytest.raises(ValueError, match="no key share"):
                groups.make_key_share(group.code)
        else:
            assert len(groups.make_key_share(group.code)) == group.share_size


def test_registry_lookup() -> None:
    assert groups.by_code(0x11EC) == groups.by_name("x25519mlkem768")
    assert groups.by_name("X25519") is not None
    assert groups.by_name("nonsense") is None
    assert groups.group_name(0xABCD) == "0xABCD"
    kinds = {g.name: g.kind for g in groups.GROUPS}
    assert kinds["MLKEM768"] == "pq"
    assert kinds["X25519Kyber768Draft00"] == "pq-obsolete"
    assert kinds["ffdhe2048"] == "classical"
    assert len({g.code for g in groups.GROUPS}) == len(groups.GROUPS)


# --- a real OpenSSL 4 server takes our shares -------------------------------------


@pytest.fixture(scope="module")
def pq_lab() -> Iterator[LabEndpoint]:
    with Lab(["pq-tls"]) as running:
        yield running.endpoints["pq-tls"]


async def _send(port: int, hello: bytes, key_exchange: bool = False) -> ServerReply:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(hello)
        await writer.drain()
        return await read_server_reply(reader, 5.0, key_exchange=key_exchange)
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("group", "server_share"), [(X25519MLKEM768, 1120), (P256MLKEM768, 1153)]
)
async def test_openssl_accepts_mlkem_shares(
    pq_lab: LabEndpoint, group: int, server_share: int
) -> None:
    hello = build_client_hello(
        server_name="localhost", groups=[group], key_shares=[group]
    )
    reply = await _send(pq_lab.port, hello)
    assert isinstance(reply, ServerHello)
    assert not reply.is_hello_retry
    assert reply.version == TLS13
    assert reply.key_share_group == group
    assert reply.key_share_length == server_share


async def test_random_mlkem_share_is_rejected(pq_lab: LabEndpoint) -> None:
    share = os.urandom(1216)  # fails the FIPS 203 encapsulation-key check
    hello = build_client_hello(
        server_name="localhost",
        groups=[X25519MLKEM768],
        key_shares=[X25519MLKEM768],
        shares={X25519MLKEM768: share},
    )
    reply = await _send(pq_lab.port, hello)
    assert reply == Alert(2, 47, "illegal_parameter")


async def test_tls12_key_exchange_is_read(pq_lab: LabEndpoint) -> None:
    hello = build_client_hello(
        server_name="localhost", groups=[SECP256R1], versions=(TLS12,)
    )
    reply = await _send(pq_lab.port, hello, key_exchange=True)
    assert isinstance(reply, ServerHello)
    assert reply.version == TLS12
    assert reply.selected_group == SECP256R1


# --- parsing replies ------------------------------------------------------------


def server_hello(
    *,
    random: bytes = b"\x11" * 32,
    extensions: bytes | None = None,
    legacy: int = TLS12,
    cipher: int = 0x1302,
) -> bytes:
    """A ServerHello handshake message (header included)."""
    if extensions is None:
        extensions = _ext(0x002B, b"\x03\x04") + _ext(0x0033, b"\x11\xec")
    body = (
        struct.pack("!H", legacy) + random + b"\x00" + struct.pack("!HB", cipher, 0)
        + struct.pack("!H", len(extensions)) + extensions
    )  # fmt: skip
    return b"\x02" + len(body).to_bytes(3, "big") + body


def _ext(ext_type: int, data: bytes) -> bytes:
    return struct.pack("!HH", ext_type, len(data)) + data


def record(content_type: int, payload: bytes, version: int = TLS12) -> bytes:
    return struct.pack("!BHH", content_type, version, len(payload)) + payload


def test_hello_retry_request() -> None:
    reply = parse_server_reply(record(22, server_hello(random=HRR_RANDOM)))
    assert isinstance(reply, ServerHello)
    assert reply.is_hello_retry
    assert reply.selected_group == X25519MLKEM768
    assert reply.key_share_group is None
    assert reply.version_name == "TLS 1.3"
    assert reply.cipher_name == "TLS_AES_256_GCM_SHA384"


def test_server_hello_with_share() -> None:
    share = _ext(0x0033, struct.pack("!HH", X25519, 32) + bytes(32))
    reply = parse_server_reply(
        record(22, server_hello(extensions=_ext(0x002B, b"\x03\x04") + share))
    )
    assert isinstance(reply, ServerHello)
    assert not reply.is_hello_retry
    assert (reply.selected_group, reply.key_share_group, reply.key_share_length) == (
        X25519,
        X25519,
        32,
    )


def test_legacy_server_hello_without_extensions() -> None:
    body = (
        struct.pack("!H", TLS10) + bytes(32) + b"\x00" + struct.pack("!HB", 0x002F, 0)
    )
    reply = parse_server_reply(
        record(22, b"\x02" + len(body).to_bytes(3, "big") + body, TLS10)
    )
    assert isinstance(reply, ServerHello)
    assert reply.version_name == "TLS 1.0"
    assert reply.extensions == {}


def test_other_replies() -> None:
    assert parse_server_reply(record(21, b"\x02\x46")) == Alert(
        2, 70, "protocol_version"
    )
    assert parse_server_reply(b"") == Closed()
    banner = parse_server_reply(b"SSH-2.0-OpenSSH_9.2p1\x1b[2J\r\nrest")
    assert banner == SshBanner("SSH-2.0-OpenSSH_9.2p1")
    not_tls = parse_server_reply(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    assert isinstance(not_tls, NotTls)
    assert "HTTP" in not_tls.reason


def test_records_split_and_messages_joined() -> None:
    """ServerHello split over three records, then SH + more in one record."""
    message = server_hello(random=HRR_RANDOM)
    parts = [message[:3], message[3:50], message[50:]]
    data = b"".join(record(22, p) for p in parts)
    parser = ReplyParser()
    replies = [parser.feed(data[i : i + 1]) for i in range(len(data))]
    assert all(r is None for r in replies[:-1])
    assert isinstance(replies[-1], ServerHello)
    assert replies[-1].selected_group == X25519MLKEM768


def test_tls12_key_exchange_after_certificate() -> None:
    hello = server_hello(extensions=b"", cipher=0xC02F)
    certificate = b"\x0b\x00\x00\x03\x00\x00\x00"
    key_exchange = b"\x0c\x00\x00\x04\x03\x00\x1d\x20"
    data = record(22, hello + certificate) + record(22, key_exchange)
    with_kx = parse_server_reply(data, key_exchange=True)
    assert isinstance(with_kx, ServerHello)
    assert with_kx.selected_group == X25519
    plain = parse_server_reply(data)
    assert isinstance(plain, ServerHello)
    assert plain.selected_group is None


def _cut_extensions() -> bytes:
    """A whole ServerHello message whose extension block claims 12 bytes, has 2."""
    body = server_hello()[4:42] + b"\x00\x0c\x00\x2b"
    return b"\x02" + len(body).to_bytes(3, "big") + body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (record(22, _cut_extensions()), "truncated ServerHello extensions at byte 40"),
        (
            record(22, server_hello(extensions=_ext(0x2B, b"\x03"))),
            "supported_versions extension of 1 bytes",
        ),
        (
            record(22, b"\x0b\x00\x00\x00"),
            "expected ServerHello, got handshake message 11",
        ),
        (record(23, b"xx"), "unexpected data record before ServerHello at byte 0"),
        (
            record(22, server_hello())[:20],
            "connection closed after 20 bytes, inside a handshake record",
        ),
        (b"\x16\x03", "connection closed after 2 bytes, inside a record header"),
        (b"\x16\x03\x03\xff\xff", "record of 65535 bytes exceeds"),
        (record(21, b"\x02"), "alert record of 1 bytes"),
    ],
)
def test_malformed_replies_name_the_problem(data: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message) as caught:
        parse_server_reply(data)
    assert caught.value.status.value == "error"


# --- hostile bytes: only WireError / ProbeError, and chunking never matters ---------

VALID_REPLIES = [
    record(22, server_hello(random=HRR_RANDOM)),
    record(22, server_hello()),
    record(21, b"\x02\x28"),
    record(22, server_hello(extensions=b"", cipher=0xC02F) + b"\x0b\x00\x00\x00")
    + record(22, b"\x0c\x00\x00\x03\x03\x00\x17"),
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID_REPLIES)))
    for _ in range(draw(st.integers(0, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


def _outcome(fn: Callable[[bytes], ServerReply], data: bytes) -> object:
    try:
        return fn(data)
    except ProbeError as exc:
        return type(exc)


@given(st.one_of(st.binary(max_size=400), mutated()), st.booleans())
@settings(max_examples=400, deadline=None)
def test_parse_never_crashes(data: bytes, key_exchange: bool) -> None:
    outcome = _outcome(lambda d: parse_server_reply(d, key_exchange=key_exchange), data)
    assert outcome is WireError or isinstance(
        outcome, ServerHello | Alert | SshBanner | NotTls | Closed
    )


@given(
    st.one_of(st.binary(max_size=400), mutated()),
    st.lists(st.integers(1, 64), max_size=20),
)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_incremental_reader_matches_whole_parse(data: bytes, cuts: list[int]) -> None:
    async def read() -> ServerReply:
        reader = asyncio.StreamReader()
        pos = 0
        for cut in [*cuts, len(data)]:
            reader.feed_data(data[pos : pos + cut])
            pos += cut
        reader.feed_eof()
        return await read_server_reply(reader, 1.0)

    incremental = _outcome(lambda _: asyncio.run(read()), data)
    whole = _outcome(parse_server_reply, data)
    assert type(incremental) is type(whole) or incremental is whole
    if isinstance(whole, ServerHello | Alert | Closed):
        assert incremental == whole
