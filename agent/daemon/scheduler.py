"""The schedule: every target's checks run on their interval, a few at a time.

Each (target, check) pair is a :class:`Job` with its own ``next_due``. On start a
job resumes from the store (last start + interval) or, never run before, is due
within the first jitter window so a fleet does not start in one burst. A
semaphore bounds how many checks run at once, and every run has a time budget,
so a slow or dead target holds one slot for at most that long and never delays
the others. One run is: check -> ``store.record_run`` (committed) -> change
detection against the previous run -> ``alerter.handle`` -> ``metrics.observe_run``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from agent.daemon.changes import detect
from agent.daemon.changes_base import Change
from agent.daemon.config import DaemonConfig, TargetConfig
from agent.daemon.store import Store
from tools import runner
from tools.models import CheckResult, PqResult, ScanResult, Status, TlsResult

log = logging.getLogger(__name__)

SCAN_BUDGET = 600.0
"""Seconds an nmap scan may take before its run is recorded as timed out."""


class RunObserver(Protocol):
    def observe_run(
        self, target: str, check: str, result: CheckResult, duration_s: float
    ) -> None: ...


class ChangeHandler(Protocol):
    async def handle(
        self,
        changes: list[Change],
        *,
        ran: Iterable[str] = (),
        check: str | None = None,
    ) -> None: ...


@dataclass
class Job:
    """One check of one target and when it is next due (Unix time)."""

    target: TargetConfig
    check: str
    interval: float
    jitter: float
    next_due: float = 0.0

    @property
    def label(self) -> str:
        return self.target.label

    def spread(self) -> float:
        """A random offset within +/- ``jitter`` of the interval."""
        return random.uniform(-self.jitter, self.jitter) * self.interval


class Scheduler:
    """Runs the configured checks on their intervals with bounded concurrency."""

    def __init__(
        self,
        config: DaemonConfig,
        store: Store,
        alerter: ChangeHandler | None = None,
        metrics: RunObserver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.alerter = alerter
        self.metrics = metrics
        self.clock = clock
        self.options = self.options_for(config)
        self.jobs = [
            Job(t, check, config.interval_of(t), config.jitter_of(t))
            for t in config.targets
            for check in t.checks
        ]
        self.in_flight: set[asyncio.Task[int]] = set()
        self._gate = asyncio.Semaphore(config.daemon.concurrency)
        self._plan()

    @staticmethod
    def options_for(config: DaemonConfig) -> runner.Options:
        """The check options every run of ``config`` uses."""
        return runner.Options(
            scope=config.build_scope(),
            timeout=config.checks.timeout,
            ca_file=config.tls.ca_file,
            thresholds=config.tls.thresholds(),
        )

    def _plan(self) -> None:
        """Resume every job from the store, or spread first runs over the jitter."""
        now = self.clock()
        for job in self.jobs:
            last = self.store.last_started(job.label, job.check)
            if last is None:
                job.next_due = now + random.uniform(0, job.jitter) * job.interval
            else:
                job.next_due = max(now, last + job.interval + job.spread())
            log.debug("%s %s due in %.1f s", job.label, job.check, job.next_due - now)

    # -- running

    async def run_once(self) -> list[int]:
        """Run every job once, now, and return the stored run ids (job order)."""
        return list(await asyncio.gather(*(self.run_job(job) for job in self.jobs)))

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Start jobs as they fall due until ``stop`` is set, then drain in-flight."""
        while not stop.is_set():
            self._start_due()
            await self._sleep(stop)
        if self.in_flight:
            log.info("waiting for %d in-flight checks", len(self.in_flight))
            await asyncio.gather(*self.in_flight, return_exceptions=True)

    def _start_due(self) -> None:
        now = self.clock()
        for job in self.jobs:
            if job.next_due <= now:
                job.next_due = now + job.interval + job.spread()
                task = asyncio.create_task(self.run_job(job))
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)

    async def _sleep(self, stop: asyncio.Event) -> None:
        wait = min((job.next_due for job in self.jobs), default=self.clock() + 60)
        delay = min(max(wait - self.clock(), 0.05), 60.0)
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except TimeoutError:
            return

    async def run_job(self, job: Job) -> int:
        """One run: check, store, detect, alert, observe. Returns the run id."""
        async with self._gate:
            started = self.clock()
            began = time.monotonic()
            result = await self._check(job)
            duration = time.monotonic() - began
            run_id = self.store.record_run(job.label, job.check, started, result)
        log.info(
            "run %d: %s %s %s in %.2f s",
            run_id,
            job.label,
            job.check,
            result.status.value,
            duration,
        )
        await self._after(job, run_id, result, duration)
        return run_id

    async def _after(
        self, job: Job, run_id: int, result: CheckResult, duration: float
    ) -> None:
        try:
            changes = self.changes_for(job, run_id, result)
            if self.alerter is not None:
                await self.alerter.handle(changes, ran=[job.label], check=job.check)
            if self.metrics is not None:
                self.metrics.observe_run(job.label, job.check, result, duration)
        except Exception:  # a bug after the run is stored must not stop the daemon
            log.exception("handling run %d of %s failed", run_id, job.label)

    def changes_for(self, job: Job, run_id: int, result: CheckResult) -> list[Change]:
        """Changes between this run and the one before it of the same job."""
        runs = self.store.last_runs(job.label, job.check, 2)
        older = [r for r in runs if r.id < run_id]
        previous = older[0].result() if older else None
        last_ok = None
        if previous is not None and previous.status is not Status.OK:
            found = self.store.last_ok(job.label, job.check, run_id)
            last_ok = found.result() if found else None
        return detect(
            previous,
            result,
            self.config.tls.thresholds(),
            target=job.label,
            run_id=run_id,
            last_ok=last_ok,
        )

    async def _check(self, job: Job) -> CheckResult:
        target = job.target
        options = self.options
        if target.server_name:
            options = dataclasses.replace(options, server_name=target.server_name)
        try:
            if job.check == "tls":
                return await runner.run_tls(target.endpoint, options)
            if job.check == "pq":
                return await runner.run_pq(target.endpoint, options)
            return await asyncio.wait_for(
                runner.run_scan(
                    target.host, options, target.scan_profile, target.ports
                ),
                timeout=SCAN_BUDGET,
            )
        except TimeoutError:
            return _failed(job, Status.TIMEOUT, f"no result within {SCAN_BUDGET} s")
        except Exception as exc:  # one broken check never stops the schedule
            log.warning("%s %s failed: %s", job.label, job.check, exc)
            return _failed(job, Status.ERROR, str(exc) or type(exc).__name__)


def _failed(job: Job, status: Status, message: str) -> CheckResult:
    if job.check == "scan":
        return ScanResult(
            target=job.target.host,
            host=job.target.host,
            profile=job.target.scan_profile,
            status=status,
            error=message,
        )
    result_type = TlsResult if job.check == "tls" else PqResult
    return result_type(
        target=job.target.endpoint,
        host=job.target.host,
        port=job.target.port,
        status=status,
        error=message,
    )
