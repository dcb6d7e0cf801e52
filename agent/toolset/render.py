"""Compact text renderings of check results, the only view of them the model gets.

Plain lines carry values netwarden itself produced: statuses, verdicts, protocol
versions, the names of groups and key exchanges it knows, finding ids. Everything
that came from the network (certificate names, banners, service strings, script
output, peer error text, finding details) goes into one marked block of JSON-quoted
strings after a note that it is data, not instructions. JSON quoting escapes control
characters and newlines, so nothing inside the block can end it or start a line.
"""

from __future__ import annotations

import json
from typing import Any

from agent.toolset.texts import tool_texts
from tools.models import (
    AnyResult,
    CheckReport,
    Finding,
    PqResult,
    ScanResult,
    Status,
    TlsResult,
)

DATA_START = "<<< network data"
DATA_END = ">>> end of network data"
MAX_TEXT = 300
MAX_ITEMS = 12

PeerData = dict[str, Any]


def render_result(tool: str, result: AnyResult) -> str:
    """The few lines the model reads about ``result`` of ``tool``."""
    lines = [f"{tool} {result.target}: status {result.status}"]
    data: PeerData = {}
    if result.status is Status.OUT_OF_SCOPE:
        lines.append(tool_texts().note("out_of_scope"))
    if result.error:
        data["error"] = result.error
    lines += _body(result, data)
    lines += _findings(result.findings, data)
    return "\n".join(lines + _data_block(data))


def _body(result: AnyResult, data: PeerData) -> list[str]:
    if isinstance(result, TlsResult):
        return _tls_lines(result, data)
    if isinstance(result, PqResult):
        return _pq_lines(result, data)
    if isinstance(result, ScanResult):
        return _scan_lines(result, data)
    return _check_lines(result, data)


def _tls_lines(result: TlsResult, data: PeerData) -> list[str]:
    lines: list[str] = []
    if result.protocols:
        accepted = [v for v, ok in result.protocols.items() if ok]
        lines.append(f"protocols accepted: {', '.join(accepted) or 'none'}")
    if result.connection and result.connection.protocol:
        conn = result.connection
        lines.append(f"negotiated: {conn.protocol} {conn.cipher or ''}".rstrip())
    if cert := result.certificate:
        lines.append(
            f"certificate: {cert.key_type} key, {cert.signature_algorithm}, "
            f"{cert.days_left} days left, self-signed {_yes(cert.self_signed)}"
        )
        data["certificate"] = {
            "subject": cert.subject,
            "issuer": cert.issuer,
            "sans": cert.sans[:MAX_ITEMS],
        }
    if trust := result.trust:
        lines.append(
            f"trusted: {_yes(trust.trusted)}, hostname matches: "
            f"{_yes(trust.hostname_match)}"
        )
        if trust.reason:
            data["trust_reason"] = trust.reason
    return lines


def _pq_lines(result: PqResult, data: PeerData) -> list[str]:
    lines = [f"protocol: {result.protocol}"] if result.protocol else []
    if verdict := result.verdict:
        lines.append(
            f"verdict: overall {verdict.overall}; key exchange {verdict.key_exchange}; "
            f"authentication {verdict.authentication}; symmetric {verdict.symmetric}"
        )
        if verdict.reasons:
            data["verdict_reasons"] = verdict.reasons
    if tls := result.tls:
        lines.append(f"highest TLS version: {tls.max_version or 'unknown'}")
        lines.append(
            f"post-quantum groups accepted: {', '.join(tls.pq_groups) or 'none'}"
        )
        if tls.preference:
            lines.append(f"server preference: {', '.join(tls.preference[:6])}")
    if ssh := result.ssh:
        lines.append(f"post-quantum key exchanges: {', '.join(ssh.pq_kex) or 'none'}")
        data["ssh"] = {"banner": ssh.banner, "kex": ssh.kex[:MAX_ITEMS]}
    if cert := result.certificate:
        lines.append(
            f"certificate: {cert.key_type} key, {cert.signature_algorithm}, "
            f"post-quantum {_yes(cert.post_quantum)}"
        )
    return lines


def _scan_lines(result: ScanResult, data: PeerData) -> list[str]:
    up = [h for h in result.hosts if h.state == "up"]
    lines = [f"profile: {result.profile}; hosts up: {len(up)}"]
    ports = result.ports[: MAX_ITEMS * 2]
    lines += [f"port {p.host} {p.port}/{p.protocol}: {p.state}" for p in ports]
    if len(result.ports) > len(ports):
        lines.append(f"(and {len(result.ports) - len(ports)} more ports)")
    services = {
        f"{p.port}/{p.protocol}": _service(p.service, p.product, p.version)
        for p in ports
        if p.service or p.product
    }
    scripts = {f"{p.port}/{p.protocol}": p.scripts for p in ports if p.scripts}
    if services:
        data["services"] = services
    if scripts:
        data["scripts"] = scripts
    return lines


def _check_lines(result: CheckReport, data: PeerData) -> list[str]:
    lines: list[str] = []
    if result.scan is not None:
        open_ports = [p.port for p in result.scan.ports if p.state == "open"]
        lines.append(f"open ports: {', '.join(map(str, open_ports)) or 'none'}")
    for tls in result.tls:
        lines.append(f"tls_check {tls.target}: status {tls.status}")
    for pq in result.pq:
        overall = pq.verdict.overall if pq.verdict else "unknown"
        lines.append(f"pq_check {pq.target}: status {pq.status}, overall {overall}")
    errors = {r.target: r.error for r in [*result.tls, *result.pq] if r.error}
    if errors:
        data["check_errors"] = errors
    return lines


def _findings(findings: list[Finding], data: PeerData) -> list[str]:
    if not findings:
        return ["findings: none"]
    shown = findings[:MAX_ITEMS]
    ids = ", ".join(f"{f.id} ({f.severity})" for f in shown)
    data["finding_details"] = [{"id": f.id, "detail": f.detail} for f in shown]
    return [f"findings: {ids}"]


def _data_block(data: PeerData) -> list[str]:
    if not data:
        return []
    body = [
        f"{key}: {json.dumps(_clip(value), ensure_ascii=True)}"
        for key, value in sorted(data.items())
    ]
    return [tool_texts().note("peer_data"), DATA_START, *body, DATA_END]


def _clip(value: Any) -> Any:
    """Long strings shortened, so one chatty peer cannot flood the context."""
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "..."
    if isinstance(value, dict):
        return {str(k): _clip(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clip(v) for v in value]
    return value


def _service(service: str, product: str, version: str) -> str:
    return " ".join(part for part in (service, product, version) if part)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
