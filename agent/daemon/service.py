"""The daemon's main: store, metrics endpoint, alerter, schedule and delivery loop.

``Daemon(config).run()`` runs until SIGTERM or SIGINT, then stops starting new
checks, lets in-flight ones finish and be recorded, delivers what is due once
more, closes everything and returns 0. Runs are committed one by one, so even a
``kill -9`` loses nothing that had completed; the next start resumes the
schedule from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import time
from typing import Any

from agent.daemon.config import DaemonConfig
from agent.daemon.metrics import Metrics
from agent.daemon.scheduler import Scheduler
from agent.daemon.store import Store

log = logging.getLogger(__name__)

DELIVERY_PERIOD = 2.0
"""Seconds between two passes over the alert outbox."""

FLUSH_BUDGET = 10.0
"""Seconds the final outbox pass may take at shutdown."""

PRUNE_PERIOD = 3600.0
"""Seconds between two passes that delete history older than ``keep_days``."""


class Daemon:
    """One running daemon for one configuration."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.stop = asyncio.Event()
        self.started = time.time()
        self.metrics = Metrics()
        self.store: Store | None = None
        self.alerter: Any = None
        self.scheduler: Scheduler | None = None
        self.http: asyncio.AbstractServer | None = None

    async def run(self, once: bool = False) -> int:
        """Run until stopped (or one cycle with ``once``); the exit code."""
        self.store = Store(self.config.daemon.db)
        self._restore_metrics(self.store)
        try:
            self.alerter = _make_alerter(self.config, self.store, self.metrics)
            self.scheduler = Scheduler(
                self.config, self.store, self.alerter, self.metrics
            )
            if once:
                await self.scheduler.run_once()
            else:
                await self._serve(self.scheduler)
            await self._flush()
        finally:
            await self._close()
        return 0

    async def _serve(self, scheduler: Scheduler) -> None:
        self._install_signals()
        await self._start_http()
        delivery = asyncio.create_task(self._deliver_loop())
        log.info("daemon watching %d checks", len(scheduler.jobs))
        try:
            await scheduler.run_forever(self.stop)
        finally:
            delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await delivery

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if not self.stop.is_set():
            log.info("%s: finishing in-flight checks", name)
            self.stop.set()
            return
        log.warning("%s again: abandoning in-flight checks", name)
        for task in list(self.scheduler.in_flight if self.scheduler else ()):
            task.cancel()

    def _restore_metrics(self, store: Store) -> None:
        """Seed the endpoint gauges with each configured check's latest run."""
        configured = {
            (t.label, check) for t in self.config.targets for check in t.checks
        }
        for record in store.status():
            if (record.target, record.check) in configured:
                self.metrics.restore(
                    record.target, record.check, record.result(), record.finished
                )

    async def _start_http(self) -> None:
        daemon = self.config.daemon
        if not daemon.http:
            return
        from agent.daemon.http import serve_http

        self.http = await serve_http(
            self.metrics, daemon.http_host, daemon.http_port, self.health
        )

    def health(self) -> dict[str, object]:
        """What ``/healthz`` reports besides ``status``."""
        store, scheduler = self.store, self.scheduler
        return {
            "uptime_s": round(time.time() - self.started, 1),
            "checks": len(scheduler.jobs) if scheduler else 0,
            "in_flight": len(scheduler.in_flight) if scheduler else 0,
            "runs": store.count_runs() if store else 0,
            "stopping": self.stop.is_set(),
        }

    async def _deliver_loop(self) -> None:
        pruned = 0.0
        while not self.stop.is_set():
            if time.monotonic() - pruned > PRUNE_PERIOD or not pruned:
                self._prune()
                pruned = time.monotonic()
            await self._deliver()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=DELIVERY_PERIOD)

    def _prune(self) -> None:
        days = self.config.daemon.keep_days
        if self.store is None or days <= 0:
            return
        removed = self.store.prune(time.time() - days * 86400)
        if removed:
            log.info("pruned %d runs older than %g days", removed, days)

    async def _deliver(self) -> None:
        if self.alerter is None:
            return
        try:
            await self.alerter.deliver_due()
        except Exception:  # delivery trouble never stops the daemon
            log.exception("alert delivery pass failed")

    async def _flush(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._deliver(), timeout=FLUSH_BUDGET)

    async def _close(self) -> None:
        if self.http is not None:
            self.http.close()
            with contextlib.suppress(Exception):
                await self.http.wait_closed()
        if self.alerter is not None:
            await self.alerter.close()
        if self.store is not None:
            self.store.close()


def _make_alerter(config: DaemonConfig, store: Store, metrics: Metrics) -> Any:
    """The alerter, or None while ``agent.daemon.alerts`` has no ``Alerter``."""
    alerts = importlib.import_module("agent.daemon.alerts")
    alerter_type = getattr(alerts, "Alerter", None)
    if alerter_type is None:
        log.warning("alerting is not available in this build")
        return None
    return alerter_type(config.alerts, store, metrics, _make_triage(config))


def _make_triage(config: DaemonConfig) -> Any:
    """Model triage when ``[model] path`` is set, else None (plain summaries)."""
    if config.model is None or config.model.path is None:
        return None
    from agent.loop import Assistant
    from agent.modelload import load_model
    from agent.settings import AgentSettings, ModelSettings, Settings

    triage = importlib.import_module("agent.daemon.triage")
    settings = Settings(model=ModelSettings(path=config.model.path))
    loaded = load_model(settings)
    scheduler_options = Scheduler.options_for(config)
    approver = triage.ModelTriage.approver(config.model.allow_active_scans)
    assistant = Assistant(loaded.runtime, scheduler_options, AgentSettings(), approver)
    log.info("alert triage by the model at %s", config.model.path)
    return triage.ModelTriage(assistant)


def run_daemon(config: DaemonConfig, once: bool = False) -> int:
    """Blocking entry point for the CLI."""
    return asyncio.run(Daemon(config).run(once=once))
