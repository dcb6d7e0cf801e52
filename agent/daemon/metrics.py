"""Prometheus metrics of the daemon, rendered by hand in text exposition 0.0.4.

The scheduler calls :meth:`Metrics.observe_run` after every check run and the
alerter calls :meth:`Metrics.alert_delivery` after every delivery attempt; the HTTP
endpoint calls :meth:`Metrics.render`. All three may run on different threads, so
every access to the state goes through one lock.

Series (label values come from the daemon's config, never from peers, but are
escaped all the same):

- ``netwarden_check_duration_seconds{check}``: histogram of run durations.
- ``netwarden_check_results_total{check,status}``: runs by :class:`Status`.
- ``netwarden_cert_days_to_expiry{target}``: days left on the leaf certificate
  of the last TLS run that saw one (kept when a later run fails).
- ``netwarden_pq_verdict{target,axis}``: the post-quantum posture of the last
  post-quantum run that produced a verdict, as a number (see :data:`POSTURE_VALUE`).
- ``netwarden_alert_deliveries_total{channel,result}``: ``result`` is ``ok`` or
  ``failed``.
- ``netwarden_last_run_timestamp_seconds{target,check}``: Unix time of the last run.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from tools.models import (
    CheckReport,
    CheckResult,
    Posture,
    PqResult,
    Status,
    TlsResult,
    Verdict,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Upper bounds of the duration histogram, in seconds (``+Inf`` is implicit)."""

POSTURE_VALUE: dict[Posture, int] = {
    Posture.UNKNOWN: 0,
    Posture.VULNERABLE: 1,
    Posture.PARTIAL: 2,
    Posture.QUANTUM_SAFE: 3,
}
"""Gauge value per post-quantum posture: higher is better, 0 means unknown."""

AXES = ("key_exchange", "authentication", "symmetric", "overall")

LabelKey = tuple[str, ...]


def escape_label(value: str) -> str:
    """Escape a label value: backslash, double quote and line feed."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """Escape HELP text: backslash and line feed."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it (integers without a fraction)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _labels(names: Iterable[str], values: Iterable[str]) -> str:
    pairs = [f'{n}="{escape_label(v)}"' for n, v in zip(names, values, strict=True)]
    return "{" + ",".join(pairs) + "}" if pairs else ""


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    count: int = 0
    total: float = 0.0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                self.counts[i] += 1
        self.count += 1
        self.total += value


@dataclass(frozen=True)
class _Family:
    name: str
    kind: str
    help: str
    labels: tuple[str, ...]


DURATION = _Family(
    "netwarden_check_duration_seconds",
    "histogram",
    "Wall time of one check run, by check.",
    ("check",),
)
RESULTS = _Family(
    "netwarden_check_results_total",
    "counter",
    "Check runs by check and result status (ok, unreachable, timeout, ...).",
    ("check", "status"),
)
EXPIRY = _Family(
    "netwarden_cert_days_to_expiry",
    "gauge",
    "Days until the leaf certificate expires (negative once expired).",
    ("target",),
)
VERDICT = _Family(
    "netwarden_pq_verdict",
    "gauge",
    "Post-quantum posture per axis: 3 quantum-safe, 2 partial, 1 vulnerable, "
    "0 unknown.",
    ("target", "axis"),
)
DELIVERIES = _Family(
    "netwarden_alert_deliveries_total",
    "counter",
    "Alert delivery attempts by channel and result (ok or failed).",
    ("channel", "result"),
)
LAST_RUN = _Family(
    "netwarden_last_run_timestamp_seconds",
    "gauge",
    "Unix time at which the last run of a check on a target finished.",
    ("target", "check"),
)


