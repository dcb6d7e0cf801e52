"""The catalogue of finding ids. An id, once published, is never renamed.

Checks create findings with :func:`finding`, which takes the severity, title and
remediation from here so the same id always reads the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.models import Finding, Severity


@dataclass(frozen=True)
class FindingKind:
    severity: Severity
    title: str
    remediation: str


CATALOG: dict[str, FindingKind] = {
    # certificates
    "cert-expired": FindingKind(
        Severity.CRITICAL,
        "Certificate has expired",
        "Renew the certificate and deploy it with its full chain.",
    ),
    "cert-not-yet-valid": FindingKind(
        Severity.HIGH,
        "Certificate is not yet valid",
        "Check the server clock and the certificate's notBefore date.",
    ),
    "cert-expiring": FindingKind(
        Severity.MEDIUM,
        "Certificate expires soon",
        "Renew the certificate before it expires; automate renewal (ACME).",
    ),
    "cert-hostname-mismatch": FindingKind(
        Severity.HIGH,
        "Certificate does not match the host name",
        "Issue a certificate whose subjectAltName lists the name clients use.",
    ),
    "cert-self-signed": FindingKind(
        Severity.HIGH,
        "Certificate is self-signed",
        "Use a certificate issued by a CA the clients trust.",
    ),
    "cert-untrusted": FindingKind(
        Severity.HIGH,
        "Certificate chain is not trusted",
        "Serve the full chain up to a CA in the clients' trust store, "
        "or pass the private CA with --ca-file.",
    ),
    "cert-chain-order": FindingKind(
        Severity.LOW,
        "Certificate chain is out of order",
        "Serve the leaf first, then each issuer in turn.",
    ),
    "cert-weak-key": FindingKind(
        Severity.HIGH,
        "Certificate key is too weak",
        "Use RSA of at least 2048 bits (3072 for use past 2030) or ECDSA P-256+.",
    ),
    "cert-weak-signature": FindingKind(
        Severity.HIGH,
        "Certificate is signed with SHA-1 or MD5",
        "Reissue the certificate with a SHA-256 (or stronger) signature.",
    ),
    "tls-legacy-protocol": FindingKind(
        Severity.MEDIUM,
        "Legacy TLS versions are accepted",
        "Disable TLS 1.0 and 1.1 (OpenSSL: MinProtocol = TLSv1.2; "
        "nginx: ssl_protocols TLSv1.2 TLSv1.3;).",
    ),
    "tls-no-tls13": FindingKind(
        Severity.MEDIUM,
        "TLS 1.3 is not offered",
        "Enable TLS 1.3; post-quantum key exchange needs it.",
    ),
    "tls-no-ocsp-stapling": FindingKind(
        Severity.INFO,
        "No OCSP response is stapled",
        "Enable OCSP stapling (nginx: ssl_stapling on;).",
    ),
    # post-quantum
    "pq-kex-missing": FindingKind(
        Severity.HIGH,
        "No post-quantum key exchange",
        "Enable the hybrid group X25519MLKEM768 (OpenSSL 3.5+).",
    ),
    "pq-kex-not-preferred": FindingKind(
        Severity.MEDIUM,
        "Post-quantum key exchange is supported but not chosen",
        "Put X25519MLKEM768 first in the server's group list.",
    ),
    "pq-kex-obsolete": FindingKind(
        Severity.LOW,
        "Obsolete pre-standard Kyber group is accepted",
        "Remove X25519Kyber768Draft00; offer X25519MLKEM768 instead.",
    ),
    "pq-auth-classical": FindingKind(
        Severity.LOW,
        "Authentication is not post-quantum",
        "Plan a move to ML-DSA certificates or host keys before 2035.",
    ),
    "pq-symmetric-128": FindingKind(
        Severity.INFO,
        "A 128-bit cipher is negotiated",
        "Prefer AES-256-GCM or ChaCha20-Poly1305 (CNSA 2.0 asks for AES-256).",
    ),
    "ssh-pq-kex-missing": FindingKind(
        Severity.HIGH,
        "SSH server offers no post-quantum key exchange",
        "Upgrade to OpenSSH 9.9+ and enable mlkem768x25519-sha256.",
    ),
}


def finding(id: str, detail: str, severity: Severity | None = None) -> Finding:
    """Create a finding of a catalogued kind; ``severity`` may override it."""
    kind = CATALOG[id]
    return Finding(
        id=id,
        severity=severity or kind.severity,
        title=kind.title,
        detail=detail,
        remediation=kind.remediation,
    )
