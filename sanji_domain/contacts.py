"""What a township reports to the county about its villages: `node.contact` entries, folded into `node_contacts`.

A village talks only to its township, so the county learns how a village is
doing from the township's reports: one `node.contact` entry in the township's
own up feed `T/up` per village whose figures changed, written when the
township syncs up (sanji_node.contacts). The body:

    {"node": village, "last_seen_ms": …, "waiting": …, "forks": …, "quarantined": …,
     "backlog": …, "oldest_unsent_hlc": …}

- `last_seen_ms`: the village's last request to the township (hello, push or pull);
- `waiting`: entries the village held of its own feeds at its last hello (or
  pull) that the township did not hold: 笔记本待上传, as last reported;
- `forks`: forks the township recorded on the village's feeds;
- `quarantined`: entries of the village's feeds the township holds in quarantine;
- `backlog`, `oldest_unsent_hlc`: entries the township holds that the village
  should hold and did not as it last said (待下发), and the oldest one's hlc (0: none).

Authorisation comes from membership, never from the body: a township reports
only about its own villages (the village's `parent` is the feed's author, and
the feed is the author's up feed). Any other report is kept in `fold_rejects`
and changes nothing. The newest report of a village (by hlc) wins, so the
table is the same whatever order the entries arrive in.
"""

from __future__ import annotations

from typing import Any

from sync_protocol.entries import Entry

FIELDS = ("last_seen_ms", "waiting", "forks", "quarantined", "backlog", "oldest_unsent_hlc")


def refusal(conn: Any, e: Entry) -> str | None:
    """Why the county must not take this report (None: it may)."""
    author, audience = e.feed.split("/", 1)
    if audience != "up":
        return "a contact report travels in its township's up feed"
    v = e.value
    if e.key != v["node"]:
        return "the report's key is not the node it reports on"
    if any(v[f] < 0 for f in FIELDS):
        return "a contact figure is negative"
    row = conn.execute("SELECT role, parent FROM nodes WHERE node = ?", (v["node"],)).fetchone()
    if row is None or row[0] != "village" or row[1] != author:
        return f"{author} may report only on its own villages, not on {v['node']}"
    return None


def fold_contacts(conn: Any, entries: list[Entry]) -> list[tuple[str, int, str, str, str]]:
    """Fold the reports the author may make; return the rest as fold rejects (feed, seq, kind, key, reason)."""
    rejects, rows = [], []
    for e in entries:
        why = refusal(conn, e)
        if why is not None:
            rejects.append((e.feed, e.seq, e.kind, e.key, why))
            continue
        v = e.value
        rows.append((v["node"], e.feed.split("/", 1)[0], *(v[f] for f in FIELDS), e.hlc, e.feed, e.seq))
    conn.executemany(
        "INSERT INTO node_contacts (node, township, last_seen_ms, waiting, forks, quarantined, backlog, "
        "oldest_unsent_hlc, hlc, feed, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (node) DO UPDATE "
        "SET township = excluded.township, last_seen_ms = excluded.last_seen_ms, waiting = excluded.waiting, "
        "forks = excluded.forks, quarantined = excluded.quarantined, backlog = excluded.backlog, "
        "oldest_unsent_hlc = excluded.oldest_unsent_hlc, hlc = excluded.hlc, feed = excluded.feed, seq = excluded.seq "
        "WHERE excluded.hlc > hlc OR (excluded.hlc = hlc AND excluded.seq > seq)",
        rows,
    )
    return rejects


def reported(conn: Any) -> dict[str, dict[str, Any]]:
    """The newest report of each village: {node: {township, reported_ms, and the FIELDS}}."""
    out = {}
    for node, township, *figures, hlc in conn.execute(
        "SELECT node, township, last_seen_ms, waiting, forks, quarantined, backlog, oldest_unsent_hlc, hlc "
        "FROM node_contacts"
    ).fetchall():
        out[node] = {"township": township, **dict(zip(FIELDS, figures, strict=True)), "reported_ms": hlc // 1000}
    return out
