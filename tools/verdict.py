"""Post-quantum verdicts: one per axis, each with a reason and a remediation.

Three axes, because they fail differently:

- key exchange: the harvest-now-decrypt-later risk. Traffic recorded today is
  readable later unless the key exchange is post-quantum. The urgent one.
- authentication: certificate or host-key signatures. Forging them needs a quantum
  computer at connection time, so there is time, but NIST IR 8547 sets the dates.
- symmetric: Grover's algorithm halves key strength; 256-bit ciphers keep a wide
  margin and are what CNSA 2.0 asks for.

The overall verdict is quantum-safe only when all three are; vulnerable whenever the
key exchange is; partial otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tools.findings import finding
from tools.models import (
    AxisVerdict,
    CertificatePq,
    Finding,
    Posture,
    SshKexReport,
    TlsPqReport,
    Verdict,
)

HYBRID_GROUPS = "X25519MLKEM768:X25519:secp256r1:secp384r1"
TLS_KEX_FIXES = [
    f"OpenSSL 3.5+ (openssl.cnf, [system_default_sect]): Groups = {HYBRID_GROUPS}",
    f"nginx (with OpenSSL 3.5+): ssl_ecdh_curve {HYBRID_GROUPS};",
    f"Apache httpd: SSLOpenSSLConfCmd Curves {HYBRID_GROUPS}",
    "HAProxy: ssl-default-bind-curves X25519MLKEM768:X25519:P-256:P-384",
]
TLS13_FIXES = [
    "nginx: ssl_protocols TLSv1.2 TLSv1.3;",
    "Apache httpd: SSLProtocol -all +TLSv1.2 +TLSv1.3",
    "OpenSSL (openssl.cnf): MaxProtocol = TLSv1.3",
]
SSH_KEX_FIX = (
    "sshd_config (OpenSSH 9.9+): KexAlgorithms mlkem768x25519-sha256,"
    "sntrup761x25519-sha512@openssh.com,curve25519-sha256"
)
SSH_KEX_FIX_OLD = (
    "sshd_config (OpenSSH 8.5 to 9.8): KexAlgorithms "
    "sntrup761x25519-sha512@openssh.com,curve25519-sha256"
)
AUTH_FIX = (
    "Plan the move to ML-DSA (FIPS 204) certificates once your clients accept "
    "them; RSA and ECDSA are disallowed after 2035 (NIST IR 8547)."
)
TLS_CIPHER_FIX = (
    "Enable TLS_AES_256_GCM_SHA384 and TLS_CHACHA20_POLY1305_SHA256 "
    "(OpenSSL: Ciphersuites = TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
    "TLS_AES_128_GCM_SHA256)"
)
SSH_CIPHER_FIX = (
    "sshd_config: Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,"
    "aes256-ctr"
)
SSH_256_CIPHERS = (
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes256-ctr",
)
SSH_128_CIPHERS = ("aes128-gcm@openssh.com", "aes128-ctr", "aes192-ctr")


@dataclass
class Assessment:
    """The verdict and the findings that explain it."""

    verdict: Verdict
    findings: list[Finding] = field(default_factory=list)


def assess(
    tls: TlsPqReport | None = None,
    ssh: SshKexReport | None = None,
    certificate: CertificatePq | None = None,
) -> Assessment:
    """Judge one endpoint from whatever was measured; missing data is unknown."""
    findings: list[Finding] = []
    if ssh is not None:
        kex = _ssh_key_exchange(ssh, findings)
        auth = _ssh_authentication(ssh, findings)
        sym = _ssh_symmetric(ssh)
    else:
        kex = _tls_key_exchange(tls, findings)
        auth = _certificate_authentication(certificate, findings)
        sym = _tls_symmetric(tls, findings)
    overall = _overall(kex, auth, sym)
    axes = {"key_exchange": kex, "authentication": auth, "symmetric": sym}
    verdict = Verdict(
        key_exchange=kex.posture,
        authentication=auth.posture,
        symmetric=sym.posture,
        overall=overall.posture,
        reasons={name: axis.reason for name, axis in axes.items()}
        | {"overall": overall.reason},
        remediation={name: axis.remediation for name, axis in axes.items()},
    )
    return Assessment(verdict, findings)


# --- key exchange


def _tls_key_exchange(tls: TlsPqReport | None, out: list[Finding]) -> AxisVerdict:
    if tls is None or tls.max_version is None:
        return AxisVerdict(posture=Posture.UNKNOWN, reason="No TLS result to judge.")
    if tls.max_version != "TLS 1.3":
        out.append(
            finding("tls-no-tls13", f"The highest version is {tls.max_version}.")
        )
        out.append(finding("pq-kex-missing", "Post-quantum groups need TLS 1.3."))
        return AxisVerdict(
            posture=Posture.VULNERABLE,
            reason=(
                f"The server speaks at most {tls.max_version}; post-quantum key "
                "exchange exists only in TLS 1.3, so recorded traffic can be "
                "decrypted once a large quantum computer exists."
            ),
            remediation=TLS13_FIXES + TLS_KEX_FIXES,
        )
    obsolete = [g.name for g in tls.groups if g.kind == "pq-obsolete"]
    obsolete = [name for name in obsolete if name in tls.supported_groups]
    if obsolete:
        out.append(finding("pq-kex-obsolete", f"Accepted: {', '.join(obsolete)}."))
    if not tls.pq_groups:
        classical = ", ".join(tls.supported_groups) or "none found"
        out.append(finding("pq-kex-missing", f"Accepted groups: {classical}."))
        return AxisVerdict(
            posture=Posture.VULNERABLE,
            reason=(
                f"Only classical key exchange ({classical}): traffic recorded "
                "today can be decrypted by a future quantum computer "
                "(harvest now, decrypt later)."
            ),
            remediation=TLS_KEX_FIXES,
        )
    return _tls_pq_choice(tls, out)


def _tls_pq_choice(tls: TlsPqReport, out: list[Finding]) -> AxisVerdict:
    pq = ", ".join(tls.pq_groups)
    browser = next((c for c in tls.clients if c.client == "browser"), None)
    chosen = browser.selected_group if browser else None
    if chosen is not None and chosen not in tls.pq_groups:
        out.append(
            finding(
                "pq-kex-not-preferred",
                f"Supports {pq}, but a browser-like client offering "
                f"X25519MLKEM768 first ends up on {chosen}.",
            )
        )
        return AxisVerdict(
            posture=Posture.PARTIAL,
            reason=(
                f"The server supports {pq} but picks {chosen} for a browser-like "
                "client, so most real connections are not protected."
            ),
            remediation=TLS_KEX_FIXES,
        )
    how = f"and a browser-like client gets {chosen}" if chosen else ""
    return AxisVerdict(
        posture=Posture.QUANTUM_SAFE,
        reason=f"Hybrid post-quantum key exchange is accepted ({pq}) {how}.".replace(
            " .", "."
        ),
    )


def _ssh_key_exchange(ssh: SshKexReport, out: list[Finding]) -> AxisVerdict:
    if ssh.pq_kex:
        return AxisVerdict(
            posture=Posture.QUANTUM_SAFE,
            reason=f"The SSH server offers post-quantum key exchange: "
            f"{', '.join(ssh.pq_kex)}.",
        )
    out.append(finding("ssh-pq-kex-missing", f"Offered: {', '.join(ssh.kex)}."))
    return AxisVerdict(
        posture=Posture.VULNERABLE,
        reason=(
            "The SSH server offers only classical key exchange: recorded sessions "
            "can be decrypted by a future quantum computer."
        ),
        remediation=[SSH_KEX_FIX, SSH_KEX_FIX_OLD],
    )


# --- authentication


def _certificate_authentication(
    cert: CertificatePq | None, out: list[Finding]
) -> AxisVerdict:
    if cert is None:
        return AxisVerdict(
            posture=Posture.UNKNOWN, reason="The certificate could not be read."
        )
    if cert.post_quantum:
        return AxisVerdict(
            posture=Posture.QUANTUM_SAFE,
            reason=f"The certificate uses {cert.signature_algorithm} "
            f"with a {cert.key_type} key.",
        )
    out.append(
        finding(
            "pq-auth-classical",
            f"{cert.key_type} key, {cert.signature_algorithm} signature: "
            f"{cert.nist_ir_8547}.",
        )
    )
    return AxisVerdict(
        posture=Posture.VULNERABLE,
        reason=(
            f"The certificate is {cert.key_type} signed with "
            f"{cert.signature_algorithm}: a quantum computer could forge it at "
            f"connection time (not retroactively); {cert.nist_ir_8547}."
        ),
        remediation=[AUTH_FIX],
    )


def _ssh_authentication(ssh: SshKexReport, out: list[Finding]) -> AxisVerdict:
    keys = ", ".join(ssh.host_key_algorithms) or "none listed"
    out.append(finding("pq-auth-classical", f"Host key algorithms: {keys}."))
    return AxisVerdict(
        posture=Posture.VULNERABLE,
        reason=(
            f"SSH host keys are classical ({keys}); no post-quantum host key "
            "algorithm is standardised for OpenSSH yet."
        ),
        remediation=["Watch for ML-DSA host keys in OpenSSH; none to enable yet."],
    )


# --- symmetric


def _tls_symmetric(tls: TlsPqReport | None, out: list[Finding]) -> AxisVerdict:
    if tls is None or tls.ciphers_256 is None:
        return AxisVerdict(posture=Posture.UNKNOWN, reason="Ciphers were not probed.")
    browser = next((c for c in tls.clients if c.client == "browser"), None)
    negotiated = browser.cipher if browser else None
    if negotiated and "128" in negotiated:
        out.append(
            finding("pq-symmetric-128", f"A browser-like client gets {negotiated}.")
        )
    if tls.ciphers_256:
        return AxisVerdict(
            posture=Posture.QUANTUM_SAFE,
            reason="256-bit AEAD ciphers are accepted (AES-256-GCM or ChaCha20).",
        )
    return AxisVerdict(
        posture=Posture.PARTIAL,
        reason="Only 128-bit ciphers: safe today, short of CNSA 2.0's AES-256.",
        remediation=[TLS_CIPHER_FIX],
    )


def _ssh_symmetric(ssh: SshKexReport) -> AxisVerdict:
    strong = [c for c in ssh.ciphers if c in SSH_256_CIPHERS]
    if strong:
        return AxisVerdict(
            posture=Posture.QUANTUM_SAFE,
            reason=f"256-bit ciphers are offered ({', '.join(strong)}).",
        )
    if any(c in SSH_128_CIPHERS for c in ssh.ciphers):
        return AxisVerdict(
            posture=Posture.PARTIAL,
            reason="Only 128/192-bit ciphers are offered.",
            remediation=[SSH_CIPHER_FIX],
        )
    return AxisVerdict(
        posture=Posture.UNKNOWN if not ssh.ciphers else Posture.VULNERABLE,
        reason="No modern cipher is offered." if ssh.ciphers else "No cipher list.",
        remediation=[SSH_CIPHER_FIX],
    )


# --- overall


def _overall(kex: AxisVerdict, auth: AxisVerdict, sym: AxisVerdict) -> AxisVerdict:
    if kex.posture is Posture.UNKNOWN:
        return AxisVerdict(posture=Posture.UNKNOWN, reason=kex.reason)
    if kex.posture is Posture.VULNERABLE:
        return AxisVerdict(
            posture=Posture.VULNERABLE,
            reason="Key exchange is classical: fix that first, it is the "
            "harvest-now-decrypt-later risk.",
        )
    postures = {kex.posture, auth.posture, sym.posture}
    if postures == {Posture.QUANTUM_SAFE}:
        return AxisVerdict(
            posture=Posture.QUANTUM_SAFE, reason="Every axis is post-quantum."
        )
    weaker = [
        name
        for name, axis in (
            ("authentication", auth),
            ("symmetric", sym),
            ("key exchange", kex),
        )
        if axis.posture is not Posture.QUANTUM_SAFE
    ]
    return AxisVerdict(
        posture=Posture.PARTIAL,
        reason="Key exchange resists harvest-now-decrypt-later attacks; still "
        f"classical or unknown: {', '.join(weaker)}.",
    )
