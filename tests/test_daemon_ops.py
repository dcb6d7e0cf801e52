"""The daemon's operations side: Prometheus metrics, the HTTP endpoint, deploy files."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml  # type: ignore[import-untyped]

from agent.daemon.http import serve_http
from agent.daemon.metrics import Metrics, escape_label
from tools import runner
from tools.lab import Lab
from tools.models import (
    CertificateInfo,
    PqResult,
    Status,
    TlsResult,
    Verdict,
)

SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r'(?:\{(?P<labels>(?:[a-zA-Z_]\w*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})?'
    r" (?P<value>\S+)$"
)
LABEL = re.compile(r'([a-zA-Z_]\w*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse_exposition(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], str]:
    """Parse text exposition 0.0.4 strictly; every line must be valid."""
    assert text.endswith("\n")
    samples: dict[tuple[str, frozenset[tuple[str, str]]], str] = {}
    for line in text.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            continue
        match = SAMPLE.match(line)
        assert match, f"invalid sample line: {line!r}"
        labels = frozenset(
            (k, _unescape(v)) for k, v in LABEL.findall(match["labels"] or "")
        )
        samples[(match["name"], labels)] = match["value"]
    return samples


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m[1], m[1]), value)


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], str],
    name: str,
    **labels: str,
) -> float:
    return float(samples[(name, frozenset(labels.items()))])


def _cert(days_left: int) -> CertificateInfo:
    return CertificateInfo(
        subject="CN=localhost",
        issuer="CN=lab",
        serial="01",
        not_before="2026-01-01T00:00:00Z",
        not_after="2027-01-01T00:00:00Z",
        days_left=days_left,
        key_type="EC",
        signature_algorithm="ecdsa-with-SHA256",
        signature_oid="1.2.840.10045.4.3.2",
        sha256_fingerprint="00",
    )


def _verdict(kex: str, overall: str) -> Verdict:
    return Verdict.model_validate(
        {
            "key_exchange": kex,
            "authentication": "vulnerable",
            "symmetric": "quantum-safe",
            "overall": overall,
        }
    )


# --- metrics text


def test_metrics_render_families_and_values() -> None:
    metrics = Metrics(clock=lambda: 1_700_000_000.5)
    tls = TlsResult(target="a:443", certificate=_cert(12))
    metrics.observe_run("a:443", "tls", tls, 0.3)
    pq = PqResult(target="a:443", verdict=_verdict("quantum-safe", "partial"))
    metrics.observe_run("a:443", "pq", pq, 1.7)
    down = TlsResult(target="b:443", status=Status.TIMEOUT, error="timed out")
    metrics.observe_run("b:443", "tls", down, 5.0)
    metrics.alert_delivery("webhook:ops", ok=True)
    metrics.alert_delivery("webhook:ops", ok=False)
    metrics.alert_delivery("webhook:ops", ok=False)

    text = metrics.render()
    samples = parse_exposition(text)

    assert "# TYPE netwarden_check_duration_seconds histogram" in text
    assert "# TYPE netwarden_check_results_total counter" in text
    assert _value(samples, "netwarden_cert_days_to_expiry", target="a:443") == 12
    assert ("netwarden_cert_days_to_expiry", frozenset({("target", "b:443")})) not in (
        samples
    )
    verdict = "netwarden_pq_verdict"
    assert _value(samples, verdict, target="a:443", axis="key_exchange") == 3
    assert _value(samples, verdict, target="a:443", axis="overall") == 2
    assert _value(samples, verdict, target="a:443", axis="authentication") == 1
    results = "netwarden_check_results_total"
    assert _value(samples, results, check="tls", status="ok") == 1
    assert _value(samples, results, check="tls", status="timeout") == 1
    deliveries = "netwarden_alert_deliveries_total"
    assert _value(samples, deliveries, channel="webhook:ops", result="ok") == 1
    assert _value(samples, deliveries, channel="webhook:ops", result="failed") == 2
    last = "netwarden_last_run_timestamp_seconds"
    assert _value(samples, last, target="b:443", check="tls") == 1_700_000_000.5


def test_metrics_histogram_is_cumulative() -> None:
    metrics = Metrics()
    for seconds in (0.01, 0.3, 0.3, 7.0, 120.0):
        metrics.observe_run("t", "pq", PqResult(target="t"), seconds)
    samples = parse_exposition(metrics.render())
    name = "netwarden_check_duration_seconds"
    assert _value(samples, f"{name}_bucket", check="pq", le="0.05") == 1
    assert _value(samples, f"{name}_bucket", check="pq", le="0.5") == 3
    assert _value(samples, f"{name}_bucket", check="pq", le="10") == 4
    assert _value(samples, f"{name}_bucket", check="pq", le="60") == 4
    assert _value(samples, f"{name}_bucket", check="pq", le="+Inf") == 5
    assert _value(samples, f"{name}_count", check="pq") == 5
    assert _value(samples, f"{name}_sum", check="pq") == pytest.approx(127.61)


def test_metrics_escape_hostile_label_values() -> None:
    hostile = 'evil"} 1\nnetwarden_fake 99 \\'
    assert escape_label(hostile) == 'evil\\"} 1\\nnetwarden_fake 99 \\\\'
    metrics = Metrics()
    metrics.observe_run(
        hostile, "tls", TlsResult(target=hostile, certificate=_cert(3)), 1
    )
    metrics.alert_delivery(hostile, ok=True)
    samples = parse_exposition(metrics.render())
    assert _value(samples, "netwarden_cert_days_to_expiry", target=hostile) == 3
    assert not any(name == "netwarden_fake" for name, _ in samples)


def test_metrics_forget_target_drops_its_series() -> None:
    metrics = Metrics()
    metrics.observe_run(
        "gone", "tls", TlsResult(target="gone", certificate=_cert(9)), 1
    )
    metrics.forget_target("gone")
    text = metrics.render()
    assert 'target="gone"' not in text
    assert 'netwarden_check_results_total{check="tls",status="ok"} 1' in text


def test_metrics_thread_safe_counts() -> None:
    metrics = Metrics()

    def work() -> None:
        for _ in range(500):
            metrics.observe_run("t", "tls", TlsResult(target="t"), 0.1)
            metrics.alert_delivery("c", ok=True)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    samples = parse_exposition(metrics.render())
    assert _value(
        samples, "netwarden_check_results_total", check="tls", status="ok"
    ) == (4000)
    assert _value(
        samples, "netwarden_alert_deliveries_total", channel="c", result="ok"
    ) == (4000)


# --- the HTTP endpoint, over real connections


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[Metrics, str]]:
    metrics = Metrics()
    server = await serve_http(metrics, "127.0.0.1", 0, lambda: {"targets": 2})
    port = server.sockets[0].getsockname()[1]
    yield metrics, f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


async def test_http_healthz_and_metrics(endpoint: tuple[Metrics, str]) -> None:
    metrics, base = endpoint
    metrics.alert_delivery("email:ops", ok=True)
    async with httpx.AsyncClient(base_url=base) as client:
        health = await client.get("/healthz")
        scraped = await client.get("/metrics")
        missing = await client.get("/nope")
        posted = await client.post("/metrics")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "targets": 2}
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_exposition(scraped.text)
    assert (
        _value(
            samples,
            "netwarden_alert_deliveries_total",
            channel="email:ops",
            result="ok",
        )
        == 1
    )
    assert missing.status_code == 404
    assert posted.status_code == 405


async def _raw(base: str, payload: bytes, *, close_write: bool = True) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(payload)
    await writer.drain()
    if close_write:
        writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00\xff\xfe garbage\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /metrics\r\n\r\n",
        b"GET metrics HTTP/1.1\r\n\r\n",
        b"GET /metrics SPDY/3\r\n\r\n",
        b"GET /m\xe9trics HTTP/1.1\r\n\r\n",
        b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n",
    ],
)
async def test_http_malformed_requests(
    endpoint: tuple[Metrics, str], payload: bytes
) -> None:
    _, base = endpoint
    answer = await _raw(base, payload)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400 ")
    # the server still answers a proper request afterwards
    good = await _raw(base, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert good.startswith(b"HTTP/1.1 200 OK\r\n")
    assert json.loads(good.split(b"\r\n\r\n", 1)[1])["status"] == "ok"


async def test_http_slow_client_gets_408(
    endpoint: tuple[Metrics, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that never finishes its request head holds no connection for long."""
    monkeypatch.setattr("agent.daemon.http.READ_TIMEOUT", 0.3)
    _, base = endpoint
    answer = await _raw(base, b"GET /metrics HTTP/1.1\r\nHost:", close_write=False)
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_http_health_callback_failure_is_500() -> None:
    def broken() -> dict[str, object]:
        raise RuntimeError("store is closed")

    server = await serve_http(Metrics(), "127.0.0.1", 0, broken)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        server.close()
        await server.wait_closed()
    assert answer.status_code == 500
    assert answer.json() == {"status": "error", "error": "store is closed"}


