"""办件编号: the county numbers every case it has committed, once, on receipt.

The numbers are `case.number` entries in the case's county feed
(`county/<village>` or `county/<township>`), so they travel down to the
township and the agent with the receipts; both numbers are kept.
"""

from __future__ import annotations

from sanji_domain import commands
from sanji_node.config import NodeConfig
from sync_protocol.keys import SigningKey
from sync_protocol.sqlite_store import Store


def number_new_cases(store: Store, key: SigningKey, config: NodeConfig, now_ms: int) -> int:
    """Give every committed, unnumbered case its official number; return how many were numbered."""
    ids = [
        r[0]
        for r in store.conn.execute(
            "SELECT case_id FROM cases WHERE official_no IS NULL AND origin_case_id IS NULL AND state != 'DRAFT' "
            "ORDER BY filed_ms, case_id"
        )
    ]
    if not ids:
        return 0
    actor = commands.Actor(config.node_id, "county", config.division, None, config.root_node)
    n = 0
    for cmd in commands.case_number(store.conn, actor, ids, now_ms=now_ms):
        store.append(key, cmd.feed, cmd.records)
        n += len(cmd.records)
    return n
