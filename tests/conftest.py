"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .network import Network, build_network, distribute_membership


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    """The county network on SQLite files, every node holding the membership (a test module may override it)."""
    n = build_network(tmp_path / "net")
    distribute_membership(n)
    yield n
    n.close()
