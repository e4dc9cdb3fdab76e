"""The service-domain commands all three node programs share: catalog, cases, 好差评, ledger, statistics.

Each program calls `add_domain_commands(group, role, load)`. One module per
area (`catalog`, `cases`, `evaluations`, `ledger`, `statistics`, `county`);
every command is an edge and stays thin: it parses its options, opens the
node's `Workspace` once for the whole command, calls the one function in
`sanji_node.actions` that the pages call too, and formats the answer (Chinese
by default, `--json` for scripts). Which commands a program gets follows who
uses it: the agent files cases and keeps the ledger, the clerk handles cases
and rectifications, the county numbers, supervises and publishes statistics.
"""

from __future__ import annotations

import click

from .cases import add_case_commands
from .catalog import add_catalog_commands
from .common import Audit, Loader, Prepare, no_audit, subgroup
from .county import add_county_commands
from .evaluations import add_evaluate_command, add_rectify_commands
from .ledger import add_ledger_commands
from .statistics import add_stats_commands
from .supervision import add_supervision_commands

__all__ = ["Audit", "Loader", "Prepare", "add_domain_commands"]


def add_domain_commands(
    group: click.Group, role: str, load: Loader, prepare: Prepare | None = None, audit: Audit = no_audit
) -> None:
    """Register the domain commands for a node program of `role` (county, township or village).

    `prepare(node, offline)` runs before a case is filed, before the workspace is opened (a village
    first recovers its own feed from the township). `audit(ws, action, …)` records what a command
    changed (the county's audit log: cards scan and revoke, supervise, rectify, settings set).
    """
    catalog = subgroup(group, "catalog", "The service item catalog (事项清单), as released by the county.")
    add_catalog_commands(catalog, load)
    case = subgroup(group, "case", "Cases (办件): file, list, show and move them through their states.")
    add_case_commands(case, role, load, prepare)
    if role != "county":
        add_evaluate_command(group, load)
    if role != "village":
        add_rectify_commands(group, load, audit)
    add_ledger_commands(group, role, load)
    add_stats_commands(group, load)
    if role == "county":
        add_county_commands(group, load, audit)
    if role != "village":
        add_supervision_commands(group, role, load, audit)
