"""Settings: the example file loads, bad files fail with one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.settings import load_settings
from tools.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NETWARDEN_SCOPE", raising=False)
    settings = load_settings(ROOT / "deploy" / "config.example.toml")
    assert settings.scope.allow == ["127.0.0.0/8", "::1", "localhost"]
    assert settings.tls.thresholds().critical == 7


def test_missing_default_file_means_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("NETWARDEN_CONFIG", raising=False)
    assert load_settings().checks.timeout == 5.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[scope]\nalow = []\n", "unknown key 'scope.alow'"),
        ("[tls]\nexpiry_days = [7, 14, 30]\n", "'tls.expiry_days'"),
        ("[checks]\ntimeout = -1\n", "'checks.timeout'"),
        ("[scope\n", "not valid TOML"),
        ('[scope]\nallow = ["http://nope"]\n', "scope entry 'http://nope'"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(path)
    assert "\n" not in str(info.value)


def test_environment_scope_replaces_the_allowlist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETWARDEN_SCOPE", "10.9.0.0/16, *.lab.test")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    settings = load_settings()
    assert settings.scope.allow == ["10.9.0.0/16", "*.lab.test"]
