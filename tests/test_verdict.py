"""The verdict logic, from measured reports to postures, reasons and fixes."""

from __future__ import annotations

from tools.models import (
    CertificatePq,
    ClientView,
    GroupProbe,
    Posture,
    SshKexReport,
    TlsPqReport,
)
from tools.verdict import assess

RSA = CertificatePq(
    key_type="RSA",
    signature_algorithm="sha256WithRSAEncryption",
    signature_oid="1.2.840.113549.1.1.11",
    post_quantum=False,
    classical_strength_bits=112,
    nist_ir_8547="deprecated after 2030, disallowed after 2035 (NIST IR 8547)",
)
MLDSA = CertificatePq(
    key_type="ML-DSA-65",
    signature_algorithm="ML-DSA-65",
    signature_oid="2.16.840.1.101.3.4.3.18",
    post_quantum=True,
    nist_ir_8547="approved (FIPS 204)",
)


def report(
    supported: list[str], browser_gets: str, version: str = "TLS 1.3"
) -> TlsPqReport:
    pq = [g for g in supported if "MLKEM" in g]
    return TlsPqReport(
        max_version=version,
        groups=[
            GroupProbe(
                name=g,
                code=0,
                kind="pq-hybrid" if g in pq else "classical",
                outcome="supported",
            )
            for g in supported
        ],
        supported_groups=supported,
        pq_groups=pq,
        clients=[
            ClientView(
                client="browser",
                offered=["X25519MLKEM768", "x25519"],
                key_shares=["X25519MLKEM768", "x25519"],
                selected_group=browser_gets,
                cipher="TLS_AES_256_GCM_SHA384",
            )
        ],
        ciphers_256=True,
    )


def ids(assessment: object) -> set[str]:
    return {f.id for f in assessment.findings}  # type: ignore[attr-defined]


def test_hybrid_key_exchange_is_quantum_safe_but_rsa_keeps_overall_partial() -> None:
    result = assess(
        tls=report(["X25519MLKEM768", "x25519"], "X25519MLKEM768"), certificate=RSA
    )
    verdict = result.verdict
    assert verdict.key_exchange is Posture.QUANTUM_SAFE
    assert verdict.authentication is Posture.VULNERABLE
    assert verdict.symmetric is Posture.QUANTUM_SAFE
    assert verdict.overall is Posture.PARTIAL
    assert "authentication" in verdict.reasons["overall"]
    assert ids(result) == {"pq-auth-classical"}


def test_everything_post_quantum_is_quantum_safe_overall() -> None:
    result = assess(tls=report(["X25519MLKEM768"], "X25519MLKEM768"), certificate=MLDSA)
    assert result.verdict.overall is Posture.QUANTUM_SAFE
    assert not result.findings


def test_classical_only_is_vulnerable_with_the_fix_lines() -> None:
    result = assess(tls=report(["x25519", "secp256r1"], "x25519"), certificate=RSA)
    assert result.verdict.key_exchange is Posture.VULNERABLE
    assert result.verdict.overall is Posture.VULNERABLE
    fixes = " ".join(result.verdict.remediation["key_exchange"])
    assert "ssl_ecdh_curve X25519MLKEM768" in fixes
    assert "SSLOpenSSLConfCmd Curves" in fixes
    assert "Groups = X25519MLKEM768" in fixes
    assert "pq-kex-missing" in ids(result)


def test_supported_but_never_chosen_is_partial() -> None:
    result = assess(tls=report(["X25519MLKEM768", "x25519"], "x25519"), certificate=RSA)
    assert result.verdict.key_exchange is Posture.PARTIAL
    assert "pq-kex-not-preferred" in ids(result)


def test_tls12_only_is_vulnerable_and_says_why() -> None:
    result = assess(tls=report([], "", version="TLS 1.2"), certificate=RSA)
    assert result.verdict.key_exchange is Posture.VULNERABLE
    assert "TLS 1.2" in result.verdict.reasons["key_exchange"]
    assert {"tls-no-tls13", "pq-kex-missing"} <= ids(result)


def test_nothing_measured_is_unknown() -> None:
    verdict = assess().verdict
    assert verdict.overall is Posture.UNKNOWN
    assert verdict.authentication is Posture.UNKNOWN


def test_ssh_with_sntrup_is_quantum_safe_key_exchange() -> None:
    ssh = SshKexReport(
        banner="SSH-2.0-OpenSSH_9.2p1",
        kex=["sntrup761x25519-sha512@openssh.com", "curve25519-sha256"],
        pq_kex=["sntrup761x25519-sha512@openssh.com"],
        host_key_algorithms=["ssh-ed25519"],
        ciphers=["chacha20-poly1305@openssh.com", "aes128-ctr"],
    )
    verdict = assess(ssh=ssh).verdict
    assert verdict.key_exchange is Posture.QUANTUM_SAFE
    assert verdict.symmetric is Posture.QUANTUM_SAFE
    assert verdict.overall is Posture.PARTIAL


def test_ssh_without_pq_kex_gets_the_sshd_line() -> None:
    ssh = SshKexReport(
        banner="SSH-2.0-old", kex=["curve25519-sha256"], ciphers=["aes128-ctr"]
    )
    result = assess(ssh=ssh)
    assert result.verdict.key_exchange is Posture.VULNERABLE
    assert result.verdict.symmetric is Posture.PARTIAL
    assert any("KexAlgorithms" in f for f in result.verdict.remediation["key_exchange"])
    assert "ssh-pq-kex-missing" in ids(result)
