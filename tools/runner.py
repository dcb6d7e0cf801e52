"""Running checks against targets: scope first, then the probes, always a result.

Every ``run_*`` coroutine takes the target string as the user gave it and returns a
typed result. Scope is checked before anything is sent; an out-of-scope target, an
unreachable host or a peer that speaks nonsense each become a status on the result.
Only input that can never work (a target that does not parse) raises.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tools import nmapscan
from tools.certs import Thresholds, classify_certificate, inspect_tls
from tools.errors import ProbeError, ScopeError, UsageError
from tools.findings import finding
from tools.models import (
    CertificatePq,
    CheckReport,
    CheckResult,
    PortInfo,
    PqResult,
    ScanResult,
    Status,
    TlsResult,
)
from tools.scope import Scope
from tools.ssh import read_kexinit
from tools.targets import Target, is_ip_literal, parse_target
from tools.tls.probe import NotTlsError, probe_groups, probe_versions
from tools.verdict import assess

log = logging.getLogger(__name__)

R = TypeVar("R", bound=CheckResult)

TLS_SERVICES = {"https", "ssl", "imaps", "pop3s", "smtps", "ldaps", "ftps"}


@dataclass
class Options:
    """Knobs shared by every check."""

    scope: Scope = field(default_factory=Scope.default)
    timeout: float = 5.0
    ca_file: Path | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    server_name: str | None = None
    force_ssh: bool = False
    concurrency: int = 16
    probe_concurrency: int = 8


# --- one target


async def run_tls(raw: str, options: Options) -> TlsResult:
    target = parse_target(raw)
    result = TlsResult(target=raw, host=target.host, port=target.port)
    return await _guarded(result, options, lambda: _tls(target, result, options))


async def run_pq(raw: str, options: Options) -> PqResult:
    target = parse_target(raw, default_port=22 if options.force_ssh else 443)
    result = PqResult(target=raw, host=target.host, port=target.port)
    return await _guarded(result, options, lambda: _pq(target, result, options))


async def run_scan(
    raw: str, options: Options, profile: str = "quick", ports: list[int] | None = None
) -> ScanResult:
    if profile not in nmapscan.PROFILES:
        known = ", ".join(nmapscan.PROFILES)
        raise UsageError(f"unknown scan profile {profile!r} (known: {known})")
    nmapscan.nmap_version()  # a missing binary is a usage problem, not a result
    result = ScanResult(target=raw, host=raw, profile=profile)
    started = time.monotonic()
    try:
        address = options.scope.check_target(raw).address
    except ScopeError as exc:
        return _refused_by_scope(result, exc)
    try:
        scanned = await asyncio.to_thread(
            nmapscan.run_scan, raw, address=address, profile=profile, ports=ports
        )
    except ProbeError as exc:
        result.status, result.error = exc.status, str(exc)
        return result
    scanned.duration_ms = _ms_since(started)
    return scanned


async def run_check(
    raw: str, options: Options, ports: list[int] | None = None
) -> CheckReport:
    """Discovery with nmap, then TLS and post-quantum checks on every port found."""
    target = parse_target(raw, default_port=443)
    report = CheckReport(target=raw, host=target.host)
    started = time.monotonic()
    scan = await run_scan(target.host, options, profile="services", ports=ports)
    report.scan, report.address = scan, scan.address
    report.status, report.error = scan.status, scan.error
    if scan.status is Status.OK:
        await _check_ports(target, scan.ports, report, options)
        report.findings = [f for r in [*report.tls, *report.pq] for f in r.findings]
    report.duration_ms = _ms_since(started)
    return report


async def run_batch(
    check: Callable[[str], Awaitable[R]],
    targets: Iterable[str],
    concurrency: int,
    on_result: Callable[[R], None] | None = None,
) -> list[R]:
    """Run ``check`` over targets with bounded concurrency, results in input order."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(raw: str) -> R:
        async with gate:
            result = await check(raw)
        if on_result is not None:
            on_result(result)
        return result

    return list(await asyncio.gather(*(one(raw) for raw in targets)))


# --- the checks


