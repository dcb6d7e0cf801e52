"""The TUI's direct commands: parsing ``/name args``, completion, help, scope edits.

Direct commands need no model. The checks among them become a :class:`ToolRequest`
named like the agent's tools (``tls_check``, ``pq_check``, ``nmap_scan``,
``full_check``), so the app runs and renders them through the same events as the
agent's calls. Everything here is free of Textual.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.errors import UsageError
from tools.scope import Scope
from tools.targets import parse_ports

COMMANDS = {
    "/tls": "/tls TARGET: certificate chain, trust and protocol versions",
    "/pq": "/pq TARGET: post-quantum groups, preference and verdict",
    "/scan": "/scan TARGET [--ports P] [--profile quick|services|vuln]: Nmap",
    "/check": "/check TARGET [--ports P]: discovery, then TLS and pq per port",
    "/model": "/model [PATH]: show the model and its self-test, or switch",
    "/scope": "/scope [add ENTRY | remove ENTRY | save]: the allowlist",
    "/clear": "/clear: empty the chat, findings and memory",
    "/export": "/export [PATH]: write the session report (.md and .html)",
    "/help": "/help: this list",
}
ACTIVE = frozenset({"nmap_scan", "full_check"})
_TOOLS = {"/tls": "tls_check", "/pq": "pq_check", "/scan": "nmap_scan"}
_PROFILES = ("quick", "services", "vuln")


@dataclass(frozen=True)
class ToolRequest:
    """A check to run directly: the agent tool's name and arguments."""

    name: str
    args: dict[str, Any]

    @property
    def active(self) -> bool:
        return self.name in ACTIVE


@dataclass(frozen=True)
class Command:
    """A parsed ``/name`` line that is not a check."""

    name: str
    words: list[str] = field(default_factory=list)


def parse(line: str) -> ToolRequest | Command:
    """Parse one ``/`` line; UsageError with a one-line message for bad input."""
    try:
        words = shlex.split(line.strip())
    except ValueError as exc:
        raise UsageError(f"cannot read the command: {exc}") from None
    name, rest = words[0].lower(), words[1:]
    if name not in COMMANDS:
        raise UsageError(f"unknown command {name}; /help lists them")
    if name in _TOOLS or name == "/check":
        return _tool_request(name, rest)
    return Command(name, rest)


def _tool_request(name: str, words: list[str]) -> ToolRequest:
    options, targets = _options(words)
    if len(targets) != 1:
        raise UsageError(f"usage: {COMMANDS[name]}")
    args: dict[str, Any] = {"target": targets[0]}
    allowed = {"/scan": {"ports", "profile"}, "/check": {"ports"}}.get(name, set())
    for key, value in options.items():
        if key not in allowed:
            raise UsageError(f"{name} takes no --{key}; usage: {COMMANDS[name]}")
        args[key] = value
    if "ports" in args:
        parse_ports(args["ports"])
    if args.get("profile", "quick") not in _PROFILES:
        raise UsageError(f"--profile is one of {', '.join(_PROFILES)}")
    tool = _TOOLS.get(name, "full_check")
    return ToolRequest(tool, args)


def _options(words: list[str]) -> tuple[dict[str, str], list[str]]:
    options: dict[str, str] = {}
    targets: list[str] = []
    items = iter(words)
    for word in items:
        if not word.startswith("--"):
            targets.append(word)
            continue
        key, _, value = word[2:].partition("=")
        value = value or next(items, "")
        if not value:
            raise UsageError(f"--{key} needs a value")
        options[key] = value
    return options, targets


def complete(text: str) -> str | None:
    """The completion of a partly typed command, or None when there is none."""
    if not text.startswith("/") or " " in text:
        return None
    matches = [name for name in COMMANDS if name.startswith(text.lower())]
    if not matches:
        return None
    if len(matches) == 1:
        return matches[0] + " "
    prefix = _common_prefix(matches)
    return prefix if len(prefix) > len(text) else None


def _common_prefix(words: list[str]) -> str:
    first, last = min(words), max(words)
    size = next(
        (i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b),
        min(len(first), len(last)),
    )
    return first[:size]


def help_text() -> str:
    """/help as Markdown."""
    lines = [
        f"- `{usage.split(':')[0]}`: {usage.split(': ', 1)[1]}"
        for usage in COMMANDS.values()
    ]
    keys = "Enter sends, Ctrl+J adds a line, Up/Down recall history, Tab completes."
    return "\n".join(["**Direct commands** (no model needed)", "", *lines, "", keys])


# --- scope -------------------------------------------------------------------


def edit_scope(entries: list[str], action: str, entry: str) -> list[str]:
    """Scope entries after ``add`` or ``remove``; ConfigError for a bad entry."""
    if action == "add":
        Scope.from_entries([entry])
        return entries if entry in entries else [*entries, entry]
    if action == "remove":
        if entry not in entries:
            raise UsageError(f"{entry} is not in the scope: {', '.join(entries)}")
        return [e for e in entries if e != entry]
    raise UsageError(f"usage: {COMMANDS['/scope']}")


def save_scope(path: Path, data: dict[str, Any], entries: list[str]) -> None:
    """Write the settings in ``data`` with ``entries`` as the scope to ``path``."""
    allow = [e for e in entries if not e.startswith("!")]
    deny = [e.removeprefix("!") for e in entries if e.startswith("!")]
    data = {**data, "scope": {"allow": allow, "deny": deny}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_toml(data))


def dump_toml(data: dict[str, Any]) -> str:
    """Settings as TOML: top-level tables of strings, numbers, booleans and lists."""
    out: list[str] = []
    for table, values in data.items():
        if not isinstance(values, dict):
            raise UsageError(f"cannot save the setting {table!r}")
        out.append(f"[{table}]")
        out += [
            f"{key} = {_toml_value(value)}"
            for key, value in values.items()
            if value is not None
        ]
        out.append("")
    return "\n".join(out)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
