"""The daemon core: config errors, the store, change detection, the schedule, and
the real ``netwarden daemon`` process under SIGKILL and SIGTERM, all against real
lab servers on 127.0.0.1 and real SQLite files."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from conftest import Listener

from agent.daemon.changes import detect, expiry_level
from agent.daemon.changes_base import Change
from agent.daemon.config import KeyLocator, format_key, load_daemon_config
from agent.daemon.scheduler import Scheduler
from agent.daemon.store import MIGRATIONS, Store
from tools import runner
from tools.certs import Thresholds
from tools.errors import ConfigError
from tools.lab import Lab
from tools.models import PqResult, ScanResult, Status, TlsResult
from tools.scope import Scope

REPO = Path(__file__).resolve().parent.parent
NETWARDEN = [str(Path(sys.executable).with_name("netwarden"))]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_daemon_config(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- config


def test_unknown_key_names_key_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.toml",
        '[daemon]\ndb = "x.db"\n\n[[targets]]\nhost = "127.0.0.1"\nport = 443\n\n'
        '[[targets]]\nhost = "127.0.0.1"\n# the typo:\nprot = 22\n',
    )
    assert config_error(path) == f"{path}:11: unknown key 'targets[1].prot'"


def test_unknown_section_key(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[daemon]\nconcurrency = 2\nhttp_prot = 1\n")
    assert config_error(path) == f"{path}:3: unknown key 'daemon.http_prot'"


def test_wrong_type_names_key_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.toml",
        '[defaults]\ninterval = 60\n\n[[targets]]\nhost = "127.0.0.1"\n'
        'port = "https"\n',
    )
    message = config_error(path)
    assert message.startswith(f"{path}:6: 'targets[0].port': ")
    assert "integer" in message


def test_bad_value_in_a_list(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.toml",
        '[[targets]]\nhost = "127.0.0.1"\nchecks = ["tls", "ping"]\n',
    )
    message = config_error(path)
    assert message.startswith(f"{path}:3: 'targets[0].checks[1]': ")


def test_out_of_scope_target(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.toml",
        '[scope]\nallow = ["127.0.0.0/8"]\n\n[[targets]]\nhost = "127.0.0.1"\n\n'
        '[[targets]]\nname = "dns"\nhost = "8.8.8.8"\nport = 53\n',
    )
    message = config_error(path)
    assert message.startswith(
        f"{path}:9: target 'targets[1].host' = 8.8.8.8 is out of scope: "
    )


def test_denied_target_is_out_of_scope(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.toml",
        '[scope]\ndeny = ["127.0.0.9"]\n[[targets]]\nhost = "127.0.0.9"\n',
    )
    assert ":4: target 'targets[0].host' = 127.0.0.9 is out of scope" in (
        config_error(path)
    )


def test_bad_toml_names_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[daemon]\nconcurrency = 4\ndb = \n")
    message = config_error(path)
    assert message.startswith(f"{path}:3: not valid TOML (key 'daemon.db'): ")


def test_missing_required_key(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.toml", "[defaults]\njitter = 0.1\n[[targets]]\nport = 1\n"
    )
    assert config_error(path) == f"{path}:3: missing key 'targets[0].host'"


def test_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "c.toml", '[daemon]\ndb = "file.db"\nhttp_port = 1\n')
    monkeypatch.setenv("NETWARDEN_DAEMON_DB", str(tmp_path / "env.db"))
    monkeypatch.setenv("NETWARDEN_DAEMON_HTTP_PORT", "9999")
    config = load_daemon_config(path)
    assert config.daemon.db == tmp_path / "env.db"
    assert config.daemon.http_port == 9999
    monkeypatch.setenv("NETWARDEN_DAEMON_HTTP_PORT", "many")
    message = config_error(path)
    assert "environment NETWARDEN_DAEMON_HTTP_PORT" in message
    assert "'daemon.http_port'" in message


def test_locator_handles_tables_and_arrays() -> None:
    text = (
        '[scope]\nallow = [\n  "127.0.0.0/8",\n]\n[[targets]]\nhost = "a"\n'
        '[[alerts.webhooks]]\nurl = "u"\n[[targets]]\n"port" = 1\n'
    )
    locator = KeyLocator(text)
    assert locator.line_of(("scope", "allow", 0)) == 2
    assert locator.line_of(("targets", 1, "port")) == 10
    assert locator.line_of(("targets", 1, "name")) == 9
    assert locator.line_of(("alerts", "webhooks", 0, "url")) == 8
    assert format_key(("targets", 2, "ports", 0)) == "targets[2].ports[0]"


def run_cli(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NETWARDEN, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_check_config_exit_codes(tmp_path: Path) -> None:
    good = run_cli(
        "daemon", "--check-config", "--config", str(REPO / "deploy/daemon.example.toml")
    )
    assert good.returncode == 0, good.stderr
    assert "ok (4 targets" in good.stdout
    bad = write(tmp_path / "config.toml", '[[targets]]\nhost = "127.0.0.1"\nprot = 1\n')
    failed = run_cli("daemon", "--check-config", "--config", str(bad))
    assert failed.returncode == 2
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{bad}:3: unknown key 'targets[0].prot'" in lines[0]
    scoped = write(tmp_path / "s.toml", '[[targets]]\nhost = "10.1.2.3"\n')
    refused = run_cli("daemon", "--check-config", "--config", str(scoped))
    assert refused.returncode == 2
    assert "'targets[0].host' = 10.1.2.3 is out of scope" in refused.stderr
    missing = run_cli("daemon", "--check-config", "--config", str(tmp_path / "no.toml"))
    assert missing.returncode == 2
    assert "no such config file" in missing.stderr


# --- change detection on real results


@pytest.fixture(scope="module")
def own_lab() -> Iterator[Lab]:
    """A pq-tls endpoint of this module's own, so its groups may change."""
    with Lab(["pq-tls"]) as running:
        assert "pq-tls" in running.endpoints, running.skipped
        yield running


