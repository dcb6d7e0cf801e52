"""``netwarden daemon``, ``history`` and ``status``: the monitoring daemon's CLI.

The daemon's file is ``--config``, else ``$NETWARDEN_DAEMON_CONFIG``, else
``~/.config/netwarden/daemon.toml``. ``history`` and ``status`` read the database
named there (or ``--db``) and never touch the network.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from agent.cli import render
from agent.daemon.config import DaemonConfig, load_daemon_config
from agent.daemon.store import RunRecord, Store
from agent.settings import default_config_path
from tools.errors import ConfigError
from tools.models import CheckResult, PqResult, ScanResult, TlsResult

_CONFIG_HELP = "Daemon config (default: $NETWARDEN_DAEMON_CONFIG or daemon.toml)."


def config_option(func: Any) -> Any:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help=_CONFIG_HELP,
    )(func)


def db_option(func: Any) -> Any:
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="History database (default: [daemon] db of the config).",
    )(func)


def daemon_config_path(given: Path | None) -> Path:
    if given is not None:
        return given
    if value := os.environ.get("NETWARDEN_DAEMON_CONFIG"):
        return Path(value)
    return default_config_path().with_name("daemon.toml")


@click.command()
@config_option
@click.option("--check-config", is_flag=True, help="Validate the config and exit.")
@click.option("--once", is_flag=True, help="Run every check once, then exit.")
def daemon(config_path: Path | None, check_config: bool, once: bool) -> None:
    """Watch the configured targets: schedule checks, keep history, send alerts."""
    path = daemon_config_path(config_path)
    config = load_daemon_config(path)
    if check_config:
        jobs = sum(len(t.checks) for t in config.targets)
        click.echo(f"{path}: ok ({len(config.targets)} targets, {jobs} checks)")
        return
    root = logging.getLogger()
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)
    from agent.daemon.service import run_daemon

    raise SystemExit(run_daemon(config, once=once))


@click.command()
@click.argument("target")
@click.option("--limit", type=click.IntRange(1, 100000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
@db_option
def history(
    target: str,
    limit: int,
    as_json: bool,
    config_path: Path | None,
    db_path: Path | None,
) -> None:
    """Past runs of TARGET (its name, or host:port), newest first."""
    store = _open_store(config_path, db_path)
    try:
        records = store.history(target, limit)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([_record_json(r) for r in records], indent=2))
    elif not records:
        render.error(f"no runs recorded for {target!r}")
    else:
        render.out.print(_table(f"History of {target}", records))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
@db_option
def status(as_json: bool, config_path: Path | None, db_path: Path | None) -> None:
    """The latest run of every target and check."""
    store = _open_store(config_path, db_path)
    try:
        records = store.status()
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([_record_json(r) for r in records], indent=2))
    elif not records:
        render.error("no runs recorded yet")
    else:
        render.out.print(_table("Status", records))


# --- helpers


def _open_store(config_path: Path | None, db_path: Path | None) -> Store:
    path = db_path or _db_from_env() or _db_from_config(config_path)
    if not path.exists():
        raise ConfigError(f"{path}: no history database (has the daemon run?)")
    return Store(path)


def _db_from_env() -> Path | None:
    value = os.environ.get("NETWARDEN_DAEMON_DB")
    return Path(value) if value else None


def _db_from_config(config_path: Path | None) -> Path:
    config: DaemonConfig = load_daemon_config(daemon_config_path(config_path))
    return config.daemon.db


def _record_json(record: RunRecord) -> dict[str, Any]:
    data = record.as_dict()
    data["result"] = json.loads(record.result_json)
    return data


def _table(title: str, records: list[RunRecord]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("run", "target", "check", "started (UTC)", "status", "summary"):
        table.add_column(column)
    for record in records:
        result = record.result()
        table.add_row(
            str(record.id),
            record.target,
            record.check,
            _when(record.started),
            record.status,
            _summary(result),
        )
    return table


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _summary(result: CheckResult) -> str:
    if result.error:
        return result.error[:80]
    parts = [f"{len(result.findings)} findings"]
    if isinstance(result, PqResult) and result.verdict is not None:
        parts.append(f"verdict {result.verdict.overall.value}")
    if isinstance(result, TlsResult) and result.certificate is not None:
        parts.append(f"{result.certificate.days_left} days left")
    if isinstance(result, ScanResult):
        parts.append(f"{sum(p.state == 'open' for p in result.ports)} open ports")
    return ", ".join(parts)
