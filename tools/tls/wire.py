"""TLS records by hand: build ClientHellos and read the first server reply.

Pure functions, no sockets, except :func:`read_server_reply`, which reads from an
``asyncio.StreamReader`` only as many bytes as it needs. A peer's reply is one of:

    ServerHello   a ServerHello or HelloRetryRequest (``is_hello_retry``)
    Alert         a TLS alert, e.g. handshake_failure(40)
    SshBanner     the port speaks SSH (the reply starts with ``SSH-``)
    NotTls        something else entirely (HTTP, garbage)
    Closed        the peer hung up without saying anything

Malformed TLS raises :class:`WireError` (a ``ProbeError`` with ``Status.ERROR``) with
a one-line message naming the field and byte offset; nothing else escapes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from tools.errors import ProbeError
from tools.models import Status
from tools.ssh import sanitize_text
from tools.targets import is_ip_literal
from tools.tls.groups import make_key_share

SSL30, TLS10, TLS11, TLS12, TLS13 = 0x0300, 0x0301, 0x0302, 0x0303, 0x0304
VERSION_NAMES = {
    SSL30: "SSL 3.0",
    TLS10: "TLS 1.0",
    TLS11: "TLS 1.1",
    TLS12: "TLS 1.2",
    TLS13: "TLS 1.3",
}

# RFC 8446 §4.1.3: a HelloRetryRequest's random is SHA-256("HelloRetryRequest").
HRR_RANDOM = hashlib.sha256(b"HelloRetryRequest").digest()

TLS13_CIPHERS = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0x1304: "TLS_AES_128_CCM_SHA256",
    0x1305: "TLS_AES_128_CCM_8_SHA256",
}
TLS12_CIPHERS = {
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC024: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    0xC023: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCAA: "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    0x006B: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
    0x0067: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
    0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256",
    0x003D: "TLS_RSA_WITH_AES_256_CBC_SHA256",
    0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256",
}
LEGACY_CIPHERS = {
    0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0x0039: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    0x0033: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0016: "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA",
    0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
}
CIPHER_NAMES = {**TLS13_CIPHERS, **TLS12_CIPHERS, **LEGACY_CIPHERS}
ECDHE_CIPHERS = tuple(
    code
    for code, name in {**TLS12_CIPHERS, **LEGACY_CIPHERS}.items()
    if "ECDHE" in name
)
AEAD_256_TLS13 = (0x1302, 0x1303)
AEAD_256_TLS12 = (0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0x009F, 0xCCAA, 0x009D)

# ed25519, ed448, ecdsa P-256/384/521, rsa-pss (rsae and pss), ML-DSA-44/65/87,
# rsa-pkcs1 SHA-256/384/512, then SHA-1 variants for old servers.
SIGNATURE_ALGORITHMS = (
    0x0807, 0x0808, 0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806,
    0x0809, 0x080A, 0x080B, 0x0904, 0x0905, 0x0906, 0x0401, 0x0501,
    0x0601, 0x0203, 0x0201,
)  # fmt: skip

EXT_SERVER_NAME = 0x0000
EXT_SUPPORTED_GROUPS = 0x000A
EXT_EC_POINT_FORMATS = 0x000B
EXT_SIGNATURE_ALGORITHMS = 0x000D
EXT_EXTENDED_MASTER_SECRET = 0x0017
EXT_SUPPORTED_VERSIONS = 0x002B
EXT_PSK_KEY_EXCHANGE_MODES = 0x002D
EXT_KEY_SHARE = 0x0033
EXT_RENEGOTIATION_INFO = 0xFF01

ALERT_NAMES = {
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
    21: "decryption_failed", 22: "record_overflow", 30: "decompression_failure",
    40: "handshake_failure", 41: "no_certificate", 42: "bad_certificate",
    43: "unsupported_certificate", 44: "certificate_revoked",
    45: "certificate_expired", 46: "certificate_unknown", 47: "illegal_parameter",
    48: "unknown_ca", 49: "access_denied", 50: "decode_error", 51: "decrypt_error",
    60: "export_restriction", 70: "protocol_version", 71: "insufficient_security",
    80: "internal_error", 86: "inappropriate_fallback", 90: "user_canceled",
    100: "no_renegotiation", 109: "missing_extension", 110: "unsupported_extension",
    112: "unrecognized_name", 113: "bad_certificate_status_response",
    115: "unknown_psk_identity", 116: "certificate_required",
    120: "no_application_protocol", 121: "ech_required",
}  # fmt: skip

RECORD_TYPES = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "data"}
MAX_RECORD = 2**14 + 2048  # RFC 8446 §5.2 allows 2^14 + 256; be lenient
MAX_SERVER_HELLO = 2**15
MAX_HANDSHAKE = 2**16
# TLS 1.2 messages that may come between ServerHello and ServerKeyExchange.
_BEFORE_KEY_EXCHANGE = {11: "Certificate", 22: "CertificateStatus"}
MAX_REPLY_BYTES = 2**17


class WireError(ProbeError):
    """Bytes from the peer that break the TLS wire format."""

    def __init__(self, message: str) -> None:
        super().__init__(Status.ERROR, message)


def version_name(version: int) -> str:
    """``TLS 1.3`` for 0x0304; unknown versions as ``0x7F1C``."""
    return VERSION_NAMES.get(version, f"0x{version:04X}")


def cipher_name(code: int) -> str:
    """The IANA name of a cipher suite, or ``0xC0FF`` for one we do not know."""
    return CIPHER_NAMES.get(code, f"0x{code:04X}")


def alert_name(description: int) -> str:
    return ALERT_NAMES.get(description, f"alert{description}")


# --- building ----------------------------------------------------------------


def default_ciphers(versions: Sequence[int]) -> list[int]:
    """A broad cipher list suitable for the highest of ``versions``."""
    ciphers: list[int] = []
    if TLS13 in versions:
        ciphers += [0x1302, 0x1303, 0x1301]
    if TLS12 in versions:
        ciphers += list(TLS12_CIPHERS)
    if any(v <= TLS12 for v in versions):
        ciphers += list(LEGACY_CIPHERS)
    return ciphers


def build_client_hello(
    *,
    server_name: str | None,
    groups: Sequence[int],
    key_shares: Sequence[int] = (),
    versions: Sequence[int] = (TLS13,),
    ciphers: Sequence[int] | None = None,
    shares: Mapping[int, bytes] | None = None,
    random: bytes | None = None,
    session_id: bytes | None = None,
) -> bytes:
    """A complete ClientHello, framed in TLS records.

    With TLS 1.3 in ``versions`` the hello carries supported_versions and a key_share
    extension holding a share for each group in ``key_shares`` (built here unless
    ``shares`` gives the bytes). Without it, the legacy_version field is the highest
    of ``versions`` and there is no supported_versions. SNI is left out for IP
    literals (RFC 6066 §3).
    """
    if not versions:
        raise ValueError("at least one protocol version is needed")
    legacy = min(max(versions), TLS12)
    body = b"".join(
        (
            struct.pack("!H", legacy),
            random if random is not None else os.urandom(32),
            _vec8(session_id if session_id is not None else os.urandom(32)),
            _vec16(
                _u16s(ciphers if ciphers is not None else default_ciphers(versions))
            ),
            b"\x01\x00",  # compression methods: null only
            _vec16(_extensions(server_name, groups, key_shares, versions, shares)),
        )
    )
    message = b"\x01" + len(body).to_bytes(3, "big") + body
    return _records(22, min(legacy, TLS10), message)


def _extensions(
    server_name: str | None,
    groups: Sequence[int],
    key_shares: Sequence[int],
    versions: Sequence[int],
    shares: Mapping[int, bytes] | None,
) -> bytes:
    tls13 = TLS13 in versions
    legacy = any(v <= TLS12 for v in versions)
    out = []
    if server_name and not is_ip_literal(server_name):
        name = server_name.rstrip(".").encode("ascii")
        out.append(_ext(EXT_SERVER_NAME, _vec16(b"\x00" + _vec16(name))))
    if legacy:
        out.append(_ext(EXT_EC_POINT_FORMATS, _vec8(b"\x00")))
    out.append(_ext(EXT_SUPPORTED_GROUPS, _vec16(_u16s(groups))))
    out.append(_ext(EXT_SIGNATURE_ALGORITHMS, _vec16(_u16s(SIGNATURE_ALGORITHMS))))
    if legacy:
        out.append(_ext(EXT_EXTENDED_MASTER_SECRET, b""))
    out.append(_ext(EXT_RENEGOTIATION_INFO, b"\x00"))
    if tls13:
        offered = sorted((v for v in versions if v >= TLS10), reverse=True)
        out.append(_ext(EXT_SUPPORTED_VERSIONS, _vec8(_u16s(offered))))
        out.append(_ext(EXT_PSK_KEY_EXCHANGE_MODES, _vec8(b"\x01")))  # psk_dhe_ke
        out.append(_ext(EXT_KEY_SHARE, _vec16(_key_shares(key_shares, shares))))
    return b"".join(out)


def _key_shares(codes: Sequence[int], shares: Mapping[int, bytes] | None) -> bytes:
    given = shares or {}
    return b"".join(
        struct.pack("!H", code) + _vec16(given.get(code) or make_key_share(code))
        for code in codes
    )


def _records(content_type: int, version: int, payload: bytes) -> bytes:
    chunks = [payload[i : i + 2**14] for i in range(0, len(payload), 2**14)]
    return b"".join(
        struct.pack("!BHH", content_type, version, len(chunk)) + chunk
        for chunk in chunks
    )


def _ext(ext_type: int, data: bytes) -> bytes:
    return struct.pack("!HH", ext_type, len(data)) + data


def _u16s(values: Sequence[int]) -> bytes:
    return b"".join(struct.pack("!H", v) for v in values)


def _vec8(data: bytes) -> bytes:
    return bytes([len(data)]) + data


def _vec16(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


# --- replies -----------------------------------------------------------------


@dataclass(frozen=True)
class ServerHello:
    """A ServerHello or, when ``is_hello_retry``, a HelloRetryRequest."""

    legacy_version: int
    version: int
    """Negotiated: from supported_versions if present, else legacy_version."""
    random: bytes
    session_id: bytes
    cipher: int
    compression: int
    extensions: dict[int, bytes] = field(default_factory=dict)
    is_hello_retry: bool = False
    selected_group: int | None = None
    """The group the server chose: HRR's selected_group or the share's group."""
    key_share_group: int | None = None
    """The group of the server's key share (ServerHello only)."""
    key_share_length: int | None = None

    @property
    def version_name(self) -> str:
        return version_name(self.version)

    @property
    def cipher_name(self) -> str:
        return cipher_name(self.cipher)


