"""The ``netwarden`` command end to end: real process, real lab servers, real nmap.

Every JSON document a command prints is validated against the shipped schema.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import Listener

from tools.lab import Lab
from tools.report import generated_schema, schema_text, shipped_schema

NETWARDEN = str(Path(sys.executable).with_name("netwarden"))
SCHEMA = json.loads(shipped_schema())


def run(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    config: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NETWARDEN_")}
    base["XDG_CONFIG_HOME"] = "/nonexistent-netwarden-test"
    prefix = [NETWARDEN] + (["--config", str(config)] if config else [])
    return subprocess.run(
        [*prefix, *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=base | (env or {}),
        input=stdin,
        check=False,
    )


def run_json(*args: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    proc = run(*args, "--json", **kwargs)
    assert "Traceback" not in proc.stderr, proc.stderr
    document = json.loads(proc.stdout)
    jsonschema.validate(document, SCHEMA)
    return proc.returncode, document


def address(lab: Lab, name: str) -> str:
    return f"127.0.0.1:{lab.endpoints[name].port}"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- must show 2: post-quantum posture


def test_pq_json_across_the_lab(lab: Lab) -> None:
    targets = ["pq-tls", "classical-tls", "tls12-only"]
    dead = f"127.0.0.1:{closed_port()}"
    code, document = run_json("pq", *(address(lab, t) for t in targets), dead)
    assert code == 0
    assert document["schema_version"] == "1.0"
    pq, classical, tls12, closed = document["results"]

    assert pq["status"] == "ok"
    assert {"X25519MLKEM768", "SecP256r1MLKEM768"} <= set(pq["tls"]["supported_groups"])
    assert pq["verdict"]["key_exchange"] == "quantum-safe"

    assert classical["status"] == "ok"
    assert not classical["tls"]["pq_groups"]
    assert "x25519" in classical["tls"]["supported_groups"]
    assert classical["verdict"]["key_exchange"] == "vulnerable"
    assert "pq-kex-missing" in {f["id"] for f in classical["findings"]}

    assert tls12["verdict"]["key_exchange"] == "vulnerable"
    assert "TLS 1.2" in tls12["verdict"]["reasons"]["key_exchange"]

    assert closed["status"] == "refused"
    assert closed["error"]


def test_pq_reads_ssh_kexinit(lab: Lab) -> None:
    code, document = run_json(
        "pq", "--ssh", address(lab, "ssh-openssh"), address(lab, "ssh-asyncssh")
    )
    openssh, asyncssh = document["results"]
    assert code == 0
    assert any(k.startswith("sntrup761x25519") for k in openssh["ssh"]["pq_kex"])
    assert openssh["verdict"]["key_exchange"] == "quantum-safe"
    assert "mlkem768x25519-sha256" in asyncssh["ssh"]["pq_kex"]


def test_pq_recognises_ssh_without_being_told(lab: Lab) -> None:
    _, document = run_json("pq", address(lab, "ssh-openssh"))
    assert document["results"][0]["protocol"] == "ssh"


def test_human_pq_output_shows_the_matrix_and_verdict(lab: Lab) -> None:
    proc = run("pq", address(lab, "pq-tls"))
    assert proc.returncode == 0, proc.stderr
    for text in ("X25519MLKEM768", "supported", "quantum-safe", "key exchange"):
        assert text in proc.stdout


# --- must show 4: certificates


def test_tls_flags_bad_certificates_by_id(lab: Lab) -> None:
    names = ["expired", "wrong-host", "self-signed", "pq-tls"]
    code, document = run_json(
        "tls", "--ca-file", str(lab.ca_file), *(address(lab, n) for n in names)
    )
    ids = [{f["id"] for f in r["findings"]} for r in document["results"]]
    assert "cert-expired" in ids[0]
    assert document["results"][0]["certificate"]["days_left"] < 0
    assert "cert-hostname-mismatch" in ids[1]
    assert "cert-self-signed" in ids[2]
    assert not ids[3] & {"cert-expired", "cert-hostname-mismatch", "cert-untrusted"}
    good = document["results"][3]["certificate"]
    assert {
        "subject",
        "sans",
        "not_after",
        "days_left",
        "key_type",
        "signature_algorithm",
    } <= set(good)
    assert code == 0


def test_fail_on_sets_exit_code_and_sarif_lists_findings(
    lab: Lab, tmp_path: Path
) -> None:
    sarif = tmp_path / "out.sarif"
    proc = run(
        "tls",
        "--ca-file",
        str(lab.ca_file),
        "--fail-on",
        "high",
        "--sarif",
        str(sarif),
        address(lab, "expired"),
    )
    assert proc.returncode == 1, proc.stderr
    log = json.loads(sarif.read_text())
    assert log["version"] == "2.1.0"
    results = log["runs"][0]["results"]
    assert "cert-expired" in {r["ruleId"] for r in results}
    rules = {rule["id"] for rule in log["runs"][0]["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in results} <= rules
    assert (
        run(
            "tls",
            "--ca-file",
            str(lab.ca_file),
            "--fail-on",
            "critical",
            address(lab, "pq-tls"),
        ).returncode
        == 0
    )


def test_targets_from_stdin_and_a_file(lab: Lab, tmp_path: Path) -> None:
    listing = f"# lab\n{address(lab, 'pq-tls')}\n\n{address(lab, 'classical-tls')}\n"
    _, from_stdin = run_json("pq", "--input", "-", stdin=listing)
    path = tmp_path / "targets.txt"
    path.write_text(listing)
    _, from_file = run_json("pq", "--input", str(path))
    assert len(from_stdin["results"]) == len(from_file["results"]) == 2


# --- must show 5: nmap and scope


def test_scan_reports_open_ports_with_services(lab: Lab) -> None:
    ssh, tls, closed = (
        lab.endpoints["ssh-openssh"].port,
        lab.endpoints["pq-tls"].port,
        closed_port(),
    )
    code, document = run_json(
        "scan", "127.0.0.1", "--profile", "services", "--ports", f"{ssh},{tls},{closed}"
    )
    assert code == 0
    ports = {p["port"]: p for p in document["results"][0]["ports"]}
    assert ports[ssh]["state"] == "open"
    assert ports[ssh]["service"] == "ssh"
    assert ports[tls]["state"] == "open"
    assert closed not in ports or ports[closed]["state"] != "open"


def test_check_runs_tls_and_pq_on_every_service_it_finds(lab: Lab) -> None:
    tls, ssh = lab.endpoints["pq-tls"].port, lab.endpoints["ssh-openssh"].port
    code, document = run_json("check", "127.0.0.1", "--ports", f"{tls},{ssh}")
    report = document["results"][0]
    assert code == 0
    assert report["status"] == "ok"
    assert {p["port"] for p in report["scan"]["ports"]} == {tls, ssh}
    assert [r["port"] for r in report["tls"]] == [tls]
    by_port = {r["port"]: r for r in report["pq"]}
    assert by_port[tls]["verdict"]["key_exchange"] == "quantum-safe"
    assert by_port[ssh]["protocol"] == "ssh"


@pytest.mark.parametrize("command", ["pq", "tls", "scan", "check"])
def test_out_of_scope_is_refused_before_any_packet(
    command: str, bystander: Listener
) -> None:
    target = f"127.0.0.2:{bystander.port}" if command in {"pq", "tls"} else "127.0.0.2"
    extra = ["--ports", str(bystander.port)] if command in {"scan", "check"} else []
    proc = run(
        command, target, *extra, "--json", env={"NETWARDEN_SCOPE": "127.0.0.1/32"}
    )
    assert proc.returncode == 2, proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    assert result["status"] == "out-of-scope"
    assert "out of scope" in result["error"]
    assert bystander.connections == 0
    # the same target in scope does get a connection: the listener works
    if command == "pq":
        run(command, target, env={"NETWARDEN_SCOPE": "127.0.0.0/8"})
        assert bystander.connections > 0


def test_public_addresses_are_refused_by_default() -> None:
    proc = run("scan", "8.8.8.8")
    assert proc.returncode == 2
    assert "out of scope" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


# --- errors people make


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pq", "not a host"], "not a target"),
        (["pq"], "no targets"),
        (["scan", "127.0.0.1", "--ports", "22;id"], "port must be a number"),
        (["tls", "127.0.0.1:99999"], "port must be a number"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_bad_config_file_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[scope]\nallowed = ['127.0.0.1']\n")
    proc = run("pq", "127.0.0.1:1", config=config)
    assert proc.returncode == 2
    assert "unknown key 'scope.allowed'" in proc.stderr


def test_missing_nmap_names_how_to_install(tmp_path: Path) -> None:
    proc = run("scan", "127.0.0.1", env={"PATH": str(tmp_path)})
    assert proc.returncode == 2
    assert "apt-get install nmap" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_schema_command_prints_the_shipped_schema() -> None:
    proc = run("schema")
    assert json.loads(proc.stdout) == json.loads(shipped_schema())
    assert schema_text(generated_schema()) == shipped_schema(), (
        "tools/schema/report.schema.json is stale: regenerate it from tools.report"
    )


def test_scripted_checks_do_not_load_the_model_stack() -> None:
    code = (
        "import sys, agent.cli; "
        "print(sorted(m for m in ('llama_cpp', 'langchain', 'huggingface_hub', "
        "'textual') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == "[]"
