"""Naming a certificate's key and signature, and judging them for the quantum era.

Algorithms are recognised by their dotted OID first, because ``cryptography``
does not name every post-quantum algorithm. Classical strength follows
NIST SP 800-57 (RSA-2048 → 112 bits, RSA-3072 → 128, P-256 → 128, ...); the
quantum-era verdict follows NIST IR 8547: 112-bit RSA/ECC is deprecated after
2030 and all RSA/ECC is disallowed after 2035.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from tools.models import CertificatePq

log = logging.getLogger(__name__)

_NIST_SIG = "2.16.840.1.101.3.4.3."
_SLH_DSA_VARIANTS = ("128s", "128f", "192s", "192f", "256s", "256f")
_COMPOSITE_ARC = "1.3.6.1.5.5.7.6."

ML_DSA: dict[str, tuple[str, int]] = {
    _NIST_SIG + "17": ("ML-DSA-44", 128),
    _NIST_SIG + "18": ("ML-DSA-65", 192),
    _NIST_SIG + "19": ("ML-DSA-87", 256),
}
"""OID → (name, claimed classical-equivalent strength in bits)."""

SLH_DSA: dict[str, tuple[str, int]] = {
    f"{_NIST_SIG}{20 + index}": (
        f"SLH-DSA-{family}-{variant}",
        int(variant[:3]),
    )
    for index, (family, variant) in enumerate(
        (family, variant)
        for family in ("SHA2", "SHAKE")
        for variant in _SLH_DSA_VARIANTS
    )
}
"""FIPS 205 parameter sets in NIST OID order: SHA2 128s … 256f, then SHAKE."""

COMPOSITE_ML_DSA = frozenset(f"{_COMPOSITE_ARC}{n}" for n in range(37, 55))

WEAK_SIGNATURE_OIDS = frozenset(
    {
        "1.2.840.113549.1.1.2",  # md2WithRSAEncryption
        "1.2.840.113549.1.1.4",  # md5WithRSAEncryption
        "1.2.840.113549.1.1.5",  # sha1WithRSAEncryption
        "1.3.14.3.2.29",  # sha1WithRSA (OIW)
        "1.2.840.10045.4.1",  # ecdsa-with-SHA1
        "1.2.840.10040.4.3",  # dsa-with-sha1
    }
)

_FINITE_FIELD_STRENGTH = ((15360, 256), (7680, 192), (3072, 128), (2048, 112))


@dataclass(frozen=True)
class KeyInfo:
    """What a certificate's public key is."""

    type: str
    size: int | None
    curve: str | None
    oid: str | None


def pq_algorithm(oid: str | None) -> tuple[str, int | None] | None:
    """Name and strength of a post-quantum signature OID, or None if classical."""
    if oid is None:
        return None
    if oid in ML_DSA:
        return ML_DSA[oid]
    if oid in SLH_DSA:
        return SLH_DSA[oid]
    if oid in COMPOSITE_ML_DSA:
        return ("composite ML-DSA", None)
    return None


def oid_name(oid: x509.ObjectIdentifier) -> str:
    """The best human name for ``oid``: PQ tables, then cryptography's, then dots."""
    known = pq_algorithm(oid.dotted_string)
    if known is not None:
        return known[0]
    name = oid._name
    return oid.dotted_string if name in ("", "Unknown OID") else name


def describe_key(cert: x509.Certificate) -> KeyInfo:
    """Type, size, curve and OID of the certificate's public key."""
    try:
        oid: str | None = cert.public_key_algorithm_oid.dotted_string
    except ValueError:
        oid = None
    known = pq_algorithm(oid)
    if known is not None:
        return KeyInfo(known[0], None, None, oid)
    try:
        key = cert.public_key()
    except Exception as exc:  # unknown or malformed keys raise several types
        log.debug("public key not loadable: %s", exc)
        return KeyInfo(f"unknown ({oid})" if oid else "unknown", None, None, oid)
    return _classical_key(key, oid)


def _classical_key(key: object, oid: str | None) -> KeyInfo:
    if isinstance(key, rsa.RSAPublicKey):
        return KeyInfo("RSA", key.key_size, None, oid)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return KeyInfo("EC", key.key_size, key.curve.name, oid)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeyInfo("Ed25519", 256, None, oid)
    if isinstance(key, ed448.Ed448PublicKey):
        return KeyInfo("Ed448", 456, None, oid)
    if isinstance(key, dsa.DSAPublicKey):
        return KeyInfo("DSA", key.key_size, None, oid)
    return KeyInfo(type(key).__name__.removesuffix("PublicKey"), None, None, oid)


def classical_strength(key: KeyInfo) -> int | None:
    """Security strength in bits of a classical key (NIST SP 800-57 part 1)."""
    if key.type in ("RSA", "DSA") and key.size is not None:
        return next((s for bits, s in _FINITE_FIELD_STRENGTH if key.size >= bits), 80)
    if key.type == "EC" and key.size is not None:
        return key.size // 2
    return {"Ed25519": 128, "Ed448": 224}.get(key.type)


def nist_ir_8547(post_quantum: bool, strength: int | None) -> str:
    """What NIST IR 8547 says about an algorithm of this kind and strength."""
    if post_quantum:
        return "approved (FIPS 204/205)"
    if strength is None:
        return ""
    if strength < 112:
        return "already disallowed: below 112-bit security (NIST SP 800-131A)"
    if strength < 128:
        return "deprecated after 2030, disallowed after 2035 (NIST IR 8547)"
    return "disallowed after 2035 (NIST IR 8547)"


def classify_certificate(cert: x509.Certificate) -> CertificatePq:
    """Post-quantum classification of a certificate's key and signature."""
    key = describe_key(cert)
    signature_oid = cert.signature_algorithm_oid
    key_pq = pq_algorithm(key.oid)
    signature_pq = pq_algorithm(signature_oid.dotted_string) is not None
    post_quantum = key_pq is not None and signature_pq
    strength = key_pq[1] if key_pq is not None else classical_strength(key)
    if key_pq is not None and not signature_pq:
        verdict = "post-quantum key under a classical signature: " + nist_ir_8547(
            False, 128
        )
    else:
        verdict = nist_ir_8547(post_quantum, strength)
    return CertificatePq(
        key_type=key.type,
        key_oid=key.oid,
        signature_algorithm=oid_name(signature_oid),
        signature_oid=signature_oid.dotted_string,
        post_quantum=post_quantum,
        classical_strength_bits=strength,
        nist_ir_8547=verdict,
    )
