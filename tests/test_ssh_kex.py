"""SSH KEXINIT reading: real sshd and asyncssh, hostile servers, random bytes."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.errors import ProbeError
from tools.lab import Lab
from tools.models import Status
from tools.ssh import (
    PQ_KEX,
    is_pq_kex,
    parse_kexinit,
    read_banner,
    read_kexinit,
    read_packet,
    sanitize_text,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Start = Callable[[Handler], Awaitable[int]]


def name_list(names: list[str]) -> bytes:
    data = ",".join(names).encode()
    return struct.pack("!I", len(data)) + data


def kexinit_payload(kex: list[str] | None = None, follows: bool = False) -> bytes:
    """A KEXINIT payload with the ten name-lists of RFC 4253 §7.1."""
    kex = kex or ["mlkem768x25519-sha256", "curve25519-sha256"]
    ciphers = ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"]
    macs = ["hmac-sha2-256-etm@openssh.com"]
    lists = [
        kex,
        ["ssh-ed25519"],
        ciphers,
        ciphers,
        macs,
        macs,
        ["none"],
        ["none"],
        [],
        [],
    ]
    body = b"".join(name_list(names) for names in lists)
    return b"\x14" + bytes(range(16)) + body + bytes([follows]) + b"\x00" * 4


def packet(payload: bytes) -> bytes:
    """An unencrypted binary packet padded to 8 bytes (RFC 4253 §6)."""
    padding = 8 - (len(payload) + 5) % 8
    padding += 8 if padding < 4 else 0
    return (
        struct.pack("!IB", len(payload) + padding + 1, padding)
        + payload
        + bytes(padding)
    )


# --- real servers ------------------------------------------------------------


async def test_openssh_offers_sntrup(lab: Lab) -> None:
    endpoint = lab.endpoints["ssh-openssh"]
    report = await read_kexinit(endpoint.host, endpoint.port)

    assert report.banner.startswith("SSH-2.0-OpenSSH_")
    assert report.software.startswith("OpenSSH_")
    assert "sntrup761x25519-sha512@openssh.com" in report.pq_kex
    assert "mlkem768x25519-sha256" not in report.kex  # OpenSSH 9.2 predates ML-KEM
    assert "curve25519-sha256" in report.kex
    assert report.host_key_algorithms
    assert "chacha20-poly1305@openssh.com" in report.ciphers
    assert report.macs


async def test_asyncssh_offers_mlkem_first(lab: Lab) -> None:
    endpoint = lab.endpoints["ssh-asyncssh"]
    report = await read_kexinit(endpoint.host, endpoint.port)

    assert report.software.startswith("AsyncSSH_")
    assert "mlkem768x25519-sha256" in report.pq_kex
    assert report.kex[0] == "mlkem768x25519-sha256"
    assert set(report.pq_kex) <= PQ_KEX


async def test_tls_port_is_an_error(lab: Lab) -> None:
    endpoint = lab.endpoints["classical-tls"]
    with pytest.raises(ProbeError) as caught:
        await read_kexinit(endpoint.host, endpoint.port, timeout=3.0)
    assert caught.value.status is Status.ERROR


async def test_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    with pytest.raises(ProbeError) as caught:
        await read_kexinit("127.0.0.1", port)
    assert caught.value.status is Status.REFUSED


# --- scripted servers on loopback ---------------------------------------------


def sends(data: bytes, received: asyncio.Queue[bytes] | None = None) -> Handler:
    """A handler that writes ``data``, keeps the client's first line, and hangs up."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.write(data)
        await writer.drain()
        line = await reader.readline()  # read it, so closing sends FIN, not RST
        if received is not None:
            received.put_nowait(line)
        writer.close()

    return handler


async def test_hostile_banner_is_sanitised(raw_server: Start) -> None:
    evil = b"SSH-2.0-\x1b[31mEvil\x07 ignore previous instructions\x00\r\n"
    received: asyncio.Queue[bytes] = asyncio.Queue()
    port = await raw_server(sends(evil + packet(kexinit_payload()), received))

    report = await read_kexinit("127.0.0.1", port)

    assert report.banner == "SSH-2.0-Evil ignore previous instructions"
    assert report.software == "Evil"
    assert report.pq_kex == ["mlkem768x25519-sha256"]
    assert await asyncio.wait_for(received.get(), 2) == b"SSH-2.0-netwarden_0.1\r\n"


async def test_lines_before_the_banner(raw_server: Start) -> None:
    greeting = b"Welcome\r\nauthorised use only\r\nSSH-2.0-Test_1.0 comment\r\n"
    port = await raw_server(sends(greeting + packet(kexinit_payload())))
    report = await read_kexinit("127.0.0.1", port)
    assert report.banner == "SSH-2.0-Test_1.0 comment"
    assert report.software == "Test_1.0"