def lab_options(lab: Lab) -> runner.Options:
    return runner.Options(scope=Scope.default(), timeout=2.0, ca_file=lab.ca_file)


async def test_pq_regression_and_recovery(own_lab: Lab) -> None:
    endpoint = own_lab.endpoints["pq-tls"]
    raw = f"{endpoint.host}:{endpoint.port}"
    options = lab_options(own_lab)
    before = await runner.run_pq(raw, options)
    assert "X25519MLKEM768" in before.tls.pq_groups  # type: ignore[union-attr]
    own_lab.set_groups("pq-tls", "X25519:secp256r1")
    try:
        after = await runner.run_pq(raw, options)
    finally:
        own_lab.set_groups("pq-tls", "X25519MLKEM768:X25519:secp256r1")
    restored = await runner.run_pq(raw, options)

    regression = detect(before, after, target="web", run_id=7)
    assert [c.kind for c in regression] == ["pq-regression"]
    change = regression[0]
    assert (change.target, change.check, change.key) == ("web", "pq", "pq:tls")
    assert change.run_id == 7
    assert not change.resolved
    assert "no longer offered: X25519MLKEM768" in change.detail
    assert "key exchange" in change.detail  # the verdict axis got worse too
    assert "X25519MLKEM768" in change.extra["lost"]

    recovery = detect(after, restored, target="web")
    assert [(c.kind, c.key, c.resolved) for c in recovery] == [
        ("pq-improved", "pq:tls", True)
    ]
    assert "now offered: X25519MLKEM768" in recovery[0].detail
    assert detect(restored, await runner.run_pq(raw, options)) == []


async def test_findings_and_expiry_between_real_runs(lab: Lab) -> None:
    options = lab_options(lab)
    good_ep, expired_ep = lab.endpoints["classical-tls"], lab.endpoints["expired"]
    good = await runner.run_tls(f"{good_ep.host}:{good_ep.port}", options)
    expired = await runner.run_tls(f"{expired_ep.host}:{expired_ep.port}", options)
    worse = detect(good, expired, Thresholds(), target="site")
    kinds = {(c.kind, c.key) for c in worse}
    assert ("finding-opened", "finding:cert-expired") in kinds
    threshold = [c for c in worse if c.kind == "cert-threshold"]
    assert len(threshold) == 1
    assert threshold[0].severity == "critical"
    assert threshold[0].key == "cert:expiry"
    assert not threshold[0].resolved
    better = detect(expired, good, Thresholds(), target="site")
    resolved = {(c.kind, c.key) for c in better if c.resolved}
    assert ("finding-resolved", "finding:cert-expired") in resolved
    assert ("cert-threshold", "cert:expiry") in resolved
    first = detect(None, expired, target="site")
    assert {c.key for c in first} == {f"finding:{f.id}" for f in expired.findings}


