"""The daemon's history in SQLite: one row per check run with its full JSON result.

The database runs in WAL mode with ``synchronous=FULL`` and every write commits at
once, so a run that was recorded survives a ``kill -9`` of the daemon (and a power
cut). The schema is versioned: :data:`MIGRATIONS` is applied in order and the
``schema_version`` table remembers how far a file got.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tools.errors import ConfigError
from tools.models import CheckResult, PqResult, ScanResult, Status, TlsResult

log = logging.getLogger(__name__)

MIGRATIONS: list[str] = [
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        target TEXT NOT NULL,
        "check" TEXT NOT NULL,
        started REAL NOT NULL,
        finished REAL NOT NULL,
        status TEXT NOT NULL,
        result_json TEXT NOT NULL
    );
    CREATE INDEX runs_target_check ON runs (target, "check", id);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL,
        payload TEXT NOT NULL,
        created REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt REAL NOT NULL,
        delivered REAL,
        last_error TEXT
    );
    CREATE INDEX outbox_due ON outbox (delivered, next_attempt);
    CREATE TABLE alert_state (
        target TEXT NOT NULL,
        key TEXT NOT NULL,
        state TEXT NOT NULL,
        severity TEXT NOT NULL,
        since REAL NOT NULL,
        last_sent REAL,
        failures INTEGER NOT NULL DEFAULT 0,
        successes INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (target, key)
    );
    """,
]

RESULT_TYPES: dict[str, type[CheckResult]] = {
    "tls": TlsResult,
    "pq": PqResult,
    "scan": ScanResult,
}


@dataclass(frozen=True)
class RunRecord:
    """One stored run."""

    id: int
    target: str
    check: str
    started: float
    finished: float
    status: str
    result_json: str

    def result(self) -> CheckResult:
        """The stored result as its typed model."""
        model = RESULT_TYPES.get(self.check, CheckResult)
        try:
            return model.model_validate_json(self.result_json)
        except ValidationError as exc:
            log.warning("run %d: stored result does not parse: %s", self.id, exc)
            return CheckResult(
                target=self.target,
                status=Status.ERROR,
                error="the stored result does not parse",
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": self.target,
            "check": self.check,
            "started": self.started,
            "finished": self.finished,
            "status": self.status,
        }


_RUN_COLUMNS = 'id, target, "check", started, finished, status, result_json'


class Store:
    """A SQLite file holding runs, the alert outbox and alert state.

    Safe to use from several threads: one connection behind a lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=30
            )
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"{path}: cannot open the database: {exc}") from None
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self.migrate()

    # -- schema

    def schema_version(self) -> int:
        with self._lock:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
            )
            row = self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def migrate(self) -> int:
        """Apply every migration the file has not seen; return the new version."""
        current = self.schema_version()
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            with self._lock:
                self._db.executescript(f"BEGIN; {script}")
                self._db.execute(
                    "INSERT INTO schema_version (version) VALUES (?)", (version,)
                )
                self._db.execute("COMMIT")
            log.info("database %s migrated to schema %d", self.path, version)
        return len(MIGRATIONS)

    # -- generic access (the alerting side uses these)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement and commit; return the last row id."""
        with self._lock:
            cursor = self._db.execute(sql, params)
            return int(cursor.lastrowid or 0)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    # -- runs

    def record_run(
        self,
        target: str,
        check: str,
        started: float,
        result: CheckResult,
        finished: float | None = None,
    ) -> int:
        """Store one completed run (committed before this returns); its id."""
        return self.execute(
            'INSERT INTO runs (target, "check", started, finished, status, '
            "result_json) VALUES (?, ?, ?, ?, ?, ?)",
            (
                target,
                check,
                started,
                time.time() if finished is None else finished,
                result.status.value,
                result.model_dump_json(),
            ),
        )

    def last_runs(self, target: str, check: str, n: int = 1) -> list[RunRecord]:
        """The newest ``n`` runs of one target's check, newest first."""
        return self._runs(
            'WHERE target = ? AND "check" = ? ORDER BY id DESC LIMIT ?',
            (target, check, n),
        )

    def last_ok(self, target: str, check: str, before_id: int) -> RunRecord | None:
        """The newest successful run older than ``before_id``."""
        found = self._runs(
            'WHERE target = ? AND "check" = ? AND status = ? AND id < ? '
            "ORDER BY id DESC LIMIT 1",
            (target, check, "ok", before_id),
        )
        return found[0] if found else None

    def history(self, target: str, limit: int = 20) -> list[RunRecord]:
        """The newest runs of every check of ``target``, newest first."""
        return self._runs("WHERE target = ? ORDER BY id DESC LIMIT ?", (target, limit))

    def status(self) -> list[RunRecord]:
        """The latest run of every target and check, ordered by target."""
        return self._runs(
            'WHERE id IN (SELECT MAX(id) FROM runs GROUP BY target, "check") '
            'ORDER BY target, "check"',
            (),
        )

    def last_started(self, target: str, check: str) -> float | None:
        rows = self.query(
            'SELECT MAX(started) FROM runs WHERE target = ? AND "check" = ?',
            (target, check),
        )
        value = rows[0][0] if rows else None
        return None if value is None else float(value)

    def prune(self, before: float) -> int:
        """Delete runs finished before ``before``, keeping each check's latest."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM runs WHERE finished < ? AND id NOT IN "
                '(SELECT MAX(id) FROM runs GROUP BY target, "check")',
                (before,),
            )
            return int(cursor.rowcount)

    def count_runs(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM runs")[0][0])

    def targets(self) -> list[str]:
        return [str(r[0]) for r in self.query("SELECT DISTINCT target FROM runs")]

    def _runs(self, where: str, params: Sequence[Any]) -> list[RunRecord]:
        rows = self.query(f"SELECT {_RUN_COLUMNS} FROM runs {where}", params)  # noqa: S608
        return [
            RunRecord(
                id=int(r["id"]),
                target=str(r["target"]),
                check=str(r["check"]),
                started=float(r["started"]),
                finished=float(r["finished"]),
                status=str(r["status"]),
                result_json=str(r["result_json"]),
            )
            for r in rows
        ]

    def close(self) -> None:
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                log.warning("checkpoint of %s failed: %s", self.path, exc)
            self._db.close()