async def test_metrics_from_real_lab_runs(lab: Lab) -> None:
    """Must-show 2: /metrics carries the verdict and days to expiry per endpoint."""
    options = runner.Options(ca_file=lab.ca_file, timeout=5.0)
    metrics = Metrics()
    for name in ("pq-tls", "classical-tls", "expired"):
        endpoint = lab.endpoints[name]
        target = f"localhost:{endpoint.port}"
        for check, run in (("tls", runner.run_tls), ("pq", runner.run_pq)):
            result = await run(target, options)
            metrics.observe_run(target, check, result, result.duration_ms / 1000)
    server = await serve_http(metrics, "127.0.0.1", 0, dict)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient() as client:
            scraped = await client.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        server.close()
        await server.wait_closed()
    samples = parse_exposition(scraped.text)
    pq_target = f"localhost:{lab.endpoints['pq-tls'].port}"
    classical = f"localhost:{lab.endpoints['classical-tls'].port}"
    expired = f"localhost:{lab.endpoints['expired'].port}"
    verdict = "netwarden_pq_verdict"
    assert _value(samples, verdict, target=pq_target, axis="key_exchange") == 3
    assert _value(samples, verdict, target=classical, axis="key_exchange") == 1
    assert _value(samples, "netwarden_cert_days_to_expiry", target=pq_target) > 0
    assert _value(samples, "netwarden_cert_days_to_expiry", target=expired) < 0
    assert (
        _value(samples, "netwarden_check_results_total", check="pq", status="ok") == 3
    )


