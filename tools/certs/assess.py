"""Findings about a presented certificate chain.

Expiry severities (``cert-expiring``), with the default :class:`Thresholds`:

    days left ≤ critical (7)   → HIGH
    days left ≤ high (14)      → MEDIUM
    days left ≤ warning (30)   → LOW

An expired certificate is ``cert-expired`` (CRITICAL) instead. ``cert-untrusted``
is not raised when ``cert-self-signed`` already explains the failure, nor when
the only verification failure is the leaf's validity period already reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tools.certs.classify import WEAK_SIGNATURE_OIDS
from tools.findings import finding
from tools.models import CertificateInfo, Finding, Severity, TrustInfo

DATE_REASONS = frozenset({"certificate has expired", "certificate is not yet valid"})


@dataclass(frozen=True)
class Thresholds:
    """Days before expiry at which ``cert-expiring`` reaches each severity."""

    warning: int = 30
    high: int = 14
    critical: int = 7

    def severity(self, days_left: int) -> Severity | None:
        """The ``cert-expiring`` severity for ``days_left``, or None if far off."""
        if days_left <= self.critical:
            return Severity.HIGH
        if days_left <= self.high:
            return Severity.MEDIUM
        if days_left <= self.warning:
            return Severity.LOW
        return None


DEFAULT_THRESHOLDS = Thresholds()


def certificate_findings(
    info: CertificateInfo,
    trust: TrustInfo,
    thresholds: Thresholds | None = None,
    *,
    chain: Sequence[CertificateInfo] = (),
    host: str | None = None,
    now: datetime | None = None,
) -> list[Finding]:
    """Findings for a leaf ``info`` and its ``chain`` (leaf first, if given)."""
    limits = thresholds or DEFAULT_THRESHOLDS
    found = validity_findings(info, limits, now or datetime.now(UTC))
    found += trust_findings(info, trust, host, dates_reported=bool(found))
    for index, cert in enumerate(chain or [info]):
        found += strength_findings(cert, _label(index, cert), is_leaf=index == 0)
    return found


def validity_findings(
    info: CertificateInfo, thresholds: Thresholds, now: datetime
) -> list[Finding]:
    """``cert-expired``, ``cert-not-yet-valid`` or ``cert-expiring``."""
    if info.days_left < 0:
        detail = f"expired on {info.not_after} ({expired_ago(info.days_left)})"
        return [finding("cert-expired", detail)]
    not_before = datetime.fromisoformat(info.not_before.replace("Z", "+00:00"))
    if now < not_before:
        return [finding("cert-not-yet-valid", f"valid only from {info.not_before}")]
    severity = thresholds.severity(info.days_left)
    if severity is None:
        return []
    detail = f"expires on {info.not_after}, in {info.days_left} days"
    return [finding("cert-expiring", detail, severity=severity)]


def trust_findings(
    info: CertificateInfo, trust: TrustInfo, host: str | None, dates_reported: bool
) -> list[Finding]:
    """Host name, self-signature, trust and chain order."""
    found: list[Finding] = []
    if not trust.hostname_match:
        names = ", ".join(info.sans) or f"no subjectAltName (subject {info.subject})"
        target = f"{host!r}" if host else "the requested host"
        found.append(finding("cert-hostname-mismatch", f"{target} not in: {names}"))
    if not trust.trusted:
        found += _untrusted(info, trust, dates_reported)
    if not trust.chain_in_order:
        detail = "each certificate's issuer should be the next one's subject"
        found.append(finding("cert-chain-order", detail))
    return found


def _untrusted(
    info: CertificateInfo, trust: TrustInfo, dates_reported: bool
) -> list[Finding]:
    reason = trust.reason or "verification failed"
    if info.self_signed:
        detail = f"{info.subject} signed itself; not in the {trust.store} trust store"
        return [finding("cert-self-signed", detail)]
    if dates_reported and reason in DATE_REASONS:
        return []
    return [finding("cert-untrusted", f"{reason} (trust store: {trust.store})")]


def strength_findings(
    cert: CertificateInfo, label: str, *, is_leaf: bool
) -> list[Finding]:
    """``cert-weak-key`` and ``cert-weak-signature`` for one certificate."""
    found: list[Finding] = []
    weak_key = weak_key_reason(cert)
    if weak_key:
        found.append(finding("cert-weak-key", f"{label}: {weak_key}"))
    is_root = cert.self_signed and cert.is_ca and not is_leaf
    if not is_root and _weak_signature(cert):
        detail = f"{label}: signed with {cert.signature_algorithm}"
        found.append(finding("cert-weak-signature", detail))
    return found


def weak_key_reason(cert: CertificateInfo) -> str | None:
    """Why the key is too weak (RSA < 2048, EC < 224, any DSA), or None."""
    size = cert.key_size or 0
    if cert.key_type == "RSA" and size < 2048:
        return f"RSA key of {size} bits"
    if cert.key_type == "EC" and size < 224:
        return f"EC key of {size} bits ({cert.key_curve})"
    if cert.key_type == "DSA":
        return f"DSA key of {size} bits (DSA is no longer approved for signing)"
    return None


def _weak_signature(cert: CertificateInfo) -> bool:
    name = cert.signature_algorithm.lower()
    return cert.signature_oid in WEAK_SIGNATURE_OIDS or "md5" in name or "sha1" in name


def _label(index: int, cert: CertificateInfo) -> str:
    return "leaf" if index == 0 else f"chain certificate {index + 1} ({cert.subject})"


def expired_ago(days_left: int) -> str:
    """Say how long ago a certificate expired; ``days_left`` is floored, so -1 is
    "less than a day ago"."""
    whole = -days_left - 1
    if whole <= 0:
        return "less than a day ago"
    return f"{whole} day ago" if whole == 1 else f"{whole} days ago"
