"""The daemon's promise end to end: a real `netwarden daemon` process, a real lab
server whose groups change between runs, and a real webhook receiver.

Reconfiguring the post-quantum server to classical groups must produce exactly one
post-quantum regression alert; restoring it, exactly one resolved alert.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tools.lab import Lab

NETWARDEN = str(Path(sys.executable).with_name("netwarden"))


class Hook:
    """A webhook receiver on 127.0.0.1 that keeps every JSON body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()
    yield receiver
    receiver.close()


@pytest.fixture
def pq_server() -> Iterator[Lab]:
    with Lab(["pq-tls"]) as lab:
        yield lab


def write_config(tmp_path: Path, lab: Lab, hook: Hook) -> Path:
    port = lab.endpoints["pq-tls"].port
    config = tmp_path / "daemon.toml"
    config.write_text(
        f"""
[daemon]
db = "{tmp_path / "history.db"}"
http = false

[[alerts.webhooks]]
url = "{hook.url}"
min_severity = "medium"

[[targets]]
name = "pq-tls"
host = "127.0.0.1"
port = {port}
checks = ["pq"]
interval = 1
"""
    )
    return config


def daemon_env(config: Path) -> dict[str, str]:
    """This environment without NETWARDEN_* settings or the user's config file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETWARDEN_")}
    env["XDG_CONFIG_HOME"] = str(config.parent / "xdg")
    return env


def cycle(config: Path) -> None:
    env = daemon_env(config)
    proc = subprocess.run(
        [NETWARDEN, "daemon", "--once", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def test_regression_then_recovery_gives_one_alert_each(
    tmp_path: Path, pq_server: Lab, hook: Hook
) -> None:
    config = write_config(tmp_path, pq_server, hook)
    cycle(config)
    assert hook.bodies == []

    pq_server.set_groups("pq-tls", "X25519:secp256r1")
    cycle(config)
    assert [b["kind"] for b in hook.bodies] == ["pq-regression"]
    regression = hook.bodies[0]
    assert regression["resolved"] is False
    assert "X25519MLKEM768" in regression["detail"]
    assert "Groups = X25519MLKEM768" in regression["triage"]

    cycle(config)  # same state: no repeat
    assert len(hook.bodies) == 1

    pq_server.set_groups("pq-tls", "DEFAULT")
    cycle(config)
    assert len(hook.bodies) == 2
    assert hook.bodies[1]["resolved"] is True
    assert hook.bodies[1]["key"] == regression["key"]


def test_metrics_show_each_endpoint_right_after_a_restart(
    tmp_path: Path, lab: Lab
) -> None:
    import socket
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        http_port = sock.getsockname()[1]
    pq, expired = lab.endpoints["pq-tls"].port, lab.endpoints["expired"].port
    config = tmp_path / "daemon.toml"
    config.write_text(
        f"""
[daemon]
db = "{tmp_path / "history.db"}"
http_port = {http_port}

[[targets]]
name = "pq"
host = "127.0.0.1"
port = {pq}
checks = ["pq"]
interval = 3600

[[targets]]
name = "expired"
host = "127.0.0.1"
port = {expired}
checks = ["tls"]
interval = 3600
"""
    )
    cycle(config)  # one recorded run each; the next is an hour away
    env = daemon_env(config)
    daemon = subprocess.Popen(
        [NETWARDEN, "daemon", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        text = ""
        for _ in range(100):
            try:
                url = f"http://127.0.0.1:{http_port}/metrics"
                with urllib.request.urlopen(url, timeout=2) as response:
                    text = response.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert 'netwarden_pq_verdict{target="pq",axis="key_exchange"} 3' in text
        assert 'netwarden_cert_days_to_expiry{target="expired"} -' in text
    finally:
        daemon.terminate()
        _, stderr = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, stderr
