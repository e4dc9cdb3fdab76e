"""The domain tables, folded from entries in the same transaction as the append.

Every table here is derived: dropping them all and folding the entries again
gives the same rows (see `fold.refold_all`). Their own migration set, applied
when a node opens its store.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

domain_migrations = Migrations("sanji.domain")

TABLES = (
    "nodes",
    "catalog_items",
    "catalog_item_versions",
    "catalog_releases",
    "calendar_days",
    "settings",
    "cases",
    "case_pii",
    "case_events",
    "cards",
    "evaluations",
    "rectifications",
    "rectification_steps",
    "roster",
    "fold_rejects",
    "node_contacts",
    "supervision_notices",
    "supervision_acks",
)


@domain_migrations()
def m001_domain(db: sqlite_utils.Database) -> None:
    for sql in (
        "CREATE TABLE nodes (node TEXT PRIMARY KEY, role TEXT NOT NULL, parent TEXT, division TEXT, "
        "revoked INTEGER NOT NULL DEFAULT 0)",
        # the newest content of every item, and every version a case may pin
        "CREATE TABLE catalog_items (task_code TEXT PRIMARY KEY, version INTEGER NOT NULL, state TEXT NOT NULL, "
        "name TEXT NOT NULL, level TEXT, village_mode TEXT, case_type TEXT, legal_days INTEGER, "
        "promised_days INTEGER, allow_pledge INTEGER, body TEXT NOT NULL)",
        "CREATE TABLE catalog_item_versions (task_code TEXT NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL, "
        "PRIMARY KEY (task_code, version)) WITHOUT ROWID",
        "CREATE TABLE catalog_releases (version INTEGER PRIMARY KEY, released_ms INTEGER, source TEXT, "
        "count INTEGER, body TEXT NOT NULL)",
        "CREATE TABLE calendar_days (day TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT, seq INTEGER NOT NULL)",
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, seq INTEGER NOT NULL)",
        # one row per case (办件); personal data apart in case_pii (sealed on a village laptop)
        "CREATE TABLE cases (case_id TEXT PRIMARY KEY, local_no TEXT, official_no TEXT, origin_case_id TEXT, "
        "linked_case_id TEXT, level TEXT, author TEXT NOT NULL, village TEXT, township TEXT, feed TEXT NOT NULL, "
        "seq INTEGER NOT NULL, item_code TEXT NOT NULL, item_version INTEGER, item_name TEXT, case_type TEXT, "
        "promised_days INTEGER NOT NULL DEFAULT 0, initial_state TEXT NOT NULL, state TEXT NOT NULL, "
        "pledge INTEGER NOT NULL DEFAULT 0, agent_name TEXT, proxy_no TEXT, channel TEXT, filed_ms INTEGER NOT NULL, "
        "first_handled_ms INTEGER, accepted_ms INTEGER, completed_ms INTEGER, delivered_ms INTEGER, "
        "closed_ms INTEGER, pauses TEXT NOT NULL DEFAULT '[]', result TEXT, conflicts INTEGER NOT NULL DEFAULT 0, "
        "body TEXT NOT NULL)",
        "CREATE INDEX cases_unnumbered ON cases (filed_ms) WHERE official_no IS NULL",
        "CREATE INDEX cases_official ON cases (official_no)",
        "CREATE INDEX cases_local ON cases (local_no)",
        "CREATE TABLE case_pii (case_id TEXT PRIMARY KEY, data BLOB, sealed INTEGER NOT NULL DEFAULT 0, "
        "purged_ms INTEGER)",
        "CREATE TABLE case_events (feed TEXT NOT NULL, seq INTEGER NOT NULL, case_id TEXT NOT NULL, "
        "hlc INTEGER NOT NULL, author TEXT NOT NULL, role TEXT NOT NULL, action TEXT NOT NULL, at_ms INTEGER NOT NULL, "
        "before TEXT, after TEXT, conflict TEXT, body TEXT NOT NULL, PRIMARY KEY (feed, seq)) WITHOUT ROWID",
        "CREATE INDEX case_events_case ON case_events (case_id)",
        "CREATE TABLE cards (card_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, level TEXT NOT NULL, "
        "issued_ms INTEGER NOT NULL, issued_by TEXT, reason TEXT, revoked_ms INTEGER, revoked_by TEXT, "
        "revoke_reason TEXT)",
        "CREATE INDEX cards_case ON cards (case_id)",
        "CREATE TABLE evaluations (evaluation_id TEXT PRIMARY KEY, case_id TEXT, level INTEGER NOT NULL, "
        "channel TEXT, stage TEXT, target_type TEXT, target_name TEXT, comment TEXT, at_ms INTEGER NOT NULL, "
        "author TEXT NOT NULL, village TEXT, township TEXT, item_code TEXT)",
        "CREATE INDEX evaluations_case ON evaluations (case_id)",
        "CREATE TABLE rectifications (evaluation_id TEXT PRIMARY KEY, opened_ms INTEGER NOT NULL, owner TEXT, "
        "deadline_days INTEGER NOT NULL, followup_ms INTEGER, followup_note TEXT, fix_level INTEGER, "
        "fix_rated_ms INTEGER, state TEXT NOT NULL)",
        "CREATE TABLE rectification_steps (feed TEXT NOT NULL, seq INTEGER NOT NULL, evaluation_id TEXT NOT NULL, "
        "hlc INTEGER NOT NULL, author TEXT NOT NULL, step TEXT NOT NULL, body TEXT NOT NULL, "
        "PRIMARY KEY (feed, seq)) WITHOUT ROWID",
        "CREATE TABLE fold_rejects (feed TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL, "
        "PRIMARY KEY (feed, seq)) WITHOUT ROWID",
        "CREATE TABLE roster (village TEXT NOT NULL, day TEXT NOT NULL, agent TEXT NOT NULL, substitute TEXT, "
        "hlc INTEGER NOT NULL, PRIMARY KEY (village, day)) WITHOUT ROWID",
    ):
        db.execute(sql)


@domain_migrations()
def m002_node_names(db: sqlite_utils.Database) -> None:
    # the display name of a node (梅花村), from its node.member and later node.name entries; NULL: none given
    db.execute("ALTER TABLE nodes ADD COLUMN name TEXT")


@domain_migrations()
def m003_node_contacts(db: sqlite_utils.Database) -> None:
    # each village's newest `node.contact` report from its township (sanji_domain.contacts)
    db.execute(
        "CREATE TABLE node_contacts (node TEXT PRIMARY KEY, township TEXT NOT NULL, last_seen_ms INTEGER NOT NULL, "
        "waiting INTEGER NOT NULL, forks INTEGER NOT NULL, quarantined INTEGER NOT NULL, backlog INTEGER NOT NULL, "
        "oldest_unsent_hlc INTEGER NOT NULL, hlc INTEGER NOT NULL, feed TEXT NOT NULL, seq INTEGER NOT NULL)"
    )


@domain_migrations()
def m004_case_numbers(db: sqlite_utils.Database) -> None:
    # every 办件编号 as it arrived, whether or not its case was here yet (the fold applies it when the case
    # arrives). Where entry bodies are stored in the clear they are taken from the entries now; a village
    # laptop (sealed bodies) refolds its numbers on open (sanji_node.state.open_store).
    db.execute("CREATE TABLE case_numbers (case_id TEXT PRIMARY KEY, official_no TEXT NOT NULL) WITHOUT ROWID")
    if "entries" not in db.table_names():  # the domain tables alone (tests): nothing to take over
        return
    db.execute(
        "INSERT OR REPLACE INTO case_numbers (case_id, official_no) SELECT key, "
        "json_extract(CAST(body AS TEXT), '$.official_no') FROM entries WHERE kind = 'case.number' "
        "AND json_valid(CAST(body AS TEXT)) AND json_type(CAST(body AS TEXT), '$.official_no') = 'text' ORDER BY id"
    )
    db.execute(
        "UPDATE cases SET official_no = (SELECT n.official_no FROM case_numbers n WHERE n.case_id = cases.case_id) "
        "WHERE official_no IS NULL AND case_id IN (SELECT case_id FROM case_numbers)"
    )


@domain_migrations()
def m005_claims(db: sqlite_utils.Database) -> None:
    # a reject names its entry's key (the case id of a refused case.new, …); an evaluation its entry, so a
    # later-arriving case can turn it into a reject (sanji_domain.claims)
    db.execute("ALTER TABLE fold_rejects ADD COLUMN key TEXT")
    db.execute("ALTER TABLE evaluations ADD COLUMN feed TEXT")
    db.execute("ALTER TABLE evaluations ADD COLUMN seq INTEGER")
    if "entries" not in db.table_names() or not {"feed", "seq", "key"} <= set(db["entries"].columns_dict):
        return
    db.execute(
        "UPDATE fold_rejects SET key = (SELECT e.key FROM entries e WHERE e.feed = fold_rejects.feed "
        "AND e.seq = fold_rejects.seq)"
    )
    db.execute("UPDATE evaluations SET feed = author || '/up'")
    db.execute(
        "UPDATE evaluations SET seq = (SELECT e.seq FROM entries e WHERE e.feed = evaluations.feed "
        "AND e.kind = 'evaluation.new' AND e.key = evaluations.evaluation_id)"
    )
    db.execute("UPDATE evaluations SET feed = NULL WHERE seq IS NULL")


@domain_migrations()
def m006_supervision(db: sqlite_utils.Database) -> None:
    # 督办: the county's notices to a township and the township's acknowledgements (sanji_domain.supervision)
    db.execute(
        "CREATE TABLE supervision_notices (notice_id TEXT PRIMARY KEY, township TEXT NOT NULL, case_id TEXT, "
        "window TEXT, reason TEXT NOT NULL, issued_ms INTEGER NOT NULL, issued_by TEXT, feed TEXT NOT NULL, "
        "seq INTEGER NOT NULL)"
    )
    db.execute("CREATE INDEX supervision_notices_township ON supervision_notices (township)")
    db.execute(
        "CREATE TABLE supervision_acks (feed TEXT NOT NULL, seq INTEGER NOT NULL, notice_id TEXT NOT NULL, "
        "author TEXT NOT NULL, acked_ms INTEGER NOT NULL, acked_by TEXT, note TEXT, PRIMARY KEY (feed, seq))"
    )
    db.execute("CREATE INDEX supervision_acks_notice ON supervision_acks (notice_id)")
