"""An SSH server's key-exchange offer, read without any cryptography.

After the version banners, an SSH server sends its first binary packet in the clear:
message 20, KEXINIT, a 16-byte cookie followed by ten comma-separated name-lists
(RFC 4253 §7.1). That list tells whether post-quantum hybrids such as
``mlkem768x25519-sha256`` are on offer. Everything the peer sends is hostile text:
banners and names are reduced to printable ASCII and capped before anyone sees them.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import struct
from dataclasses import dataclass

from tools.errors import ProbeError
from tools.models import SshKexReport, Status

logger = logging.getLogger(__name__)

CLIENT_BANNER = b"SSH-2.0-netwarden_0.1"
PQ_KEX: frozenset[str] = frozenset(
    {
        "sntrup761x25519-sha512@openssh.com",
        "sntrup761x25519-sha512",
        "mlkem768x25519-sha256",
        "mlkem768nistp256-sha256",
        "mlkem1024nistp384-sha384",
    }
)
MAX_PACKET = 35000  # RFC 4253 §6.1: implementations must accept 35000 bytes
MAX_LINE = 1024  # a banner line may be 255 bytes; be a little lenient
MAX_PRE_BANNER_LINES = 32
MSG_KEXINIT = 20
# Terminal escapes: OSC strings (ESC ] ... BEL or ST), CSI sequences, 2-byte escapes.
_ANSI_ESCAPE = re.compile(
    rb"\x1b\][^\x07\x1b]*(\x07|\x1b\\)?|\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]"
)
_NOT_PRINTABLE = re.compile(rb"[^\x20-\x7e]")
_NAME_LISTS = (
    "kex_algorithms",
    "server_host_key_algorithms",
    "encryption_client_to_server",
    "encryption_server_to_client",
    "mac_client_to_server",
    "mac_server_to_client",
    "compression_client_to_server",
    "compression_server_to_client",
    "languages_client_to_server",
    "languages_server_to_client",
)


def sanitize_text(data: bytes, *, limit: int = 255) -> str:
    """Peer bytes as printable ASCII: escape sequences and control bytes removed."""
    text = _NOT_PRINTABLE.sub(b"", _ANSI_ESCAPE.sub(b"", data[: limit * 4]))
    return text[:limit].decode("ascii").strip()


def is_pq_kex(name: str) -> bool:
    """True for a key-exchange method that resists a quantum computer."""
    return name in PQ_KEX


@dataclass(frozen=True)
class KexInit:
    """The parsed SSH_MSG_KEXINIT payload."""

    cookie: bytes
    kex_algorithms: list[str]
    server_host_key_algorithms: list[str]
    encryption_client_to_server: list[str]
    encryption_server_to_client: list[str]
    mac_client_to_server: list[str]
    mac_server_to_client: list[str]
    compression_client_to_server: list[str]
    compression_server_to_client: list[str]
    languages_client_to_server: list[str]
    languages_server_to_client: list[str]
    first_kex_packet_follows: bool


def parse_kexinit(payload: bytes) -> KexInit:
    """Parse a KEXINIT payload (message byte 20 first); ProbeError if malformed."""
    if not payload or payload[0] != MSG_KEXINIT:
        first = f"message {payload[0]}" if payload else "an empty packet"
        raise ProbeError(Status.ERROR, f"expected SSH KEXINIT (20), got {first}")
    if len(payload) < 17:
        raise ProbeError(
            Status.ERROR, f"truncated KEXINIT cookie at byte {len(payload)}"
        )
    pos = 17
    lists: dict[str, list[str]] = {}
    for name in _NAME_LISTS:
        lists[name], pos = _name_list(payload, pos, name)
    if pos + 5 > len(payload):
        raise ProbeError(Status.ERROR, f"truncated KEXINIT trailer at byte {pos}")
    return KexInit(
        cookie=payload[1:17], first_kex_packet_follows=payload[pos] != 0, **lists
    )


def _name_list(payload: bytes, pos: int, name: str) -> tuple[list[str], int]:
    if pos + 4 > len(payload):
        raise ProbeError(Status.ERROR, f"truncated KEXINIT {name} length at byte {pos}")
    (length,) = struct.unpack_from("!I", payload, pos)
    end = pos + 4 + length
    if end > len(payload):
        raise ProbeError(
            Status.ERROR,
            f"KEXINIT {name} of {length} bytes overruns the packet at {pos}",
        )
    names = payload[pos + 4 : end].split(b",")
    clean = [sanitize_text(n, limit=128) for n in names]
    return [n for n in clean if n], end


async def read_banner(reader: asyncio.StreamReader) -> str:
    """Skip RFC 4253 §4.2 pre-banner lines; return the sanitised ``SSH-`` line."""
    for _ in range(MAX_PRE_BANNER_LINES):
        line = await _read_line(reader)
        if line.startswith(b"SSH-"):
            banner = sanitize_text(line, limit=255)
            if not banner.startswith(("SSH-2.0-", "SSH-1.99-")):
                raise ProbeError(Status.ERROR, f"unsupported SSH version: {banner!r}")
            return banner
    raise ProbeError(
        Status.ERROR, f"no SSH banner within the first {MAX_PRE_BANNER_LINES} lines"
    )


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    line = bytearray()
    while not line.endswith(b"\n"):
        chunk = await reader.read(1)
        if not chunk:
            got = f": {sanitize_text(bytes(line), limit=40)!r}" if line else ""
            raise ProbeError(
                Status.ERROR, f"connection closed before the SSH banner{got}"
            )
        line += chunk
        if len(line) > MAX_LINE:
            raise ProbeError(
                Status.ERROR, f"SSH banner line longer than {MAX_LINE} bytes"
            )
    return bytes(line)


async def read_packet(reader: asyncio.StreamReader) -> bytes:
    """Read one unencrypted binary packet (RFC 4253 §6) and return its payload."""
    header = await _read_exactly(reader, 5, "packet header")
    length, padding = struct.unpack("!IB", header)
    if not 5 <= length <= MAX_PACKET:
        raise ProbeError(
            Status.ERROR, f"SSH packet length {length} outside 5..{MAX_PACKET}"
        )
    if not 4 <= padding <= length - 1:
        raise ProbeError(
            Status.ERROR, f"SSH padding length {padding} invalid for {length}"
        )
    rest = await _read_exactly(reader, length - 1, "packet body")
    return rest[: length - 1 - padding]


async def _read_exactly(reader: asyncio.StreamReader, size: int, what: str) -> bytes:
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise ProbeError(
            Status.ERROR,
            f"connection closed inside the SSH {what} "
            f"({len(exc.partial)} of {size} bytes)",
        ) from None


async def read_kexinit(
    address: str, port: int, *, timeout: float = 5.0, banner: bytes | None = None
) -> SshKexReport:
    """Connect, send our banner (``banner`` or :data:`CLIENT_BANNER`), read KEXINIT."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await _connect(address, port)
            try:
                return await _exchange(reader, writer, banner or CLIENT_BANNER)
            finally:
                writer.close()
    except TimeoutError:
        raise ProbeError(
            Status.TIMEOUT, f"no SSH KEXINIT from {address}:{port} within {timeout:g} s"
        ) from None
    except ConnectionError as exc:
        raise ProbeError(
            Status.ERROR, f"SSH connection to {address}:{port} broke: {exc}"
        ) from None


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ours: bytes
) -> SshKexReport:
    writer.write(ours.rstrip(b"\r\n") + b"\r\n")
    await writer.drain()
    banner = await read_banner(reader)
    kexinit = parse_kexinit(await read_packet(reader))
    logger.info(
        "SSH KEXINIT read: %s, %d kex methods", banner, len(kexinit.kex_algorithms)
    )
    return kex_report(banner, kexinit)


