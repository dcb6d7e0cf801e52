"""Typed settings: one TOML file plus ``NETWARDEN_*`` environment overrides.

The file is ``$NETWARDEN_CONFIG``, else ``$XDG_CONFIG_HOME/netwarden/config.toml``
(``~/.config/netwarden/config.toml``); a missing default file means defaults.

    [scope]
    allow = ["127.0.0.0/8", "::1", "localhost", "*.lab.example"]
    deny = ["169.254.169.254"]

    [tls]
    expiry_days = [30, 14, 7]   # low, medium, high
    ca_file = "/etc/ssl/private-ca.pem"

    [checks]
    timeout = 5.0
    concurrency = 16

``NETWARDEN_SCOPE`` (comma-separated entries) replaces ``scope.allow``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tools.certs import Thresholds
from tools.errors import ConfigError
from tools.scope import DEFAULT_ALLOW, Scope


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScopeSettings(_Section):
    allow: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALLOW),
        description="Networks, host names and '*.domain' patterns checks may touch.",
    )
    deny: list[str] = Field(
        default_factory=list, description="Entries that are refused even if allowed."
    )


class TlsSettings(_Section):
    expiry_days: list[int] = Field(
        default_factory=lambda: [30, 14, 7],
        description="Days before expiry that raise low, medium and high findings.",
    )
    ca_file: Path | None = Field(
        default=None, description="CA bundle to trust instead of the system store."
    )

    @field_validator("expiry_days")
    @classmethod
    def _three_descending(cls, days: list[int]) -> list[int]:
        if len(days) != 3 or sorted(days, reverse=True) != days or min(days) < 0:
            raise ValueError("give three descending day counts, e.g. [30, 14, 7]")
        return days

    def thresholds(self) -> Thresholds:
        warning, high, critical = self.expiry_days
        return Thresholds(warning=warning, high=high, critical=critical)


class CheckSettings(_Section):
    timeout: float = Field(default=5.0, gt=0, le=120, description="Seconds per probe.")
    concurrency: int = Field(default=16, ge=1, le=256, description="Targets at once.")


class ModelSettings(_Section):
    path: Path | None = Field(
        default=None,
        description="GGUF file to run; unset means the embedded SmolLM2-135M.",
    )
    context: int = Field(default=8192, ge=512, le=131072, description="Context tokens.")
    threads: int | None = Field(default=None, ge=1, description="CPU threads.")
    thinking_budget: int = Field(
        default=1024, ge=0, description="Most tokens a reasoning model may think."
    )
    models_dir: Path | None = Field(
        default=None, description="Where `netwarden model pull` stores GGUFs."
    )


class AgentSettings(_Section):
    max_model_calls: int = Field(default=8, ge=1, le=100)
    max_tool_calls: int = Field(default=6, ge=0, le=100)
    recursion_limit: int = Field(default=40, ge=5, le=500)


class Settings(_Section):
    scope: ScopeSettings = Field(default_factory=ScopeSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    checks: CheckSettings = Field(default_factory=CheckSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)

    def build_scope(self) -> Scope:
        return Scope.from_entries(
            [*self.scope.allow, *(f"!{d}" for d in self.scope.deny)]
        )


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "netwarden" / "config.toml"


def load_settings(path: Path | None = None) -> Settings:
    """Read, validate and apply environment overrides; ConfigError names the key."""
    explicit = path or _env_path()
    source = explicit or default_config_path()
    data: dict[str, object] = {}
    if explicit is not None or source.exists():
        data = _read_toml(source)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_error(exc)}") from None
    if scope := os.environ.get("NETWARDEN_SCOPE"):
        settings.scope.allow = [e.strip() for e in scope.split(",") if e.strip()]
    settings.build_scope()  # validates every entry
    return settings


def _env_path() -> Path | None:
    value = os.environ.get("NETWARDEN_CONFIG")
    return Path(value) if value else None


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown key '{key}'"
    return f"'{key}': {error['msg']}"
