"""The exception tree of the checks.

    NetwardenError            anything netwarden raises on purpose
    ├── UsageError            input that can never work; exit code 2
    │   ├── TargetError       a target that does not parse
    │   ├── ScopeError        a target outside the allowlist (nothing was sent)
    │   └── ConfigError       a settings file or value that does not validate
    ├── ToolMissingError      a required program (nmap, sshd) is not installed
    └── ProbeError            a conversation with a peer went wrong; has a Status

Checks catch :class:`ProbeError` and turn it into a result status; front ends map
:class:`UsageError` to exit code 2. Every message reads well on one line.
"""

from __future__ import annotations

from tools.models import Status


class NetwardenError(Exception):
    """Base of every error netwarden raises on purpose."""


class UsageError(NetwardenError):
    """Input that can never work; front ends exit with code 2."""


class TargetError(UsageError):
    """A target string that does not parse."""


class ScopeError(UsageError):
    """A target outside the allowlist. Raised before any packet is sent."""

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"{target} is out of scope: {reason}")
        self.target = target
        self.reason = reason


class ConfigError(UsageError):
    """A settings file or value that does not validate."""


class ToolMissingError(NetwardenError):
    """A program netwarden drives is not installed."""


class ProbeError(NetwardenError):
    """A conversation with a peer failed; ``status`` says how."""

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status
