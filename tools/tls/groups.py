"""The registry of TLS key-exchange groups netwarden knows and probes.

Every entry carries its IANA codepoint and spelling, a kind (``pq-hybrid``, ``pq``,
``classical``, ``pq-obsolete``) and, where we can build a realistic one, the size of
a client key share. :func:`make_key_share` builds such shares without any KEM code:
an ML-KEM encapsulation key of zero bytes plus a random seed passes the FIPS 203
input check, and the elliptic-curve parts are real public keys.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tools.models import GroupKind

# ML-KEM encapsulation keys: 384 bytes per module rank, then a 32-byte seed.
_MLKEM_RANK = {512: 2, 768: 3, 1024: 4}


@dataclass(frozen=True)
class Group:
    """One named group of the TLS supported_groups registry."""

    code: int
    name: str
    kind: GroupKind
    share_size: int | None = None
    """Bytes of the client key share we can build, or None if we cannot."""

    @property
    def is_pq(self) -> bool:
        """True for groups whose key exchange resists a quantum computer."""
        return self.kind in ("pq-hybrid", "pq")


GROUPS: tuple[Group, ...] = (
    Group(0x11EC, "X25519MLKEM768", "pq-hybrid", 1184 + 32),
    Group(0x11EB, "SecP256r1MLKEM768", "pq-hybrid", 65 + 1184),
    Group(0x11ED, "SecP384r1MLKEM1024", "pq-hybrid", 97 + 1568),
    Group(0x11EE, "curveSM2MLKEM768", "pq-hybrid"),
    Group(0x0200, "MLKEM512", "pq", 800),
    Group(0x0201, "MLKEM768", "pq", 1184),
    Group(0x0202, "MLKEM1024", "pq", 1568),
    Group(0x6399, "X25519Kyber768Draft00", "pq-obsolete", 32 + 1184),
    Group(0x639A, "SecP256r1Kyber768Draft00", "pq-obsolete", 65 + 1184),
    Group(0x001D, "x25519", "classical", 32),
    Group(0x0017, "secp256r1", "classical", 65),
    Group(0x0018, "secp384r1", "classical", 97),
    Group(0x0019, "secp521r1", "classical", 133),
    Group(0x001E, "x448", "classical", 56),
    Group(0x001F, "brainpoolP256r1tls13", "classical", 65),
    Group(0x0020, "brainpoolP384r1tls13", "classical", 97),
    Group(0x0021, "brainpoolP512r1tls13", "classical", 129),
    Group(0x0100, "ffdhe2048", "classical"),
    Group(0x0101, "ffdhe3072", "classical"),
    Group(0x0102, "ffdhe4096", "classical"),
    Group(0x0103, "ffdhe6144", "classical"),
    Group(0x0104, "ffdhe8192", "classical"),
)

_BY_CODE = {g.code: g for g in GROUPS}
_BY_NAME = {g.name.lower(): g for g in GROUPS}

# Elliptic curves whose groups are usable in TLS 1.2 ECDHE as well.
TLS12_EC_GROUPS: tuple[int, ...] = (0x001D, 0x0017, 0x0018, 0x0019, 0x001E)


def by_code(code: int) -> Group | None:
    """The registered group with this codepoint, or None."""
    return _BY_CODE.get(code)


def by_name(name: str) -> Group | None:
    """The registered group with this name (case-insensitive), or None."""
    return _BY_NAME.get(name.strip().lower())


def group_name(code: int) -> str:
    """The IANA name of ``code``, or ``0x1234`` for a group we do not know."""
    group = _BY_CODE.get(code)
    return group.name if group else f"0x{code:04X}"


def make_key_share(code: int) -> bytes:
    """A client key share for group ``code``; ValueError if we cannot build one."""
    builder = _SHARE_BUILDERS.get(code)
    if builder is None:
        raise ValueError(f"no key share can be built for group {group_name(code)}")
    return builder()


def _x25519() -> bytes:
    return x25519.X25519PrivateKey.generate().public_key().public_bytes_raw()


def _x448() -> bytes:
    return x448.X448PrivateKey.generate().public_key().public_bytes_raw()


def _ec(curve: ec.EllipticCurve) -> Callable[[], bytes]:
    def build() -> bytes:
        key = ec.generate_private_key(curve).public_key()
        return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)

    return build


def _mlkem(bits: int) -> Callable[[], bytes]:
    def build() -> bytes:
        return bytes(384 * _MLKEM_RANK[bits]) + os.urandom(32)

    return build


def _concat(*parts: Callable[[], bytes]) -> Callable[[], bytes]:
    return lambda: b"".join(part() for part in parts)


_SHARE_BUILDERS: dict[int, Callable[[], bytes]] = {
    0x11EC: _concat(_mlkem(768), _x25519),
    0x11EB: _concat(_ec(ec.SECP256R1()), _mlkem(768)),
    0x11ED: _concat(_ec(ec.SECP384R1()), _mlkem(1024)),
    0x0200: _mlkem(512),
    0x0201: _mlkem(768),
    0x0202: _mlkem(1024),
    0x6399: _concat(_x25519, _mlkem(768)),
    0x639A: _concat(_ec(ec.SECP256R1()), _mlkem(768)),
    0x001D: _x25519,
    0x0017: _ec(ec.SECP256R1()),
    0x0018: _ec(ec.SECP384R1()),
    0x0019: _ec(ec.SECP521R1()),
    0x001E: _x448,
    0x001F: _ec(ec.BrainpoolP256R1()),
    0x0020: _ec(ec.BrainpoolP384R1()),
    0x0021: _ec(ec.BrainpoolP512R1()),
}