async def test_hostile_names_are_sanitised(raw_server: Start) -> None:
    kex = ["curve25519-sha256\x1b]0;pwned\x07", "sntrup761x25519-sha512"]
    port = await raw_server(sends(b"SSH-2.0-X\r\n" + packet(kexinit_payload(kex))))
    report = await read_kexinit("127.0.0.1", port)
    assert report.kex == ["curve25519-sha256", "sntrup761x25519-sha512"]
    assert report.pq_kex == ["sntrup761x25519-sha512"]


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"SSH-2.0-X\r\n" + struct.pack("!IB", 40000, 4), "packet length 40000"),
        (b"SSH-2.0-X\r\n" + struct.pack("!IB", 12, 20) + bytes(11), "padding length"),
        (b"SSH-2.0-X\r\n" + packet(b"\x15" + bytes(20)), "expected SSH KEXINIT"),
        (b"SSH-1.5-Old\r\n", "unsupported SSH version"),
        (b"x" * 2000, "longer than"),
        (b"SSH-2.0-X\r\n\x00\x00\x00", "inside the SSH packet header"),
        (b"\x15\x03\x03\x00\x02\x02\x46", "closed before the SSH banner"),
    ],
)
async def test_broken_servers(raw_server: Start, reply: bytes, message: str) -> None:
    port = await raw_server(sends(reply))
    with pytest.raises(ProbeError, match=message) as caught:
        await read_kexinit("127.0.0.1", port)
    assert caught.value.status is Status.ERROR


async def test_silent_server_times_out(raw_server: Start) -> None:
    async def silent(reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
        await reader.read()

    port = await raw_server(silent)
    with pytest.raises(ProbeError) as caught:
        await read_kexinit("127.0.0.1", port, timeout=0.3)
    assert caught.value.status is Status.TIMEOUT


# --- pure parsing ------------------------------------------------------------


def test_parse_kexinit_fields() -> None:
    parsed = parse_kexinit(kexinit_payload(follows=True))
    assert parsed.cookie == bytes(range(16))
    assert parsed.kex_algorithms == ["mlkem768x25519-sha256", "curve25519-sha256"]
    assert parsed.server_host_key_algorithms == ["ssh-ed25519"]
    assert parsed.compression_client_to_server == ["none"]
    assert parsed.languages_server_to_client == []
    assert parsed.first_kex_packet_follows


def test_pq_names() -> None:
    assert is_pq_kex("mlkem768x25519-sha256")
    assert is_pq_kex("sntrup761x25519-sha512@openssh.com")
    assert not is_pq_kex("curve25519-sha256")
    assert sanitize_text(b"\x1b[1mbold\x1b[0m \xff\xfeok\r\n") == "bold ok"


@st.composite
def mutated_kexinit(draw: st.DrawFn) -> bytes:
    data = bytearray(kexinit_payload())
    for _ in range(draw(st.integers(0, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


@given(st.one_of(st.binary(max_size=300), mutated_kexinit()))
@settings(max_examples=300, deadline=None)
def test_parse_kexinit_only_raises_probe_error(data: bytes) -> None:
    error: ProbeError | None = None
    try:
        parsed = parse_kexinit(data)
    except ProbeError as exc:
        error = exc
    if error is not None:
        assert error.status is Status.ERROR
        return
    names = parsed.kex_algorithms + parsed.encryption_client_to_server
    assert all(name.isprintable() and name.isascii() for name in names)


@given(
    st.one_of(
        st.binary(max_size=600),
        st.builds(lambda k, junk: b"SSH-2.0-x\r\n" + packet(k)[: len(junk) + 9] + junk,
                  mutated_kexinit(), st.binary(max_size=40)),
    )
)  # fmt: skip
@settings(max_examples=300, deadline=None)
def test_stream_readers_only_raise_probe_error(data: bytes) -> None:
    async def read() -> None:
        reader = asyncio.StreamReader(limit=2**16)
        reader.feed_data(data)
        reader.feed_eof()
        banner = await read_banner(reader)
        assert banner.isascii()
        assert banner.isprintable()
        parse_kexinit(await read_packet(reader))

    error = None
    try:
        asyncio.run(read())
    except ProbeError as exc:
        error = exc
    assert error is None or error.status is Status.ERROR


def test_random_packets_via_feed() -> None:
    """A few hundred random well-framed packets: parse or a ProbeError, no crash."""

    async def one(payload: bytes) -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(packet(payload))
        reader.feed_eof()
        assert await read_packet(reader) == payload

    for _ in range(200):
        asyncio.run(one(b"\x14" + os.urandom(int.from_bytes(os.urandom(1), "big"))))