@dataclass(frozen=True)
class Alert:
    level: int
    description: int
    name: str

    @property
    def label(self) -> str:
        """``handshake_failure(40)``."""
        return f"{self.name}({self.description})"


@dataclass(frozen=True)
class SshBanner:
    text: str


@dataclass(frozen=True)
class NotTls:
    reason: str


@dataclass(frozen=True)
class Closed:
    """The peer closed (or reset) the connection without sending anything."""

    reset: bool = False


ServerReply = ServerHello | Alert | SshBanner | NotTls | Closed


class _Cursor:
    """Reads fields from one message; running short raises WireError."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.what = what
        self.pos = 0

    def take(self, size: int, name: str) -> bytes:
        if self.pos + size > len(self.data):
            raise WireError(f"truncated {self.what} {name} at byte {self.pos}")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def uint(self, size: int, name: str) -> int:
        return int.from_bytes(self.take(size, name), "big")

    def vector(self, length_size: int, name: str) -> bytes:
        return self.take(self.uint(length_size, f"{name} length"), name)

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


def parse_server_hello(body: bytes) -> ServerHello:
    """Parse the body of a ServerHello handshake message (after its 4-byte header)."""
    cur = _Cursor(body, "ServerHello")
    legacy = cur.uint(2, "version")
    random = cur.take(32, "random")
    session_id = cur.vector(1, "session id")
    if len(session_id) > 32:
        raise WireError(f"ServerHello session id of {len(session_id)} bytes (max 32)")
    cipher = cur.uint(2, "cipher suite")
    compression = cur.uint(1, "compression method")
    extensions = _parse_extensions(cur) if cur.left else {}
    hello = ServerHello(
        legacy_version=legacy,
        version=_selected_version(extensions, legacy),
        random=random,
        session_id=session_id,
        cipher=cipher,
        compression=compression,
        extensions=extensions,
        is_hello_retry=random == HRR_RANDOM,
    )
    return _with_key_share(hello)


def _parse_extensions(cur: _Cursor) -> dict[int, bytes]:
    start = cur.pos
    block = _Cursor(cur.vector(2, "extensions"), "ServerHello extensions")
    if cur.left:
        raise WireError(f"{cur.left} trailing bytes after ServerHello extensions")
    found: dict[int, bytes] = {}
    while block.left:
        at = start + 2 + block.pos
        ext_type = block.uint(2, "type")
        data = block.vector(2, f"0x{ext_type:04X} data")
        if ext_type in found:
            raise WireError(f"duplicate ServerHello extension 0x{ext_type:04X} at {at}")
        found[ext_type] = data
    return found


def _selected_version(extensions: dict[int, bytes], legacy: int) -> int:
    data = extensions.get(EXT_SUPPORTED_VERSIONS)
    if data is None:
        return legacy
    if len(data) != 2:
        raise WireError(f"supported_versions extension of {len(data)} bytes (want 2)")
    return int.from_bytes(data, "big")


def _with_key_share(hello: ServerHello) -> ServerHello:
    data = hello.extensions.get(EXT_KEY_SHARE)
    if data is None:
        return hello
    if hello.is_hello_retry:
        if len(data) != 2:
            raise WireError(f"HelloRetryRequest key_share of {len(data)} bytes")
        group = int.from_bytes(data, "big")
        return _replace(hello, selected_group=group)
    cur = _Cursor(data, "key_share")
    group = cur.uint(2, "group")
    share = cur.vector(2, "key exchange")
    if cur.left:
        raise WireError(f"{cur.left} trailing bytes after ServerHello key_share")
    return _replace(
        hello, selected_group=group, key_share_group=group, key_share_length=len(share)
    )


def _replace(hello: ServerHello, **changes: int | None) -> ServerHello:
    fields = {**hello.__dict__, **changes}
    return ServerHello(**fields)


def describe_non_tls(data: bytes) -> str:
    """One line saying what a non-TLS reply looks like."""
    if data.startswith(b"HTTP/"):
        return "the port answers HTTP, not TLS"
    preview = sanitize_text(data[:24], limit=24) or data[:8].hex()
    return f"the reply is not TLS: first byte 0x{data[0]:02X} ({preview!r})"


class ReplyParser:
    """Incremental parser for the first server reply; feed it bytes as they come.

    With ``key_exchange`` a TLS 1.2 (or older) ServerHello is held back until the
    ServerKeyExchange, whose named curve becomes the hello's ``selected_group``.
    """

    def __init__(self, *, key_exchange: bool = False) -> None:
        self._buf = bytearray()
        self._hs = bytearray()
        self._consumed = 0
        self._is_tls = False
        self._want_kx = key_exchange
        self._hello: ServerHello | None = None
        self.received = 0

    def need(self) -> int:
        """How many more bytes the parser wants before it can go on."""
        buf = self._buf
        if buf.startswith(b"SSH-"):
            return max(1, 255 - len(buf))
        if len(buf) < 5:
            return 5 - len(buf)
        return 5 + int.from_bytes(buf[3:5], "big") - len(buf)

    def feed(self, data: bytes) -> ServerReply | None:
        """Add bytes; return the reply once it is complete, else None."""
        self._buf += data
        self.received += len(data)
        if self.received > MAX_REPLY_BYTES:
            raise WireError(f"no ServerHello within the first {MAX_REPLY_BYTES} bytes")
        if not self._is_tls:
            kind = self._classify()
            if kind == "more":
                return None
            if kind != "tls":
                return kind
            self._is_tls = True
        return self._records()

    def finish(self, *, reset: bool = False) -> ServerReply:
        """The peer closed the connection: whatever is complete, or an error."""
        buf = bytes(self._buf)
        if self._hello is not None:
            return self._hello
        if self.received == 0:
            return Closed(reset=reset)
        if not self._is_tls and buf.startswith(b"SSH-"):
            return SshBanner(sanitize_text(buf.split(b"\n", 1)[0], limit=255))
        if not self._is_tls and buf[0] not in RECORD_TYPES:
            return NotTls(describe_non_tls(buf))
        how = "reset" if reset else "closed"
        if not buf:
            where = "before the ServerHello was complete"
        elif len(buf) < 5:
            where = "inside a record header"
        else:
            where = f"inside a {RECORD_TYPES.get(buf[0], 'TLS')} record"
        raise WireError(f"connection {how} after {self.received} bytes, {where}")

    def _classify(self) -> ServerReply | Literal["tls", "more"]:
        """Before the first record: an SSH banner, not TLS, or TLS records."""
        buf = bytes(self._buf)
        if buf.startswith(b"SSH-"):
            line, newline, _ = buf.partition(b"\n")
            if newline or len(buf) >= 255:
                return SshBanner(sanitize_text(line, limit=255))
            return "more"
        if len(buf) < 4 and b"SSH-".startswith(buf):
            return "more"
        if buf[0] not in RECORD_TYPES:
            return NotTls(describe_non_tls(buf))
        if len(buf) < 2:
            return "more"
        return "tls" if buf[1] == 3 else NotTls(describe_non_tls(buf))

    def _records(self) -> ServerReply | None:
        while len(self._buf) >= 5:
            ctype, version, length = struct.unpack("!BHH", self._buf[:5])
            self._check_header(ctype, version, length)
            if len(self._buf) < 5 + length:
                return None
            body = bytes(self._buf[5 : 5 + length])
            del self._buf[: 5 + length]
            self._consumed += 5 + length
            reply = self._record(ctype, body)
            if reply is not None:
                return reply
        return None

    def _check_header(self, ctype: int, version: int, length: int) -> None:
        at = self._consumed
        if ctype not in (20, 21, 22):
            kind = RECORD_TYPES.get(ctype, f"type {ctype}")
            raise WireError(f"unexpected {kind} record before ServerHello at byte {at}")
        if version >> 8 != 3:
            raise WireError(f"record version 0x{version:04X} is not TLS at byte {at}")
        if length > MAX_RECORD:
            raise WireError(
                f"record of {length} bytes exceeds {MAX_RECORD} at byte {at}"
            )

    def _record(self, ctype: int, body: bytes) -> ServerReply | None:
        if ctype == 21:
            if len(body) < 2:
                raise WireError(f"alert record of {len(body)} bytes (want 2)")
            return Alert(body[0], body[1], alert_name(body[1]))
        if ctype == 22:
            self._hs += body
            return self._handshake()
        return None  # change_cipher_spec before ServerHello: ignore it

    def _handshake(self) -> ServerReply | None:
        while len(self._hs) >= 4:
            msg_type = self._hs[0]
            length = int.from_bytes(self._hs[1:4], "big")
            self._check_message(msg_type, length)
            if len(self._hs) < 4 + length:
                return None
            body = bytes(self._hs[4 : 4 + length])
            del self._hs[: 4 + length]
            reply = self._message(msg_type, body)
            if reply is not None:
                return reply
        return None

    def _check_message(self, msg_type: int, length: int) -> None:
        if self._hello is None and msg_type != 2:
            raise WireError(f"expected ServerHello, got handshake message {msg_type}")
        if msg_type == 2 and length > MAX_SERVER_HELLO:
            raise WireError(f"ServerHello of {length} bytes exceeds {MAX_SERVER_HELLO}")
        if length > MAX_HANDSHAKE:
            raise WireError(f"handshake message of {length} bytes exceeds the cap")

    def _message(self, msg_type: int, body: bytes) -> ServerReply | None:
        if self._hello is None:
            hello = parse_server_hello(body)
            if not self._want_kx or hello.is_hello_retry or hello.version >= TLS13:
                return hello
            self._hello = hello
            return None
        if msg_type in _BEFORE_KEY_EXCHANGE:
            return None
        if msg_type == 12:  # ServerKeyExchange
            return _replace(self._hello, selected_group=key_exchange_group(body))
        return self._hello  # ServerHelloDone or anything else: no ECDHE


def key_exchange_group(body: bytes) -> int | None:
    """The named curve of an ECDHE ServerKeyExchange, or None (DHE, RSA, ...)."""
    if len(body) >= 3 and body[0] == 3:  # curve_type named_curve
        return int.from_bytes(body[1:3], "big")
    return None


def parse_server_reply(data: bytes, *, key_exchange: bool = False) -> ServerReply:
    """Parse everything a server sent (up to EOF) into its first reply."""
    parser = ReplyParser(key_exchange=key_exchange)
    reply = parser.feed(data) if data else None
    return reply if reply is not None else parser.finish()


async def read_server_reply(
    reader: asyncio.StreamReader, timeout: float, *, key_exchange: bool = False
) -> ServerReply:
    """Read just enough of ``reader`` to return the server's first reply.

    ``key_exchange`` reads on to a TLS 1.2 ServerKeyExchange (see ReplyParser).
    """
    parser = ReplyParser(key_exchange=key_exchange)
    try:
        async with asyncio.timeout(timeout):
            return await _read_reply(reader, parser)
    except TimeoutError:
        raise ProbeError(
            Status.TIMEOUT,
            f"no complete reply within {timeout:g} s ({parser.received} bytes read)",
        ) from None


async def _read_reply(reader: asyncio.StreamReader, parser: ReplyParser) -> ServerReply:
    while True:
        try:
            data = await reader.read(parser.need())
        except ConnectionError:
            return parser.finish(reset=True)
        if not data:
            return parser.finish()
        reply = parser.feed(data)
        if reply is not None:
            return reply
