"""The daemon's configuration: one TOML file plus ``NETWARDEN_DAEMON_*`` overrides.

    [daemon]
    db = "/var/lib/netwarden/daemon.db"
    concurrency = 8
    http_host = "127.0.0.1"
    http_port = 9464
    keep_days = 90        # history older than this is pruned (0: keep all)

    [defaults]
    interval = 300        # seconds between runs of one target's check
    jitter = 0.1          # +/- this fraction of the interval

    [[targets]]
    name = "web"
    host = "127.0.0.1"
    port = 8443
    checks = ["tls", "pq"]

Every error is one line naming the file, the line and the key, e.g.
``config.toml:14: unknown key 'targets[1].prot'``. Every target is checked against
``[scope]`` when the file loads, so an out-of-scope target never starts a daemon.
Environment: ``NETWARDEN_DAEMON_DB``, ``NETWARDEN_DAEMON_HTTP_HOST``,
``NETWARDEN_DAEMON_HTTP_PORT``, ``NETWARDEN_DAEMON_CONCURRENCY``.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from agent.daemon.alerts import AlertSettings
from agent.settings import ScopeSettings, TlsSettings, _Section
from tools.errors import ConfigError, UsageError
from tools.scope import Scope

CheckName = Literal["tls", "pq", "scan"]
KeyPath = tuple[str | int, ...]

ENV_OVERRIDES: dict[str, str] = {
    "NETWARDEN_DAEMON_DB": "db",
    "NETWARDEN_DAEMON_HTTP_HOST": "http_host",
    "NETWARDEN_DAEMON_HTTP_PORT": "http_port",
    "NETWARDEN_DAEMON_CONCURRENCY": "concurrency",
}


def _default_checks() -> list[CheckName]:
    return ["tls", "pq"]


class DaemonSection(_Section):
    db: Path = Field(default=Path("netwarden-daemon.db"), description="SQLite file.")
    concurrency: int = Field(default=8, ge=1, le=512, description="Checks at once.")
    http_host: str = Field(default="127.0.0.1", description="Metrics listen address.")
    http_port: int = Field(
        default=9464, ge=0, le=65535, description="Metrics port (0: any free port)."
    )
    http: bool = Field(default=True, description="Serve /healthz and /metrics.")
    keep_days: float = Field(
        default=90.0, ge=0, description="Days of history to keep (0: forever)."
    )


class DefaultsSection(_Section):
    interval: float = Field(default=300.0, gt=0, description="Seconds between runs.")
    jitter: float = Field(default=0.1, ge=0, le=0.5, description="Fraction of it.")


class TargetConfig(_Section):
    host: str = Field(min_length=1)
    port: int = Field(default=443, ge=1, le=65535)
    checks: list[CheckName] = Field(default_factory=_default_checks, min_length=1)
    name: str | None = Field(default=None, min_length=1)
    scan_profile: Literal["quick", "services", "vuln"] = "quick"
    ports: list[int] | None = Field(default=None, description="Ports to scan.")
    interval: float | None = Field(default=None, gt=0)
    jitter: float | None = Field(default=None, ge=0, le=0.5)
    server_name: str | None = Field(default=None, description="SNI to send.")

    @property
    def endpoint(self) -> str:
        """``host:port`` as the checks take it (IPv6 literals bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def label(self) -> str:
        """The name history and alerts use: ``name`` or ``host:port``."""
        return self.name or self.endpoint


class DaemonChecks(_Section):
    timeout: float = Field(default=5.0, gt=0, le=120, description="Seconds per probe.")


class DaemonModelSettings(_Section):
    path: Path | None = Field(default=None, description="GGUF for alert triage.")
    allow_active_scans: bool = Field(
        default=False, description="Let triage run nmap scans (passive checks only)."
    )


class DaemonConfig(_Section):
    daemon: DaemonSection = Field(default_factory=DaemonSection)
    defaults: DefaultsSection = Field(default_factory=DefaultsSection)
    targets: list[TargetConfig] = Field(default_factory=list)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    checks: DaemonChecks = Field(default_factory=DaemonChecks)
    scope: ScopeSettings = Field(default_factory=ScopeSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    model: DaemonModelSettings | None = None

    @model_validator(mode="after")
    def _unique_labels(self) -> DaemonConfig:
        seen: set[str] = set()
        for target in self.targets:
            if target.label in seen:
                raise ValueError(f"two targets are both called {target.label!r}")
            seen.add(target.label)
        return self

    def build_scope(self) -> Scope:
        deny = [f"!{entry}" for entry in self.scope.deny]
        return Scope.from_entries([*self.scope.allow, *deny])

    def interval_of(self, target: TargetConfig) -> float:
        return target.interval or self.defaults.interval

    def jitter_of(self, target: TargetConfig) -> float:
        return self.defaults.jitter if target.jitter is None else target.jitter


def load_daemon_config(path: Path) -> DaemonConfig:
    """Read, override from the environment, validate and scope-check ``path``."""
    text = _read_text(path)
    locator = KeyLocator(text)
    data = _parse(path, text, locator)
    from_env = _apply_env(data)
    try:
        config = DaemonConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(path, locator, exc, from_env)) from None
    _check_scope(path, locator, config)
    return config


# --- errors with line numbers


class KeyLocator:
    """Maps a key path such as ``("targets", 2, "port")`` to its line in the file.

    tomllib keeps no positions, so this reads the lines itself: table headers
    (``[a]``, ``[[a]]`` with a count per array of tables) and ``key =`` lines.
    """

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?")
    _KEY = re.compile(
        r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*"""
        r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
    )

    def __init__(self, text: str) -> None:
        self.lines: dict[KeyPath, int] = {}
        self._counts: dict[tuple[str, ...], int] = {}
        table: KeyPath = ()
        in_multiline = False
        for number, line in enumerate(text.splitlines(), start=1):
            if line.count('"""') % 2 or line.count("'''") % 2:
                in_multiline = not in_multiline
                if not in_multiline:
                    continue
            if in_multiline and not self._KEY.match(line):
                continue
            table = self._read_line(line, number, table)

    def _read_line(self, line: str, number: int, table: KeyPath) -> KeyPath:
        header = self._HEADER.match(line)
        if header:
            names = tuple(_split_dotted(header.group(2)))
            table = names
            if header.group(1) == "[[":
                index = self._counts.get(names, 0)
                self._counts[names] = index + 1
                table = (*names, index)
            self.lines.setdefault(table, number)
            return table
        key = self._KEY.match(line)
        if key:
            self.lines.setdefault((*table, *_split_dotted(key.group(1))), number)
        return table

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path`` or of its nearest parent that appears in the file."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None


def format_key(path: KeyPath) -> str:
    """``("targets", 1, "prot")`` -> ``targets[1].prot``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _split_dotted(text: str) -> list[str]:
    parts = re.findall(r"""\s*("[^"]*"|'[^']*'|[^.\s]+)\s*(?:\.|$)""", text)
    return [p.strip("\"'") for p in parts]


def _where(path: Path, line: int | None) -> str:
    return f"{path}:{line}" if line else str(path)


def _describe(
    path: Path, locator: KeyLocator, exc: ValidationError, from_env: dict[str, str]
) -> str:
    error = exc.errors()[0]
    loc: KeyPath = tuple(p for p in error["loc"] if isinstance(p, str | int))
    key = format_key(loc)
    if loc[:1] == ("daemon",) and len(loc) > 1 and str(loc[1]) in from_env:
        where = f"{path}: environment {from_env[str(loc[1])]}"
    else:
        where = _where(path, locator.line_of(loc))
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key '{key}'"
    if error["type"] == "missing":
        return f"{where}: missing key '{key}'"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: '{key}': {message}" if key else f"{where}: {message}"


# --- reading


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None


def _parse(path: Path, text: str, locator: KeyLocator) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"at line (\d+)", message)
        line = int(found.group(1)) if found else None
        key = _key_on_line(locator, line)
        named = f" (key '{key}')" if key else ""
        raise ConfigError(
            f"{_where(path, line)}: not valid TOML{named}: {message}"
        ) from None


