"""Turning a ``cryptography`` certificate into a :class:`CertificateInfo`.

Certificates come from peers and may be malformed or hostile. ``cryptography``
parses some parts lazily, so every field is read defensively: a part that does
not parse becomes a placeholder, never an exception. All text is cleaned with
:func:`tools.certs.text.clean_text`.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.utils import CryptographyDeprecationWarning

from tools.certs.classify import describe_key, oid_name, pq_algorithm
from tools.certs.text import clean_text
from tools.models import CertificateInfo

log = logging.getLogger(__name__)

T = TypeVar("T")
UNREADABLE = "<unreadable>"


def describe_certificate(cert: x509.Certificate, now: datetime) -> CertificateInfo:
    """Everything a person needs to know about one certificate, at time ``now``."""
    key = describe_key(cert)
    signature_oid = cert.signature_algorithm_oid
    not_after = cert.not_valid_after_utc
    return CertificateInfo(
        subject=_safe(lambda: clean_text(cert.subject.rfc4514_string()), UNREADABLE),
        issuer=_safe(lambda: clean_text(cert.issuer.rfc4514_string()), UNREADABLE),
        sans=_safe(lambda: subject_alt_names(cert), list[str]()),
        serial=_safe(lambda: _hex_serial(cert), UNREADABLE),
        not_before=iso_utc(cert.not_valid_before_utc),
        not_after=iso_utc(not_after),
        days_left=days_between(_as_utc(now), not_after),
        key_type=key.type,
        key_size=key.size,
        key_curve=key.curve,
        key_oid=key.oid,
        signature_algorithm=clean_text(oid_name(signature_oid)),
        signature_oid=signature_oid.dotted_string,
        sha256_fingerprint=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        self_signed=_safe(lambda: is_self_signed(cert), False),
        is_ca=_safe(lambda: is_ca(cert), False),
        post_quantum=pq_algorithm(key.oid) is not None
        and pq_algorithm(signature_oid.dotted_string) is not None,
    )


def subject_alt_names(cert: x509.Certificate) -> list[str]:
    """SANs as ``DNS:name``, ``IP:address``, ``email:...``, ``URI:...``."""
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    names = extension.value
    entries = [f"DNS:{n}" for n in names.get_values_for_type(x509.DNSName)]
    entries += [f"IP:{a}" for a in names.get_values_for_type(x509.IPAddress)]
    entries += [f"email:{e}" for e in names.get_values_for_type(x509.RFC822Name)]
    entries += [
        f"URI:{u}" for u in names.get_values_for_type(x509.UniformResourceIdentifier)
    ]
    return [clean_text(entry, limit=512) for entry in entries]


def is_self_signed(cert: x509.Certificate) -> bool:
    """Subject equals issuer and, where it can be checked, the own key verifies."""
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # not checkable
        log.debug("self-signature not checkable: %s", exc)
    return True


def is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca


def iso_utc(moment: datetime) -> str:
    return _as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_between(now: datetime, later: datetime) -> int:
    """Whole days from ``now`` to ``later``, rounded down (negative once past)."""
    return math.floor((later - now).total_seconds() / 86400)


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _hex_serial(cert: x509.Certificate) -> str:
    with warnings.catch_warnings():  # a non-positive serial is reported, not warned
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        serial = cert.serial_number
    sign = "-" if serial < 0 else ""
    return sign + format(abs(serial), "X")


def _safe(read: Callable[[], T], default: T) -> T:
    try:
        return read()
    except Exception as exc:  # lazy parsing of hostile input raises many types
        log.debug("certificate field unreadable: %s", exc)
        return default
