"""Target parsing and the scope allowlist: the gate in front of every packet."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tools.errors import ConfigError, ScopeError, TargetError
from tools.scope import Scope
from tools.targets import format_ports, parse_ports, parse_target


@pytest.mark.parametrize(
    ("raw", "host", "port"),
    [
        ("example.com", "example.com", 443),
        ("Example.COM.", "example.com", 443),
        ("127.0.0.1:8443", "127.0.0.1", 8443),
        ("[::1]:2222", "::1", 2222),
        ("::1", "::1", 443),
        ("https://example.com/path", "example.com", 443),
        ("ssh://user@host.example", "host.example", 22),
        ("tls://10.0.0.5:993", "10.0.0.5", 993),
    ],
)
def test_parse_target(raw: str, host: str, port: int) -> None:
    target = parse_target(raw)
    assert (target.host, target.port) == (host, port)


@pytest.mark.parametrize(
    "raw",
    ["", "a b", "host:0", "host:70000", "host:x", "[::1", "-bad-.com", "a;rm -rf"],
)
def test_bad_targets_are_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(TargetError, match=r"."):
        parse_target(raw)


def test_ports_parse_and_format_round_trip() -> None:
    ports = parse_ports("443, 22,8000-8003,22")
    assert ports == [22, 443, 8000, 8001, 8002, 8003]
    assert format_ports(ports) == "22,443,8000-8003"


@given(st.lists(st.integers(1, 65535), min_size=1, max_size=50))
def test_port_lists_round_trip(ports: list[int]) -> None:
    assert parse_ports(format_ports(sorted(set(ports)))) == sorted(set(ports))


@pytest.mark.parametrize("text", ["", "1-", "0", "65536", "10-5", "22;id", "-1"])
def test_bad_port_lists(text: str) -> None:
    with pytest.raises(TargetError):
        parse_ports(text)


def test_default_scope_is_loopback_only() -> None:
    scope = Scope.default()
    assert scope.check_host("127.0.0.1").address == "127.0.0.1"
    assert scope.check_host("127.9.9.9").rule == "network 127.0.0.0/8"
    assert scope.check_host("::1").address == "::1"
    assert scope.check_host("localhost").address in {"127.0.0.1", "::1"}
    for outside in ("8.8.8.8", "10.0.0.5", "192.168.1.1", "2001:db8::1"):
        with pytest.raises(ScopeError, match="out of scope"):
            scope.check_host(outside)


def test_names_patterns_and_denials() -> None:
    scope = Scope.from_entries(["10.0.0.0/24", "*.lab.test", "!10.0.0.9"])
    assert scope.check_host("10.0.0.5").address == "10.0.0.5"
    with pytest.raises(ScopeError, match="denied"):
        scope.check_host("10.0.0.9")
    assert scope._name_matches("a.lab.test", scope.names)
    assert not scope._name_matches("lab.test", scope.names)
    assert not scope._name_matches("evil-lab.test", scope.names)


def test_a_name_is_pinned_to_the_address_that_was_checked() -> None:
    # "localhost" is not a name entry here: it is allowed only through its address.
    scope = Scope.from_entries(["127.0.0.0/8"])
    decision = scope.check_host("localhost")
    assert decision.address == "127.0.0.1"
    assert decision.rule == "network 127.0.0.0/8"


def test_a_name_that_does_not_resolve_is_out_of_scope() -> None:
    with pytest.raises(ScopeError, match="does not resolve"):
        Scope.default().check_host("no-such-host.invalid")


def test_cidr_ranges_must_fit_inside_an_allowed_network() -> None:
    scope = Scope.default()
    assert str(scope.check_network("127.0.0.0/30")) == "127.0.0.0/30"
    with pytest.raises(ScopeError):
        scope.check_network("0.0.0.0/0")
    with pytest.raises(TargetError):
        scope.check_network("not/a/net")


@pytest.mark.parametrize("entry", ["", "!", "http://x", "a..b", "1.2.3.4/99"])
def test_bad_scope_entries_name_themselves(entry: str) -> None:
    with pytest.raises(ConfigError):
        Scope.from_entries([entry])


def test_targets_mentioned_in_a_question_are_found() -> None:
    from tools.targets import find_targets

    text = (
        "Is 127.0.0.1:8443 quantum safe? Then scan 8.8.8.8, 10.0.0.0/24, "
        "example.com and [::1]:22 - not version 1.2.3 or file.txt, and localhost."
    )
    assert find_targets(text) == [
        "127.0.0.1:8443",
        "8.8.8.8",
        "10.0.0.0/24",
        "example.com",
        "[::1]:22",
        "file.txt",
        "localhost",
    ]


def test_check_target_takes_hosts_ports_and_ranges() -> None:
    scope = Scope.default()
    assert scope.check_target("127.0.0.1:8443").address == "127.0.0.1"
    assert scope.check_target("[::1]:22").address == "::1"
    assert scope.check_target("127.0.0.0/30").address == "127.0.0.0/30"
    with pytest.raises(ScopeError):
        scope.check_target("8.8.8.8:53")
    with pytest.raises(TargetError):
        scope.check_target("not a host")