def _key_on_line(locator: KeyLocator, line: int | None) -> str | None:
    for key_path, number in locator.lines.items():
        if number == line:
            return format_key(key_path)
    return None


def _apply_env(data: dict[str, Any]) -> dict[str, str]:
    """Put ``NETWARDEN_DAEMON_*`` values into ``[daemon]``; return key -> variable."""
    applied: dict[str, str] = {}
    for variable, key in ENV_OVERRIDES.items():
        value = os.environ.get(variable)
        if value is None or value == "":
            continue
        section = data.setdefault("daemon", {})
        if isinstance(section, dict):
            section[key] = value
            applied[key] = variable
    return applied


def _check_scope(path: Path, locator: KeyLocator, config: DaemonConfig) -> None:
    try:
        scope = config.build_scope()
    except UsageError as exc:
        line = locator.line_of(("scope",))
        raise ConfigError(f"{_where(path, line)}: '[scope]': {exc}") from None
    for index, target in enumerate(config.targets):
        key_path: KeyPath = ("targets", index, "host")
        try:
            scope.check_host(target.host)
        except UsageError as exc:
            reason = getattr(exc, "reason", str(exc))
            raise ConfigError(
                f"{_where(path, locator.line_of(key_path))}: target "
                f"'{format_key(key_path)}' = {target.host} is out of scope: {reason}"
            ) from None