def test_expiry_levels() -> None:
    limits = Thresholds(warning=30, high=14, critical=7)
    levels = [expiry_level(d, limits) for d in (90, 30, 20, 14, 7, 0, -1)]
    assert levels == [0, 1, 1, 2, 3, 3, 4]


async def test_unreachable_and_back(lab: Lab) -> None:
    options = lab_options(lab)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens here now
    down = await runner.run_tls(f"127.0.0.1:{port}", options)
    assert down.status is Status.REFUSED
    ep = lab.endpoints["classical-tls"]
    up = await runner.run_tls(f"{ep.host}:{ep.port}", options)
    went = detect(up, down, target="t")
    assert [(c.kind, c.key, c.resolved) for c in went] == [
        ("unreachable", "status", False)
    ]
    assert "refused" in went[0].title
    assert detect(down, down) == []
    came = detect(down, up, target="t", last_ok=up)
    assert [(c.kind, c.resolved) for c in came] == [("reachable", True)]
    # content is compared with the last good run, not the failed one
    assert detect(None, down)[0].kind == "unreachable"


async def test_new_and_closed_ports_with_nmap() -> None:
    first, second = Listener("127.0.0.1", hold=True), Listener("127.0.0.1", hold=True)
    ports = [first.port, second.port]
    options = runner.Options(scope=Scope.default(), timeout=2.0)
    try:
        both = await runner.run_scan("127.0.0.1", options, "quick", ports)
        second.close()
        one = await runner.run_scan("127.0.0.1", options, "quick", ports)
    finally:
        first.close()
        second.close()
    assert both.status is Status.OK
    assert one.status is Status.OK
    closed = detect(both, one, target="h")
    assert [(c.kind, c.resolved) for c in closed] == [("port-closed", True)]
    assert closed[0].extra["port"] == f"127.0.0.1:{second.port}/tcp"
    opened = detect(one, both, target="h")
    assert [(c.kind, c.key) for c in opened] == [
        ("port-opened", f"port:127.0.0.1:{second.port}/tcp")
    ]
    assert isinstance(one, ScanResult)


# --- store