async def _tls(target: Target, result: TlsResult, options: Options) -> TlsResult:
    address = _scope_host(target, options.scope, result)
    name = _server_name(target, options)
    inspection, versions = await asyncio.gather(
        asyncio.to_thread(
            inspect_tls,
            address,
            target.port,
            name,
            ca_file=options.ca_file,
            thresholds=options.thresholds,
            timeout=options.timeout,
        ),
        probe_versions(address, target.port, name, timeout=options.timeout),
    )
    result.certificate, result.chain = inspection.certificate, inspection.chain
    result.trust, result.connection = inspection.trust, inspection.connection
    result.protocols = versions
    result.findings = list(inspection.findings)
    legacy = [v for v in ("SSL 3.0", "TLS 1.0", "TLS 1.1") if versions.get(v)]
    if legacy:
        result.findings.append(
            finding("tls-legacy-protocol", f"Accepted: {', '.join(legacy)}.")
        )
    return result


async def _pq(target: Target, result: PqResult, options: Options) -> PqResult:
    address = _scope_host(target, options.scope, result)
    if options.force_ssh or target.scheme == "ssh" or target.port == 22:
        return await _pq_ssh(address, target, result, options)
    name = _server_name(target, options)
    certificate = asyncio.create_task(_certificate_pq(address, target, name, options))
    try:
        result.tls = await probe_groups(
            address,
            target.port,
            name,
            timeout=options.timeout,
            concurrency=options.probe_concurrency,
        )
    except NotTlsError:
        certificate.cancel()
        return await _pq_ssh(address, target, result, options)
    except BaseException:
        certificate.cancel()
        raise
    result.protocol = "tls"
    result.certificate = await certificate
    assessment = assess(tls=result.tls, certificate=result.certificate)
    result.verdict, result.findings = assessment.verdict, assessment.findings
    return result


async def _pq_ssh(
    address: str, target: Target, result: PqResult, options: Options
) -> PqResult:
    result.protocol = "ssh"
    result.ssh = await read_kexinit(address, target.port, timeout=options.timeout)
    assessment = assess(ssh=result.ssh)
    result.verdict, result.findings = assessment.verdict, assessment.findings
    return result


async def _certificate_pq(
    address: str, target: Target, name: str | None, options: Options
) -> CertificatePq | None:
    """The certificate's algorithms, or None when it cannot be read."""
    try:
        inspection = await asyncio.to_thread(
            inspect_tls, address, target.port, name, timeout=options.timeout
        )
    except ProbeError as exc:
        log.info("no certificate from %s: %s", target.display, exc)
        return None
    return classify_certificate(inspection.leaf)


async def _check_ports(
    target: Target, ports: list[PortInfo], report: CheckReport, options: Options
) -> None:
    jobs: list[Awaitable[CheckResult]] = []
    for port in ports:
        if port.state != "open":
            continue
        host = target.host if target.host != port.host else port.host
        endpoint = f"[{host}]:{port.port}" if ":" in host else f"{host}:{port.port}"
        if port.service == "ssh":
            jobs.append(run_pq(f"ssh://{endpoint}", options))
        elif port.tunnel == "ssl" or port.service in TLS_SERVICES:
            jobs.append(run_tls(endpoint, options))
            jobs.append(run_pq(endpoint, options))
    for done in await asyncio.gather(*jobs):
        if isinstance(done, TlsResult):
            report.tls.append(done)
        elif isinstance(done, PqResult):
            report.pq.append(done)


# --- helpers


async def _guarded(result: R, options: Options, work: Callable[[], Awaitable[R]]) -> R:
    """Run one check: scope refusals and probe failures become statuses."""
    started = time.monotonic()
    budget = options.timeout * 6 + 5
    try:
        result = await asyncio.wait_for(work(), timeout=budget)
    except ScopeError as exc:
        result = _refused_by_scope(result, exc)
    except ProbeError as exc:
        result.status, result.error = exc.status, str(exc)
    except TimeoutError:
        result.status = Status.TIMEOUT
        result.error = f"the check did not finish within {budget:.0f} s"
    result.duration_ms = _ms_since(started)
    log.info("%s %s: %s", type(result).__name__, result.target, result.status)
    return result


def _refused_by_scope(result: R, exc: ScopeError) -> R:
    result.status, result.error = Status.OUT_OF_SCOPE, str(exc)
    log.info("refused %s: %s", result.target, exc.reason)
    return result


def _scope_host(target: Target, scope: Scope, result: CheckResult) -> str:
    decision = scope.check_host(target.host)
    result.address = decision.address
    return decision.address


def _server_name(target: Target, options: Options) -> str | None:
    if options.server_name:
        return options.server_name
    return None if is_ip_literal(target.host) else target.host


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
