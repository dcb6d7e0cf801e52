"""What the change detector hands to the alerting side (shared contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tools.models import Severity

ChangeKind = Literal[
    "finding-opened",
    "finding-resolved",
    "cert-threshold",
    "pq-regression",
    "pq-improved",
    "port-opened",
    "port-closed",
    "unreachable",
    "reachable",
]


@dataclass(frozen=True)
class Change:
    """One difference between two consecutive runs of one target's check.

    ``key`` identifies the condition (e.g. ``finding:cert-expired`` or
    ``pq:group:X25519MLKEM768``) so alerts can dedupe, remind and resolve it;
    ``resolved`` is True when the change ends a condition an earlier change opened.
    """

    target: str
    check: str
    kind: ChangeKind
    severity: Severity
    title: str
    detail: str
    key: str
    resolved: bool = False
    run_id: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