def kex_report(banner: str, kexinit: KexInit) -> SshKexReport:
    """The public report for a sanitised banner and a parsed KEXINIT."""
    software = (
        banner.split("-", 2)[2].split(" ", 1)[0] if banner.count("-") >= 2 else ""
    )
    return SshKexReport(
        banner=banner,
        software=software,
        kex=kexinit.kex_algorithms,
        pq_kex=[k for k in kexinit.kex_algorithms if is_pq_kex(k)],
        host_key_algorithms=kexinit.server_host_key_algorithms,
        ciphers=kexinit.encryption_client_to_server,
        macs=kexinit.mac_client_to_server,
    )


async def _connect(
    address: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.open_connection(address, port)
    except OSError as exc:
        raise connect_error(address, port, exc) from None


def connect_error(address: str, port: int, exc: OSError) -> ProbeError:
    """The ProbeError for a failed TCP connect."""
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return ProbeError(Status.REFUSED, f"{address}:{port} refused the connection")
    if exc.errno in (errno.ETIMEDOUT,):
        return ProbeError(Status.TIMEOUT, f"connecting to {address}:{port} timed out")
    reason = exc.strerror or type(exc).__name__
    return ProbeError(Status.UNREACHABLE, f"cannot reach {address}:{port}: {reason}")
