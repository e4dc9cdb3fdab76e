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


# -- the node programs: every CLI command and every HTTP route is documented ----------------

CLI_DOC = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") if (ROOT / "docs" / "cli.md").exists() else ""
API_DOC = (
    (ROOT / "docs" / "http-api.md").read_text(encoding="utf-8") if (ROOT / "docs" / "http-api.md").exists() else ""
)


def cli_commands() -> list[tuple[str, str, list[str]]]:
    """(program, "sub command", [--options]) for every command of the three programs."""
    import click

    from county_server.cli import main as county
    from township_node.cli import main as township
    from village_agent.cli import main as village

    out: list[tuple[str, str, list[str]]] = []

    def walk(program: str, cmd: click.Command, path: list[str]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(program, sub, [*path, name])
        else:
            opts = [o for p in cmd.params if isinstance(p, click.Option) for o in p.opts if o.startswith("--")]
            out.append((program, " ".join(path), opts))

    for program, group in (("county-server", county), ("township-node", township), ("village-agent", village)):
        walk(program, group, [])
    return out


@pytest.mark.parametrize(
    ("program", "command", "options"), cli_commands(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_every_cli_command_and_option_is_documented(program: str, command: str, options: list[str]) -> None:
    heading = f"{program} {command}"
    assert heading in CLI_DOC, f"`{heading}` is not in docs/cli.md"
    section = CLI_DOC.split(heading, 1)[1].split("\n### ", 1)[0]
    for option in options:
        assert option in section, f"option {option} of `{heading}` is not in its docs/cli.md section"


def http_routes() -> list[str]:
    import tempfile

    from flask import Flask

    from county_server.app import create_app as county_app
    from sanji_node.child import ChildNode
    from township_node.app import create_app as township_app
    from village_agent.app import create_app as village_app

    from .network import seeded_key

    routes: set[str] = set()

    def collect(app: Flask) -> None:
        for rule in app.url_map.iter_rules():
            if rule.endpoint != "static":
                for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                    routes.add(f"{method} {rule.rule}")

    with tempfile.TemporaryDirectory() as tmp:
        from sanji_node.config import DataDir, NodeConfig

        key = seeded_key("county")
        for name, role in (("county", "county"), ("t1", "township"), ("v11", "village")):
            data = DataDir(Path(tmp) / name)
            data.create()
            data.save_key(key, None)
            data.save(NodeConfig(name, role, "430321", "county", key.public.hex, "430321000000", parent="county"))
        collect(county_app(Path(tmp) / "county"))
        collect(township_app(ChildNode.load(Path(tmp) / "t1")))
        collect(village_app(ChildNode.load(Path(tmp) / "v11")))
    return sorted(routes)


@pytest.mark.parametrize("route", http_routes())
def test_every_http_route_is_documented(route: str) -> None:
    method, path = route.split(" ", 1)
    assert f"{method} {path}" in API_DOC, f"`{method} {path}` is not in docs/http-api.md"
