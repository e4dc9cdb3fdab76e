from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import DEMO_CATALOG, Cluster

TOWNSHIPS = {"t1": "430321101000", "t2": "430321102000"}
VILLAGES = {"v11": ("t1", "430321101201"), "v12": ("t1", "430321101202"), "v21": ("t2", "430321102201")}


def catalog_file(path: Path, n: int) -> Path:
    """`n` catalog items made from the demo catalog (varied codes and names)."""
    demo = json.loads(DEMO_CATALOG.read_text(encoding="utf-8"))["items"]
    items = []
    for i in range(n):
        base = dict(demo[i % len(demo)])
        base["task_code"] = f"{base['task_code'][:26]}{i:05d}"
        if i >= len(demo):
            base["name"] = f"{base['name']}（第{i // len(demo) + 1}批）"
        items.append(base)
    path.write_text(json.dumps({"items": items}, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def three_tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """County and two townships serving; three villages enrolled (laptops: they sync when told)."""
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    c.county()
    county = c.start("county")
    for name, division in TOWNSHIPS.items():
        c.enrol(name, "township", division, "county", county.url or "")
        c.start(name, "--sync-interval", "1", "--max-backoff", "2")
    for name, (parent, division) in VILLAGES.items():
        c.enrol(name, "village", division, parent, c.nodes[parent].url or "", "--fallback", county.url or "")
    yield c
    c.close()
