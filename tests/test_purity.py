"""The protocol core is pure: no database, web, file, clock or process access outside its adapters."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sync_protocol

PACKAGE = Path(sync_protocol.__file__).parent
FORBIDDEN_IMPORTS = {
    "sqlite3", "sqlite_utils", "flask", "requests", "waitress", "apscheduler", "socket", "http", "urllib",
    "os", "pathlib", "shutil", "time", "datetime", "subprocess", "multiprocessing", "threading", "random", "secrets",
}  # fmt: skip
FORBIDDEN_CALLS = {"open", "print", "input"}
CORE = sorted(p for p in PACKAGE.glob("*.py") if p.stem not in sync_protocol.ADAPTER_MODULES)


def imported_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.add(base)
            names.update(f"{base}.{a.name}" if base.endswith(".") is False else base + a.name for a in node.names)
    return names


def test_adapters_exist() -> None:
    for name in sync_protocol.ADAPTER_MODULES:
        assert (PACKAGE / f"{name}.py").exists()


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.stem)
def test_core_module_is_pure(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = imported_names(tree)
    roots = {n.split(".")[0] for n in names if not n.startswith(".")}
    assert not roots & FORBIDDEN_IMPORTS, f"{path.name} imports {roots & FORBIDDEN_IMPORTS}"
    for adapter in sync_protocol.ADAPTER_MODULES:
        assert not any(n.lstrip(".").split(".")[0] == adapter or n.endswith(f".{adapter}") for n in names), (
            f"{path.name} imports the adapter {adapter}"
        )
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert not calls & FORBIDDEN_CALLS, f"{path.name} calls {calls & FORBIDDEN_CALLS}"


DOMAIN = Path(sync_protocol.__file__).parent.parent / "sanji_domain"
NODE_PACKAGES = {"sanji_node", "county_server", "township_node", "village_agent", "flask", "requests", "waitress",
                 "apscheduler"}  # fmt: skip
CLOCK_READS = {("time", "time"), ("datetime", "now"), ("date", "today"), ("datetime", "today")}


@pytest.mark.parametrize("path", sorted(DOMAIN.glob("*.py")), ids=lambda p: p.stem)
def test_domain_depends_only_on_the_protocol(path: Path) -> None:
    """nodes → sanji_domain → sync_protocol: the domain imports no node package, no web stack, and reads no clock."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots = {n.split(".")[0] for n in imported_names(tree) if not n.startswith(".")}
    assert not roots & NODE_PACKAGES, f"{path.name} imports {roots & NODE_PACKAGES}"
    reads = {
        (n.func.value.id, n.func.attr)
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)
    }
    assert not reads & CLOCK_READS, f"{path.name} reads the clock: {reads & CLOCK_READS} (pass now/today in)"


def test_the_protocol_does_not_know_the_domain() -> None:
    for path in PACKAGE.glob("*.py"):
        roots = {n.split(".")[0] for n in imported_names(ast.parse(path.read_text(encoding="utf-8")))}
        assert "sanji_domain" not in roots, f"{path.name} imports sanji_domain"