class Metrics:
    """Thread-safe counters and gauges of the daemon, rendered for Prometheus."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._durations: dict[LabelKey, _Histogram] = {}
        self._results: dict[LabelKey, float] = {}
        self._expiry: dict[LabelKey, float] = {}
        self._verdict: dict[LabelKey, float] = {}
        self._deliveries: dict[LabelKey, float] = {}
        self._last_run: dict[LabelKey, float] = {}

    def observe_run(
        self, target: str, check: str, result: CheckResult, duration_s: float
    ) -> None:
        """Record one finished run of ``check`` on ``target``."""
        with self._lock:
            self._durations.setdefault((check,), _Histogram()).observe(duration_s)
            status_key = (check, Status(result.status).value)
            self._results[status_key] = self._results.get(status_key, 0) + 1
        self.restore(target, check, result, self._clock())

    def restore(
        self, target: str, check: str, result: CheckResult, finished: float
    ) -> None:
        """Set the per-endpoint gauges from a stored run, counting nothing.

        The daemon calls this at start-up with each target's latest run, so
        ``/metrics`` shows every endpoint at once, not only after its next run.
        """
        days = _days_to_expiry(result)
        verdict = _verdict(result)
        with self._lock:
            self._last_run[(target, check)] = finished
            if days is not None:
                self._expiry[(target,)] = days
            if verdict is not None:
                for axis in AXES:
                    posture = Posture(getattr(verdict, axis))
                    self._verdict[(target, axis)] = POSTURE_VALUE[posture]

    def alert_delivery(self, channel: str, ok: bool) -> None:
        """Count one delivery attempt on ``channel``."""
        key = (channel, "ok" if ok else "failed")
        with self._lock:
            self._deliveries[key] = self._deliveries.get(key, 0) + 1

    def forget_target(self, target: str) -> None:
        """Drop every series of a target that is no longer configured."""
        with self._lock:
            for series in (self._expiry, self._verdict, self._last_run):
                for key in [k for k in series if k[0] == target]:
                    del series[key]

    def render(self) -> str:
        """The whole exposition, families in a fixed order, series sorted."""
        with self._lock:
            parts = [
                _render_histograms(self._durations),
                _render_simple(RESULTS, self._results),
                _render_simple(EXPIRY, self._expiry),
                _render_simple(VERDICT, self._verdict),
                _render_simple(DELIVERIES, self._deliveries),
                _render_simple(LAST_RUN, self._last_run),
            ]
        return "".join(parts)


def _header(family: _Family) -> list[str]:
    return [
        f"# HELP {family.name} {escape_help(family.help)}",
        f"# TYPE {family.name} {family.kind}",
    ]


def _render_simple(family: _Family, series: Mapping[LabelKey, float]) -> str:
    lines = _header(family)
    for key in sorted(series):
        labels = _labels(family.labels, key)
        lines.append(f"{family.name}{labels} {format_value(series[key])}")
    return "\n".join(lines) + "\n"


def _render_histograms(series: Mapping[LabelKey, _Histogram]) -> str:
    name = DURATION.name
    lines = _header(DURATION)
    for key in sorted(series):
        hist = series[key]
        for bound, count in zip(BUCKETS, hist.counts, strict=True):
            labels = _labels((*DURATION.labels, "le"), (*key, format_value(bound)))
            lines.append(f"{name}_bucket{labels} {count}")
        labels = _labels((*DURATION.labels, "le"), (*key, "+Inf"))
        lines.append(f"{name}_bucket{labels} {hist.count}")
        plain = _labels(DURATION.labels, key)
        lines.append(f"{name}_sum{plain} {format_value(hist.total)}")
        lines.append(f"{name}_count{plain} {hist.count}")
    return "\n".join(lines) + "\n"


def _days_to_expiry(result: CheckResult) -> float | None:
    """Days left on the leaf certificate, or None when the run saw none."""
    if isinstance(result, TlsResult) and result.certificate is not None:
        return float(result.certificate.days_left)
    if isinstance(result, CheckReport):
        days = [t.certificate.days_left for t in result.tls if t.certificate]
        return float(min(days)) if days else None
    return None


def _verdict(result: CheckResult) -> Verdict | None:
    """The post-quantum verdict of a run, or None when it produced none."""
    if isinstance(result, PqResult):
        return result.verdict
    return None
