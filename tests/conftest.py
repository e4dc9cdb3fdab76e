"""Fixtures shared by the unit tests."""

from __future__ import annotations

import os
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `long` run only in the long reliability run (`SANJI_LONG=1`, scripts/reliability.sh)."""
    if os.environ.get("SANJI_LONG", "") == "1":
        return
    skip = pytest.mark.skip(reason="long run only: bash scripts/reliability.sh")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)