def test_store_migrates_once_and_keeps_runs(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    store = Store(path)
    assert store.schema_version() == len(MIGRATIONS)
    first = store.record_run("web", "tls", 100.0, TlsResult(target="a"), 110.0)
    store.record_run("web", "pq", 101.0, PqResult(target="a", status=Status.TIMEOUT))
    second = store.record_run("web", "tls", 200.0, TlsResult(target="a"), 210.0)
    store.close()
    again = Store(path)
    assert again.schema_version() == len(MIGRATIONS)
    versions = again.query("SELECT version FROM schema_version")
    assert [row[0] for row in versions] == list(range(1, len(MIGRATIONS) + 1))
    assert [r.id for r in again.last_runs("web", "tls", 5)] == [second, first]
    assert again.last_started("web", "tls") == 200.0
    assert again.last_started("web", "scan") is None
    assert [(r.check, r.status) for r in again.status()] == [
        ("pq", "timeout"),
        ("tls", "ok"),
    ]
    assert isinstance(again.history("web")[0].result(), TlsResult)
    assert again.last_ok("web", "tls", second) is not None
    outbox = again.execute(
        "INSERT INTO outbox (channel, payload, created, next_attempt) "
        "VALUES (?, ?, ?, ?)",
        ("hook", "{}", 1.0, 1.0),
    )
    assert again.query("SELECT attempts FROM outbox WHERE id = ?", (outbox,))[0][0] == 0
    assert again.prune(before=150.0) == 1, "the first tls run goes"
    assert again.prune(before=1e12) == 0, "each check's latest run stays"
    assert [r.id for r in again.last_runs("web", "tls", 5)] == [second]
    mode = again.query("PRAGMA journal_mode")[0][0]
    assert mode == "wal"
    again.close()


# --- scheduler


def lab_config(tmp_path: Path, lab: Lab, names: list[str], extra: str = "") -> Path:
    lines = [
        "[daemon]",
        f'db = "{tmp_path / "daemon.db"}"',
        "http_port = 0",
        "concurrency = 4",
        "[checks]",
        "timeout = 3.0",
        "[tls]",
        f'ca_file = "{lab.ca_file}"',
        "[defaults]",
        "interval = 1.0",
        "jitter = 0.0",
    ]
    for name in names:
        ep = lab.endpoints[name]
        checks = '["pq"]' if name.startswith("ssh") else '["tls", "pq"]'
        lines += [
            "[[targets]]",
            f'name = "{name}"',
            f'host = "{ep.host}"',
            f"port = {ep.port}",
            f"checks = {checks}",
        ]
    return write(tmp_path / "daemon.toml", "\n".join(lines) + "\n" + extra)


async def test_run_once_records_and_resumes(tmp_path: Path, lab: Lab) -> None:
    path = lab_config(tmp_path, lab, ["pq-tls", "ssh-asyncssh"])
    config = load_daemon_config(path)
    store = Store(config.daemon.db)
    scheduler = Scheduler(config, store)
    assert all(job.next_due <= time.time() for job in scheduler.jobs)
    ids = await scheduler.run_once()
    assert len(ids) == 3
    assert store.count_runs() == 3
    status = {(r.target, r.check): r.status for r in store.status()}
    assert status == {
        ("pq-tls", "tls"): "ok",
        ("pq-tls", "pq"): "ok",
        ("ssh-asyncssh", "pq"): "ok",
    }
    ssh = store.last_runs("ssh-asyncssh", "pq")[0].result()
    assert isinstance(ssh, PqResult)
    assert ssh.protocol == "ssh"
    resumed = Scheduler(config, store)
    for job in resumed.jobs:
        last = store.last_started(job.label, job.check)
        assert last is not None
        assert job.next_due == pytest.approx(max(time.time(), last + 1.0), abs=0.5)
    store.close()


async def test_dead_target_does_not_delay_others(tmp_path: Path, lab: Lab) -> None:
    holder = Listener("127.0.0.1", hold=True)
    extra = (
        "[[targets]]\n"
        'name = "silent"\n'
        'host = "127.0.0.1"\n'
        f"port = {holder.port}\n"
        'checks = ["tls"]\n'
    )
    path = lab_config(tmp_path, lab, ["classical-tls"], extra)
    config = load_daemon_config(path)
    config.daemon.concurrency = 2
    store = Store(config.daemon.db)
    scheduler = Scheduler(config, store)
    stop = asyncio.Event()
    loop = asyncio.create_task(scheduler.run_forever(stop))
    try:
        await asyncio.sleep(4.0)
        fast = len(store.last_runs("classical-tls", "tls", 100))
        slow = len(store.last_runs("silent", "tls", 100))
    finally:
        stop.set()
        await asyncio.wait_for(loop, timeout=30)
        holder.close()
    assert fast >= 3, "the fast target kept its schedule"
    assert slow == 0 or fast > slow
    assert len(store.last_runs("silent", "tls", 100)) >= 1, "drained at stop"
    last = store.last_runs("silent", "tls")[0]
    assert last.status == "timeout"
    store.close()


# --- the real daemon process


def db_ids(db: Path) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM runs ORDER BY id")]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            [*NETWARDEN, "daemon", "--config", str(config)],
            stdout=sink,
            stderr=sink,
        )


