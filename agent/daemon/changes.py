"""Change detection: what differs between two consecutive runs of one check.

:func:`detect` compares a run with the one before it and returns
:class:`~agent.daemon.changes_base.Change` records: findings opened and resolved,
a certificate crossing an expiry threshold, a post-quantum regression or
improvement, ports opened or closed, and a target going down or coming back.

A post-quantum regression is one change per run (key ``pq:tls`` or ``pq:ssh``)
listing every group, SSH kex and verdict axis that got worse, so one server
reconfiguration gives one alert; the key-exchange findings it explains are folded
into it rather than reported again. Content is compared only between successful
runs: after an outage, pass the last successful run as ``last_ok``.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.daemon.changes_base import Change, ChangeKind
from tools.certs import Thresholds
from tools.models import (
    CheckResult,
    Finding,
    Posture,
    PqResult,
    ScanResult,
    Severity,
    Status,
    TlsResult,
    Verdict,
)

KEX_FINDINGS = frozenset(
    {"pq-kex-missing", "pq-kex-not-preferred", "ssh-pq-kex-missing"}
)
VERDICT_AXES = ("key_exchange", "authentication", "symmetric", "overall")
_POSTURE_RANK = {Posture.QUANTUM_SAFE: 0, Posture.PARTIAL: 1, Posture.VULNERABLE: 2}
_EXPIRY_SEVERITY = [
    None,
    Severity.LOW,
    Severity.MEDIUM,
    Severity.HIGH,
    Severity.CRITICAL,
]


@dataclass(frozen=True)
class _Context:
    target: str
    check: str
    run_id: int | None

    def change(
        self,
        kind: ChangeKind,
        severity: Severity,
        title: str,
        detail: str,
        key: str,
        resolved: bool = False,
        extra: dict[str, str] | None = None,
    ) -> Change:
        return Change(
            target=self.target,
            check=self.check,
            kind=kind,
            severity=severity,
            title=title,
            detail=detail,
            key=key,
            resolved=resolved,
            run_id=self.run_id,
            extra=extra or {},
        )


def detect(
    previous: CheckResult | None,
    current: CheckResult,
    thresholds: Thresholds | None = None,
    *,
    target: str | None = None,
    run_id: int | None = None,
    last_ok: CheckResult | None = None,
) -> list[Change]:
    """Every change from ``previous`` to ``current`` (``previous`` None: first run)."""
    ctx = _Context(target or current.target, check_name(current), run_id)
    changes = _reachability(ctx, previous, current)
    if current.status is not Status.OK:
        return changes
    baseline = previous
    if previous is not None and previous.status is not Status.OK:
        baseline = last_ok
    pq = _pq_changes(ctx, baseline, current)
    skip = KEX_FINDINGS if pq else frozenset()
    changes += _finding_changes(ctx, baseline, current, skip)
    changes += pq
    changes += _expiry_changes(ctx, baseline, current, thresholds or Thresholds())
    changes += _port_changes(ctx, baseline, current)
    return changes


def check_name(result: CheckResult) -> str:
    return str(getattr(result, "kind", "check"))


# --- reachability


def _reachability(
    ctx: _Context, previous: CheckResult | None, current: CheckResult
) -> list[Change]:
    was_ok = previous is None or previous.status is Status.OK
    if current.status is not Status.OK and was_ok:
        return [
            ctx.change(
                "unreachable",
                Severity.HIGH,
                f"{ctx.target} is {current.status.value} ({ctx.check})",
                current.error or current.status.value,
                "status",
                extra={"status": current.status.value},
            )
        ]
    if current.status is Status.OK and not was_ok:
        assert previous is not None
        return [
            ctx.change(
                "reachable",
                Severity.HIGH,
                f"{ctx.target} is reachable again ({ctx.check})",
                f"The {ctx.check} check succeeds again after {previous.status.value}.",
                "status",
                resolved=True,
            )
        ]
    return []


# --- findings


def _finding_changes(
    ctx: _Context,
    previous: CheckResult | None,
    current: CheckResult,
    skip: frozenset[str],
) -> list[Change]:
    before = {f.id: f for f in previous.findings} if previous else {}
    after = {f.id: f for f in current.findings}
    out = [
        _finding_change(ctx, f, resolved=False)
        for fid, f in after.items()
        if fid not in before and fid not in skip
    ]
    out += [
        _finding_change(ctx, f, resolved=True)
        for fid, f in before.items()
        if fid not in after and fid not in skip
    ]
    return out


def _finding_change(ctx: _Context, found: Finding, resolved: bool) -> Change:
    verb = "resolved" if resolved else "opened"
    return ctx.change(
        "finding-resolved" if resolved else "finding-opened",
        found.severity,
        f"{found.title} ({verb})",
        found.detail,
        f"finding:{found.id}",
        resolved=resolved,
        extra={"finding": found.id, "remediation": found.remediation},
    )


# --- certificate expiry


def expiry_level(days_left: int, thresholds: Thresholds) -> int:
    """0 far off, 1..3 past the warning/high/critical thresholds, 4 expired."""
    if days_left < 0:
        return 4
    limits = (thresholds.critical, thresholds.high, thresholds.warning)
    for level, limit in zip((3, 2, 1), limits, strict=True):
        if days_left <= limit:
            return level
    return 0


def _expiry_changes(
    ctx: _Context,
    previous: CheckResult | None,
    current: CheckResult,
    thresholds: Thresholds,
) -> list[Change]:
    now_days = _days_left(current)
    then_days = _days_left(previous)
    if now_days is None or then_days is None:
        return []
    now, then = expiry_level(now_days, thresholds), expiry_level(then_days, thresholds)
    if now > then:
        severity = _EXPIRY_SEVERITY[now] or Severity.LOW
        state = "has expired" if now == 4 else f"expires in {now_days} days"
        return [
            ctx.change(
                "cert-threshold",
                severity,
                f"Certificate of {ctx.target} {state}",
                f"Days left went from {then_days} to {now_days}.",
                "cert:expiry",
                extra={"days_left": str(now_days)},
            )
        ]
    if now == 0 < then:
        return [
            ctx.change(
                "cert-threshold",
                Severity.INFO,
                f"Certificate of {ctx.target} was renewed",
                f"It now has {now_days} days left.",
                "cert:expiry",
                resolved=True,
                extra={"days_left": str(now_days)},
            )
        ]
    return []


def _days_left(result: CheckResult | None) -> int | None:
    if isinstance(result, TlsResult) and result.certificate is not None:
        return result.certificate.days_left
    return None


# --- post-quantum posture


def _pq_changes(
    ctx: _Context, previous: CheckResult | None, current: CheckResult
) -> list[Change]:
    if not isinstance(previous, PqResult) or not isinstance(current, PqResult):
        return []
    lost, gained = _pq_names(previous), _pq_names(current)
    worse, better = _verdict_moves(previous.verdict, current.verdict)
    regressions = [f"no longer offered: {n}" for n in sorted(lost - gained)] + worse
    improvements = [f"now offered: {n}" for n in sorted(gained - lost)] + better
    key = f"pq:{current.protocol or 'tls'}"
    if regressions:
        return [
            ctx.change(
                "pq-regression",
                Severity.HIGH,
                f"Post-quantum regression on {ctx.target}",
                "; ".join(regressions) + ".",
                key,
                extra={"lost": ", ".join(sorted(lost - gained))},
            )
        ]
    if improvements:
        return [
            ctx.change(
                "pq-improved",
                Severity.INFO,
                f"Post-quantum posture of {ctx.target} improved",
                "; ".join(improvements) + ".",
                key,
                resolved=True,
                extra={"gained": ", ".join(sorted(gained - lost))},
            )
        ]
    return []


def _pq_names(result: PqResult) -> set[str]:
    names = set(result.tls.pq_groups) if result.tls else set()
    if result.ssh:
        names |= set(result.ssh.pq_kex)
    return names


def _verdict_moves(
    before: Verdict | None, after: Verdict | None
) -> tuple[list[str], list[str]]:
    worse: list[str] = []
    better: list[str] = []
    if before is None or after is None:
        return worse, better
    for axis in VERDICT_AXES:
        old, new = getattr(before, axis), getattr(after, axis)
        if old not in _POSTURE_RANK or new not in _POSTURE_RANK:
            continue
        move = f"{axis.replace('_', ' ')} {old.value} -> {new.value}"
        if _POSTURE_RANK[new] > _POSTURE_RANK[old]:
            worse.append(move)
        elif _POSTURE_RANK[new] < _POSTURE_RANK[old]:
            better.append(move)
    return worse, better


# --- ports


def _port_changes(
    ctx: _Context, previous: CheckResult | None, current: CheckResult
) -> list[Change]:
    if not isinstance(previous, ScanResult) or not isinstance(current, ScanResult):
        return []
    before, after = _open_ports(previous), _open_ports(current)
    out = [
        ctx.change(
            "port-opened",
            Severity.MEDIUM,
            f"New open port {port} on {ctx.target}",
            f"{port} is open{f' ({service})' if service else ''}.",
            f"port:{port}",
            extra={"port": port, "service": service},
        )
        for port, service in sorted(after.items())
        if port not in before
    ]
    out += [
        ctx.change(
            "port-closed",
            Severity.INFO,
            f"Port {port} on {ctx.target} closed",
            f"{port} is no longer open.",
            f"port:{port}",
            resolved=True,
            extra={"port": port, "service": service},
        )
        for port, service in sorted(before.items())
        if port not in after
    ]
    return out


def _open_ports(result: ScanResult) -> dict[str, str]:
    return {
        f"{p.host}:{p.port}/{p.protocol}": p.service
        for p in result.ports
        if p.state == "open"
    }
