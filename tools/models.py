"""Typed results shared by every check.

Each check takes a target and options and returns one of the ``*Result`` models
below. A result always carries a :class:`Status`: a host that refused, timed out
or answered garbage is a result with a reason, never an exception in a batch.

The JSON shape of these models is the public contract of ``--json`` output. It is
versioned by :data:`SCHEMA_VERSION`; finding ids are never renamed once published.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.0"


class Severity(StrEnum):
    """How much a finding matters, lowest first."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class Status(StrEnum):
    """How far a check got with its target."""

    OK = "ok"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    OUT_OF_SCOPE = "out-of-scope"
    ERROR = "error"


class Posture(StrEnum):
    """A post-quantum verdict on one axis."""

    QUANTUM_SAFE = "quantum-safe"
    PARTIAL = "partial"
    VULNERABLE = "vulnerable"
    UNKNOWN = "unknown"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Finding(Model):
    """One thing worth telling someone, with a stable id."""

    id: str = Field(description="Stable identifier, e.g. 'cert-expired'.")
    severity: Severity
    title: str
    detail: str
    remediation: str = ""


class CheckResult(Model):
    """Fields every check result has."""

    target: str = Field(description="The target as it was given.")
    host: str = ""
    port: int | None = None
    address: str | None = Field(
        default=None, description="The address that was checked and connected to."
    )
    status: Status = Status.OK
    error: str | None = Field(default=None, description="One-line reason if not ok.")
    findings: list[Finding] = Field(default_factory=list)
    duration_ms: float = 0.0

    def worst_severity(self) -> Severity | None:
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=lambda s: s.rank)


# --- certificates -----------------------------------------------------------


class CertificateInfo(Model):
    """What one certificate of a presented chain says."""

    subject: str
    issuer: str
    sans: list[str] = Field(default_factory=list)
    serial: str
    not_before: str = Field(description="ISO 8601, UTC.")
    not_after: str = Field(description="ISO 8601, UTC.")
    days_left: int
    key_type: str = Field(description="RSA, EC, Ed25519, Ed448, ML-DSA-65, ...")
    key_size: int | None = None
    key_curve: str | None = None
    key_oid: str | None = None
    signature_algorithm: str
    signature_oid: str
    sha256_fingerprint: str
    self_signed: bool = False
    is_ca: bool = False
    post_quantum: bool = Field(
        default=False, description="Signature and key are post-quantum algorithms."
    )


class TrustInfo(Model):
    trusted: bool
    store: str = Field(description="'system' or the path of the CA bundle used.")
    reason: str | None = Field(default=None, description="Why it is not trusted.")
    hostname_match: bool
    chain_in_order: bool


class ConnectionInfo(Model):
    protocol: str | None = None
    cipher: str | None = None
    group: str | None = None
    ocsp_stapled: bool = False


class TlsResult(CheckResult):
    kind: Literal["tls"] = "tls"
    certificate: CertificateInfo | None = None
    chain: list[CertificateInfo] = Field(default_factory=list)
    trust: TrustInfo | None = None
    connection: ConnectionInfo | None = None
    protocols: dict[str, bool] = Field(
        default_factory=dict,
        description="Protocol version -> accepted, e.g. {'TLS 1.0': false}.",
    )


# --- post-quantum posture ----------------------------------------------------

GroupKind = Literal["pq-hybrid", "pq", "classical", "pq-obsolete"]
ProbeOutcome = Literal["supported", "not-supported", "error"]


class GroupProbe(Model):
    name: str = Field(description="IANA name, e.g. X25519MLKEM768.")
    code: int
    kind: GroupKind
    outcome: ProbeOutcome
    detail: str = ""


class ClientView(Model):
    """What a particular client ends up with when it connects."""

    client: str = Field(description="Which client was imitated.")
    offered: list[str]
    key_shares: list[str]
    selected_group: str | None = None
    hello_retry: bool = False
    version: str | None = None
    cipher: str | None = None


class TlsPqReport(Model):
    max_version: str | None = Field(
        default=None, description="Highest TLS version the server speaks."
    )
    control: GroupProbe | None = Field(
        default=None, description="The classical probe run first."
    )
    groups: list[GroupProbe] = Field(default_factory=list)
    supported_groups: list[str] = Field(default_factory=list)
    pq_groups: list[str] = Field(default_factory=list)
    preference: list[str] = Field(
        default_factory=list,
        description="Supported groups in the order the server picks them.",
    )
    server_order: bool | None = Field(
        default=None,
        description="True when the server's order wins over the client's.",
    )
    clients: list[ClientView] = Field(default_factory=list)
    ciphers_256: bool | None = Field(
        default=None, description="The server accepts a 256-bit AEAD cipher."
    )


class SshKexReport(Model):
    banner: str
    software: str = ""
    kex: list[str] = Field(default_factory=list)
    pq_kex: list[str] = Field(default_factory=list)
    host_key_algorithms: list[str] = Field(default_factory=list)
    ciphers: list[str] = Field(default_factory=list)
    macs: list[str] = Field(default_factory=list)


class CertificatePq(Model):
    key_type: str
    key_oid: str | None = None
    signature_algorithm: str
    signature_oid: str
    post_quantum: bool
    classical_strength_bits: int | None = None
    nist_ir_8547: str = Field(
        default="", description="What NIST IR 8547 says about this algorithm."
    )


class AxisVerdict(Model):
    posture: Posture
    reason: str
    remediation: list[str] = Field(default_factory=list)


class Verdict(Model):
    key_exchange: Posture
    authentication: Posture
    symmetric: Posture
    overall: Posture
    reasons: dict[str, str] = Field(default_factory=dict)
    remediation: dict[str, list[str]] = Field(default_factory=dict)


class PqResult(CheckResult):
    kind: Literal["pq"] = "pq"
    protocol: Literal["tls", "ssh"] | None = None
    tls: TlsPqReport | None = None
    ssh: SshKexReport | None = None
    certificate: CertificatePq | None = None
    verdict: Verdict | None = None


# --- nmap ----------------------------------------------------------------------


class PortInfo(Model):
    host: str
    port: int
    protocol: str
    state: str
    service: str = ""
    product: str = ""
    version: str = ""
    extra: str = ""
    tunnel: str = ""
    scripts: dict[str, str] = Field(default_factory=dict)


class HostInfo(Model):
    address: str
    hostname: str = ""
    state: str


class ScanResult(CheckResult):
    kind: Literal["scan"] = "scan"
    profile: str
    hosts: list[HostInfo] = Field(default_factory=list)
    ports: list[PortInfo] = Field(default_factory=list)
    nmap_version: str = ""
    command: str = Field(default="", description="The nmap command line that ran.")


class CheckReport(CheckResult):
    """`netwarden check`: discovery, then TLS and post-quantum checks per port."""

    kind: Literal["check"] = "check"
    scan: ScanResult | None = None
    tls: list[TlsResult] = Field(default_factory=list)
    pq: list[PqResult] = Field(default_factory=list)


AnyResult = TlsResult | PqResult | ScanResult | CheckReport
