"""Smoke test: the real ``netwarden`` TUI in a real terminal (tmux), real llama.cpp.

The app runs with the embedded model against the lab's post-quantum TLS server.
The test types like a person (``send-keys``) and reads the screen
(``capture-pane``), polling with bounded waits.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.lab import Lab

NETWARDEN = Path(sys.executable).with_name("netwarden")
pytestmark = pytest.mark.slow


class Terminal:
    """One tmux server of our own, running one program in a 120x40 window."""

    def __init__(self, name: str) -> None:
        self.socket = f"{name}-{os.getpid()}"
        self.captures: list[str] = []

    def tmux(self, *args: str) -> str:
        proc = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return proc.stdout

    def start(self, command: str) -> None:
        self.tmux("new-session", "-d", "-s", "app", "-x", "120", "-y", "40", command)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "app", *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "app", "-l", text)

    def screen(self) -> str:
        text = self.tmux("capture-pane", "-p", "-t", "app")
        self.captures.append(text)
        return text

    def wait_for(self, *needles: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if all(needle in text for needle in needles):
                return text
            time.sleep(0.3)
        raise AssertionError(f"{needles} did not appear; the screen was:\n{text}")

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"],
            capture_output=True,
            timeout=10,
            check=False,
        )


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    assert shutil.which("tmux"), "tmux is needed: apt-get install tmux"
    term = Terminal("netwarden-test")
    try:
        yield term
    finally:
        term.kill()
    for capture in term.captures:
        assert "Traceback" not in capture, capture


def test_real_app_in_tmux(lab: Lab, terminal: Terminal, tmp_path: Path) -> None:
    port = lab.endpoints["pq-tls"].port
    config = tmp_path / "config.toml"
    config.write_text('[scope]\nallow = ["127.0.0.0/8"]\n')
    # COLUMNS/LINES from pytest would override the terminal's real size
    command = (
        f"env -u COLUMNS -u LINES {shlex.quote(str(NETWARDEN))} "
        f"--config {shlex.quote(str(config))}"
    )
    terminal.start(f"cd {shlex.quote(str(tmp_path))} && {command}")

    # the embedded model loads and shows in the header
    terminal.wait_for("Smollm2", "analysis-only", "scope: 127.0.0.0/8")

    # a direct post-quantum check renders the group matrix
    terminal.type(f"/pq 127.0.0.1:{port}")
    terminal.keys("Enter")
    screen = terminal.wait_for("X25519MLKEM768", "supported", "quantum-safe")
    assert "pq_check" in screen or "Post-quantum verdict" in screen

    # an active scan asks first
    terminal.type("/scan 127.0.0.1")
    terminal.keys("Enter")
    terminal.wait_for("Run nmap_scan?", "Approve", "Reject")
    terminal.keys("r")
    terminal.wait_for("rejected")

    # a question: the model's answer streams into the chat, growing as it comes
    terminal.type("In one sentence, what is a TLS certificate?")
    terminal.keys("Enter")
    seen: list[str] = []
    unchanged, deadline = 0, time.monotonic() + 90
    while time.monotonic() < deadline and unchanged < 10:
        answer = " ".join(_answer_lines(terminal.screen()))
        if answer and (not seen or answer != seen[-1]):
            seen.append(answer)
            unchanged = 0
        elif answer:
            unchanged += 1  # about 3 s without change: the answer is complete
        time.sleep(0.3)
    assert seen, terminal.screen()
    assert len(seen) >= 2, f"the answer appeared at once: {seen}"

    # /export writes a report naming the finding of the pq check
    terminal.type("/export report.md")
    terminal.keys("Enter")
    terminal.wait_for("wrote")
    assert "pq-auth-classical" in (tmp_path / "report.md").read_text()


def _answer_lines(screen: str) -> list[str]:
    """Lines below the question that are neither our input nor the frame."""
    lines = screen.splitlines()
    asked = max(
        (i for i, line in enumerate(lines) if "what is a TLS certificate?" in line),
        default=None,
    )
    if asked is None:
        return []
    below = [line.strip() for line in lines[asked + 1 :]]
    return [
        line
        for line in below
        if len(line) > 20 and not line.startswith(("╭", "╰", "│", "^q"))
    ]
