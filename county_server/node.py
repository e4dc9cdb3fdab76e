"""The county node: its data directory, configuration, root key and store, as the domain commands,
the command line and the pages see it."""

from __future__ import annotations

from dataclasses import dataclass

from sanji_node import state
from sanji_node.config import DataDir, NodeConfig
from sync_protocol.keys import SigningKey
from sync_protocol.sqlite_store import Store

from . import accounts, audit, monitor_tables, node_admin, reconcile, stats_summary, tokens


def open_county_store(data: DataDir) -> Store:
    """The county's store with its own tables (tokens, page accounts, the audit log) migrated."""
    config = data.load()

    def extra(s: Store) -> None:
        tokens.token_migrations.apply(s.db)
        accounts.BOOK.migrate(s.db)
        audit.migrate(s.db)
        node_admin.migrate(s.db)
        stats_summary.migrate(s.db)
        reconcile.recon_migrations.apply(s.db)
        monitor_tables.migrate(s.db)

    return state.open_store(data, config, extra=extra)


def county(data_dir: str) -> tuple[DataDir, NodeConfig, SigningKey]:
    """The county's data directory, configuration and root key."""
    data = DataDir(data_dir)
    config = data.load()
    return data, config, data.load_key(config)


@dataclass
class CountyNode:
    """The county as the domain commands see it: data, configuration, root key and its store."""

    data: DataDir
    config: NodeConfig
    key: SigningKey

    def open_store(self) -> Store:
        return open_county_store(self.data)


def load_county(data_dir: str) -> CountyNode:
    return CountyNode(*county(data_dir))
