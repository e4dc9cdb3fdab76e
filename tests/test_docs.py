"""Documentation is tested: commands, formats and modules must be written down."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import sync_protocol
from sync_protocol import batches, bundle, entries, heads, planning

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PROTOCOL = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")


def test_readme_quick_start_has_the_test_command() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "bash scripts/test.sh" in quick
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_script_and_benchmark_is_documented() -> None:
    for path in [*ROOT.glob("bench/*.py"), *ROOT.glob("scripts/*")]:
        assert path.relative_to(ROOT).as_posix() in README, f"{path.name} is not in the README"


def test_benchmark_options_are_documented() -> None:
    source = (ROOT / "bench" / "protocol_bench.py").read_text(encoding="utf-8")
    for option in re.findall(r'add_argument\("(--[a-z-]+)"', source):
        assert option in README, f"bench option {option} is not in the README"


@pytest.mark.parametrize(
    "constant",
    [
        entries.ENTRY_TAG, entries.GENESIS_TAG, heads.HEAD_TAG, planning.VECTOR_TAG, bundle.BUNDLE_TAG,
        batches.BATCH_MAGIC, batches.PAGE_MAGIC, bundle.MAGIC,
    ],
)  # fmt: skip
def test_every_tag_and_magic_is_in_the_protocol_doc(constant: bytes) -> None:
    text = constant.decode("ascii").replace("\n", "\\n")
    assert text in PROTOCOL, f"{text!r} is not described in docs/protocol.md"


@pytest.mark.parametrize(
    "module", sorted(p.stem for p in Path(sync_protocol.__file__).parent.glob("*.py") if p.stem != "__init__")
)
def test_every_protocol_module_is_in_the_protocol_doc(module: str) -> None:
    assert f"{module}.py" in PROTOCOL or f"`{module}`" in PROTOCOL, (
        f"sync_protocol/{module}.py is not mentioned in docs/protocol.md"
    )


def test_protocol_doc_points_to_the_golden_vectors() -> None:
    assert "tests/data/golden_vectors.json" in PROTOCOL
    assert (ROOT / "tests" / "data" / "golden_vectors.json").exists()
