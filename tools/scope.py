"""The target allowlist, enforced in code before any packet is sent.

An entry is a network (``127.0.0.0/8``, ``::1``), a host name (``db.example.com``)
or a pattern (``*.example.com``: any name below example.com, not the apex). Entries
starting with ``!`` deny, and a deny always wins.

A host name is resolved once. The check then connects to that pinned address and
never resolves again, so a name cannot point elsewhere between the scope decision
and the connection. A name is in scope when it matches a name entry or when its
address lies in an allowed network; its address must never lie in a denied one.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from tools.errors import ConfigError, ScopeError, TargetError
from tools.targets import is_ip_literal, parse_target

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_ALLOW = ("127.0.0.0/8", "::1/128", "localhost")


@dataclass(frozen=True)
class ScopeDecision:
    host: str
    address: str
    rule: str


@dataclass
class Scope:
    """Allowed and denied networks and names."""

    networks: list[IPNetwork] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    denied_networks: list[IPNetwork] = field(default_factory=list)
    denied_names: list[str] = field(default_factory=list)

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> Scope:
        scope = cls()
        for raw in entries:
            entry = raw.strip()
            deny = entry.startswith("!")
            entry = entry.removeprefix("!").strip().lower()
            if not entry:
                raise ConfigError(f"scope entry {raw!r} is empty")
            network = _as_network(entry)
            if network is not None:
                (scope.denied_networks if deny else scope.networks).append(network)
            elif _is_name_pattern(entry):
                (scope.denied_names if deny else scope.names).append(entry)
            else:
                raise ConfigError(
                    f"scope entry {raw!r} is neither a network, a host name "
                    "nor a '*.domain' pattern"
                )
        return scope

    @classmethod
    def default(cls) -> Scope:
        return cls.from_entries(DEFAULT_ALLOW)

    def entries(self) -> list[str]:
        allowed = [str(n) for n in self.networks] + self.names
        denied = [f"!{n}" for n in self.denied_networks] + [
            f"!{n}" for n in self.denied_names
        ]
        return allowed + denied

    # -- decisions ---------------------------------------------------------

    def check_host(self, host: str) -> ScopeDecision:
        """Resolve ``host`` once and decide; raise ScopeError if it is out."""
        if is_ip_literal(host):
            address = ipaddress.ip_address(host)
            return ScopeDecision(host, str(address), self._check_address(host, address))
        name = host.lower().rstrip(".")
        if self._name_matches(name, self.denied_names):
            raise ScopeError(host, "the name is denied by the scope")
        address = resolve_once(host)
        try:
            rule = self._check_address(host, address)
        except ScopeError:
            if not self._name_matches(name, self.names):
                raise
            rule = f"name {name}"
        return ScopeDecision(host, str(address), rule)

    def check_target(self, text: str) -> ScopeDecision:
        """Decide a target string: ``host``, ``host:port``, ``[v6]:port`` or a CIDR.

        For a range, ``address`` is the network itself. TargetError if it does not
        parse; ScopeError if it is out.
        """
        if "/" in text:
            network = self.check_network(text)
            return ScopeDecision(text, str(network), "network")
        return self.check_host(parse_target(text).host)

    def check_network(self, text: str) -> IPNetwork:
        """Accept a CIDR range only when all of it lies in one allowed network."""
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise TargetError(f"{text!r} is not a network (CIDR) range") from None
        for denied in self.denied_networks:
            if network.version == denied.version and network.overlaps(denied):
                raise ScopeError(text, f"it overlaps the denied network {denied}")
        for allowed in self.networks:
            if network.version == allowed.version and network.subnet_of(allowed):  # type: ignore[arg-type]
                return network
        raise ScopeError(text, f"not inside an allowed network ({self._summary()})")

    def _check_address(self, host: str, address: IPAddress) -> str:
        for denied in self.denied_networks:
            if address in denied:
                raise ScopeError(host, f"{address} is in the denied network {denied}")
        for allowed in self.networks:
            if address in allowed:
                return f"network {allowed}"
        where = ""
        if host != str(address):
            where = f"{host} resolves to {address}, which is"
        raise ScopeError(
            host, f"{where} not in an allowed network ({self._summary()})".strip()
        )

    @staticmethod
    def _name_matches(name: str, patterns: list[str]) -> bool:
        for pattern in patterns:
            if pattern.startswith("*."):
                if name.endswith(pattern[1:]) and fnmatch.fnmatch(name, pattern):
                    return True
            elif name == pattern:
                return True
        return False

    def _summary(self) -> str:
        allowed = [str(n) for n in self.networks] + self.names
        return "allowed: " + (", ".join(allowed) if allowed else "nothing")


def resolve_once(host: str) -> IPAddress:
    """Resolve a name to one address, preferring IPv4 as most tools do."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise ScopeError(host, f"the name does not resolve ({exc})") from exc
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    addresses.sort(key=lambda a: a.version)
    return addresses[0]


def _as_network(entry: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None


def _is_name_pattern(entry: str) -> bool:
    name = entry[2:] if entry.startswith("*.") else entry
    labels = name.split(".")
    return all(label.replace("-", "").replace("_", "").isalnum() for label in labels)