# --- deploy files

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
REPO = DEPLOY.parent
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"


def _unit_keys() -> dict[str, list[str]]:
    """The ``[Service]`` section of the unit as key -> every value given."""
    keys: dict[str, list[str]] = {}
    section = ""
    for raw in (DEPLOY / "netwarden.service").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            keys.setdefault(key, []).append(value)
    return keys


@pytest.fixture(scope="module")
def unit_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway root holding the unit, the stock units and the ExecStart binary."""
    root = tmp_path_factory.mktemp("systemd-root")
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(DEPLOY / "netwarden.service", root / "etc/systemd/system")
    shutil.copytree(
        "/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True
    )
    binary = root / "usr/local/bin/netwarden"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    return root


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYSTEMD_ANALYZE, *args], capture_output=True, text=True, timeout=60
    )


def test_systemd_unit_verifies(unit_root: Path) -> None:
    done = _analyze("verify", "--man=no", f"--root={unit_root}", "netwarden.service")
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # unknown keys are only warned about


def test_systemd_verify_catches_a_bad_unit(unit_root: Path) -> None:
    """The check above can fail: a misspelt key and a missing binary are reported."""
    unit = unit_root / "etc/systemd/system/netwarden-broken.service"
    text = (DEPLOY / "netwarden.service").read_text()
    text = text.replace("ProtectHome=yes", "ProtectHome=yes\nProtectHomme=yes")
    unit.write_text(text.replace("/usr/local/bin/netwarden", "/usr/local/bin/nope"))
    done = _analyze("verify", "--man=no", f"--root={unit_root}", unit.name)
    unit.unlink()
    assert "Unknown key 'ProtectHomme'" in done.stderr
    assert done.returncode != 0


def test_systemd_unit_exposure_is_low(unit_root: Path) -> None:
    done = _analyze(
        "security", "--offline=yes", f"--root={unit_root}", "netwarden.service"
    )
    assert done.returncode == 0, done.stderr
    level = re.search(
        r"Overall exposure level for netwarden.service: ([\d.]+)", done.stdout
    )
    assert level, done.stdout[-500:]
    assert float(level[1]) <= 2.5


def test_systemd_unit_hardening_keys() -> None:
    keys = _unit_keys()
    expected = {
        "User": ["netwarden"],
        "DynamicUser": ["yes"],
        "ProtectSystem": ["strict"],
        "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"],
        "NoNewPrivileges": ["yes"],
        "CapabilityBoundingSet": ["CAP_NET_RAW"],
        "AmbientCapabilities": ["CAP_NET_RAW"],
        "StateDirectory": ["netwarden"],
        "ReadWritePaths": ["/var/lib/netwarden"],
        "Restart": ["on-failure"],
        "ExecStart": [
            "/usr/local/bin/netwarden daemon --config /etc/netwarden/daemon.toml"
        ],
    }
    for key, values in expected.items():
        assert keys.get(key) == values, key
    assert keys["SystemCallFilter"][0] == "@system-service"
    families = set(keys["RestrictAddressFamilies"][0].split())
    assert families <= {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"}
    assert keys["MemoryMax"][0].endswith(("M", "G"))


def _stages() -> list[tuple[str, list[tuple[str, str]]]]:
    """The Dockerfile as (FROM line, [(instruction, arguments)]) per stage."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    stages: list[tuple[str, list[tuple[str, str]]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append((rest, []))
        else:
            stages[-1][1].append((instruction.upper(), " ".join(rest.split())))
    return stages


