"""``netwarden ask`` end to end: the embedded model through llama.cpp, real lab servers.

The embedded SmolLM2-135M fails the tool-call self-test, so these runs also cover
analysis-only mode: netwarden runs the passive checks the question names and the
model explains them. The approval paths with a model that does call tools are tested
with the scripted runtime against the CLI's own approver.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import Listener

from agent.cli.askcmd import _approver, scope_warnings
from agent.loop import Assistant
from agent.settings import AgentSettings
from agent.testing import ScriptedRuntime, answer, call
from tools import runner
from tools.lab import Lab
from tools.scope import Scope

NETWARDEN = str(Path(sys.executable).with_name("netwarden"))


def ask(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NETWARDEN_")}
    base["XDG_CONFIG_HOME"] = "/nonexistent-netwarden-test"
    return subprocess.run(
        [NETWARDEN, "ask", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=base | (env or {}),
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_embedded_model_answers_about_a_local_server(lab: Lab) -> None:
    port = lab.endpoints["pq-tls"].port
    proc = ask(f"Is 127.0.0.1:{port} quantum safe?", "--yes", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    document: dict[str, Any] = json.loads(proc.stdout)
    assert document["answer"].strip()
    assert "SmolLM2" in document["model"] or "Smollm2" in document["model"]
    calls = [(t["name"], t["args"]["target"], t["status"]) for t in document["trace"]]
    assert ("pq_check", f"127.0.0.1:{port}", "ok") in calls
    verdicts = [r["verdict"]["key_exchange"] for r in document["results"]]
    assert "quantum-safe" in verdicts


def test_human_output_shows_trace_answer_and_measurements(lab: Lab) -> None:
    port = lab.endpoints["classical-tls"].port
    proc = ask(f"Is 127.0.0.1:{port} quantum safe?", "--yes")
    assert proc.returncode == 0, proc.stderr
    assert "→ pq_check" in proc.stderr
    assert "Measured by netwarden" in proc.stdout
    assert "key exchange vulnerable" in proc.stdout


def test_out_of_scope_question_sends_nothing_and_says_why(bystander: Listener) -> None:
    listener = bystander
    proc = ask(
        f"scan 127.0.0.2:{listener.port} please",
        "--yes",
        env={"NETWARDEN_SCOPE": "127.0.0.1/32"},
    )
    assert proc.returncode == 0, proc.stderr
    assert listener.connections == 0
    assert "127.0.0.2 is out of scope" in proc.stderr
    assert "will not send it anything" in proc.stderr


def test_public_address_is_refused_up_front() -> None:
    proc = ask("scan 8.8.8.8", "--yes")
    assert proc.returncode == 0, proc.stderr
    assert "8.8.8.8 is out of scope" in proc.stderr


def test_a_scan_without_approval_and_without_a_terminal_is_refused(lab: Lab) -> None:
    port = lab.endpoints["ssh-openssh"].port
    runtime = ScriptedRuntime(
        [
            call("nmap_scan", target="127.0.0.1", profile="quick", ports=str(port)),
            answer("The scan was not approved."),
        ]
    )
    approver = _approver(yes=False, approved=())  # stdin is not a terminal here
    assistant = Assistant(runtime, runner.Options(), AgentSettings(), approver)
    result = assistant.ask("run a quick scan of 127.0.0.1")
    assert [(t.name, t.status) for t in result.trace] == [("nmap_scan", "rejected")]
    assert not result.results
    told = runtime.seen[-1].messages[-1].content
    assert "--yes" in told
    assert "--approve nmap_scan" in told


def test_approve_flag_lets_only_the_named_tool_run(lab: Lab) -> None:
    port = lab.endpoints["ssh-openssh"].port
    runtime = ScriptedRuntime(
        [
            call("nmap_scan", target="127.0.0.1", profile="quick", ports=str(port)),
            answer("done"),
        ]
    )
    approver = _approver(yes=False, approved=("nmap_scan",))
    result = Assistant(runtime, runner.Options(), AgentSettings(), approver).ask("scan")
    assert [(t.name, t.status) for t in result.trace] == [("nmap_scan", "ok")]


def test_embedded_model_never_scans_without_approval(lab: Lab) -> None:
    proc = ask("run a quick scan of 127.0.0.1")
    assert proc.returncode == 0, proc.stderr
    assert "nmap_scan: ok" not in proc.stderr
    assert "cannot start scans" in proc.stderr or "needs approval" in proc.stderr


def test_scope_warnings_check_addresses_without_resolving_names() -> None:
    scope = Scope.default()
    warnings = scope_warnings(
        "compare 127.0.0.1:443, [::1]:22, 10.0.0.0/8, 8.8.8.8 and example.com", scope
    )
    assert len(warnings) == 2
    assert "10.0.0.0/8" in warnings[0]
    assert "8.8.8.8" in warnings[1]
