"""Shared fixtures: the practice lab of real servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tools.lab import Lab


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """Every lab endpoint, running for the whole session; fails if one did not start.

    Do not call ``set_groups`` on this shared lab: start a ``Lab(["pq-tls"])`` of
    your own for that.
    """
    with Lab() as running:
        if running.skipped:
            reasons = "; ".join(f"{n}: {why}" for n, why in running.skipped.items())
            pytest.fail(f"lab endpoints did not start: {reasons}", pytrace=False)
        yield running