def count_runs(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        return len(db_ids(db))
    except sqlite3.OperationalError:
        return 0


def test_sigkill_loses_no_completed_run_and_resumes(tmp_path: Path, lab: Lab) -> None:
    names = ["pq-tls", "classical-tls", "expired", "ssh-asyncssh"]
    config = lab_config(tmp_path, lab, names)
    db, log = tmp_path / "daemon.db", tmp_path / "daemon.log"
    process = start_daemon(config, log)
    try:
        wait_for(lambda: count_runs(db) >= 12, 60, "runs before the kill")
        before = db_ids(db)  # read right before the kill, separate connection
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
    finally:
        process.kill()
    survived: set[int] = set()
    for name in names:
        shown = run_cli("history", name, "--json", "--limit", "1000", "--db", str(db))
        assert shown.returncode == 0, shown.stderr
        records = json.loads(shown.stdout)
        assert all(r["target"] == name for r in records)
        assert records
        assert all(r["check"] in {"tls", "pq"} for r in records)
        survived |= {r["id"] for r in records}
    assert set(before) <= survived, "every run recorded before kill -9 is kept"
    table = run_cli("history", "pq-tls", "--db", str(db))
    assert table.returncode == 0
    assert "History of pq-tls" in table.stdout

    restarted_at = time.time()
    again = start_daemon(config, log)
    try:
        wait_for(lambda: count_runs(db) >= len(survived) + 4, 60, "resumed runs")
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=60) == 0
    finally:
        again.kill()
    with sqlite3.connect(db) as conn:
        newer = conn.execute(
            "SELECT COUNT(*) FROM runs WHERE started >= ?", (restarted_at,)
        ).fetchone()[0]
    assert newer >= 4
    status = run_cli("status", "--json", "--db", str(db))
    latest = {(r["target"], r["check"]) for r in json.loads(status.stdout)}
    assert len(latest) == 7


def test_sigterm_finishes_in_flight_runs(tmp_path: Path, lab: Lab) -> None:
    holder = Listener("127.0.0.1", hold=True)
    extra = (
        "[[targets]]\n"
        'name = "silent"\n'
        'host = "127.0.0.1"\n'
        f"port = {holder.port}\n"
        'checks = ["tls"]\n'
    )
    config = lab_config(tmp_path, lab, ["classical-tls"], extra)
    text = config.read_text().replace("timeout = 3.0", "timeout = 4.0")
    config.write_text(text.replace("interval = 1.0", "interval = 60.0"))
    db, log = tmp_path / "daemon.db", tmp_path / "daemon.log"
    process = start_daemon(config, log)
    try:
        wait_for(lambda: count_runs(db) >= 2, 60, "the fast target's runs")
        with sqlite3.connect(db) as conn:
            silent = conn.execute(
                "SELECT COUNT(*) FROM runs WHERE target = 'silent'"
            ).fetchone()[0]
        assert silent == 0, "the silent target's run is still in flight"
        signalled = time.time()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
        holder.close()
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT status, finished FROM runs WHERE target = 'silent'"
        ).fetchall()
    assert len(rows) == 1, "the in-flight run finished and was recorded"
    assert rows[0][0] == "timeout"
    assert rows[0][1] >= signalled
    assert "finishing in-flight checks" in log.read_text()


class Collector:
    """Receives what the scheduler hands the alerting side, run by run."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[Change], list[str]]] = []

    async def handle(
        self,
        changes: list[Change],
        *,
        ran: Iterable[str] = (),
        check: str | None = None,
    ) -> None:
        self.batches.append((changes, list(ran)))


async def test_scheduler_reports_regression_between_runs(
    tmp_path: Path, own_lab: Lab
) -> None:
    path = lab_config(tmp_path, own_lab, ["pq-tls"])
    config = load_daemon_config(path)
    config.targets[0].checks = ["pq"]
    store = Store(config.daemon.db)
    collector = Collector()
    scheduler = Scheduler(config, store, collector)
    try:
        await scheduler.run_once()
        own_lab.set_groups("pq-tls", "X25519:secp256r1")
        try:
            [regressed] = await scheduler.run_once()
        finally:
            own_lab.set_groups("pq-tls", "X25519MLKEM768:X25519:secp256r1")
        [restored] = await scheduler.run_once()
    finally:
        store.close()
    first, second, third = collector.batches
    assert first[1] == ["pq-tls"]
    assert {c.kind for c in first[0]} <= {"finding-opened"}
    assert [(c.kind, c.run_id, c.target) for c in second[0]] == [
        ("pq-regression", regressed, "pq-tls")
    ]
    assert [(c.kind, c.run_id, c.resolved) for c in third[0]] == [
        ("pq-improved", restored, True)
    ]