def test_dockerfile_stages() -> None:
    (build_from, build), (runtime_from, runtime) = _stages()
    assert build_from == "python:3.11-slim AS build"
    assert runtime_from.startswith("python:3.11-slim")
    build_runs = " ".join(args for ins, args in build if ins == "RUN")
    assert "pip wheel --wheel-dir /wheels" in build_runs
    assert "llama-cpp-python==0.3.36" in build_runs
    assert "build-essential cmake" in build_runs
    for ins, args in build:  # every COPY source exists in the build context
        if ins == "COPY":
            for source in args.split()[:-1]:
                assert (REPO / source).exists(), source
    runtime_runs = " ".join(args for ins, args in runtime if ins == "RUN")
    assert "nmap" in runtime_runs
    assert "from=build,source=/wheels" in runtime_runs
    assert "--no-index --find-links /wheels netwarden" in runtime_runs


def test_dockerfile_runtime_user_and_healthcheck() -> None:
    _, runtime = _stages()[1]
    users = [args for ins, args in runtime if ins == "USER"]
    assert users == ["netwarden"]
    assert "useradd --system --uid 10001" in " ".join(
        a for i, a in runtime if i == "RUN"
    )
    (check,) = [args for ins, args in runtime if ins == "HEALTHCHECK"]
    assert "http://127.0.0.1:9464/healthz" in check
    entry = dict(runtime)
    assert json.loads(entry["ENTRYPOINT"]) == ["netwarden"]
    assert json.loads(entry["CMD"]) == [
        "daemon",
        "--config",
        "/etc/netwarden/daemon.toml",
    ]
    assert "9464" in entry["EXPOSE"]


def test_compose_file() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    service = compose["services"]["netwarden"]
    build = service["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == (
        DEPLOY / "Dockerfile"
    )
    volumes = service["volumes"]
    assert "netwarden-state:/var/lib/netwarden" in volumes
    assert "netwarden-state" in compose["volumes"]
    assert any(v.endswith(":/etc/netwarden/daemon.toml:ro") for v in volumes)
    assert service["ports"] == ["127.0.0.1:9464:9464"]
    assert service["cap_drop"] == ["ALL"]
    assert service["read_only"] is True
    assert "# To give the daemon a local model" in (DEPLOY / "compose.yaml").read_text()


def test_deploy_readme_documents_the_commands() -> None:
    readme = (DEPLOY / "README.md").read_text()
    for command in (
        "docker build -f deploy/Dockerfile",
        "docker compose up",
        "systemctl enable --now netwarden",
        "systemd-analyze verify",
        "netwarden daemon --check-config",
    ):
        assert command in readme, command
