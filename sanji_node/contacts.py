"""Each village's last contact, carried up: the township writes it, the county reads it.

A village talks only to its township, so before each sync up a township writes,
in its own up feed, one signed `node.contact` entry (sanji_domain.contacts) for
each of its villages whose figures changed since its last report: last contact,
entries waiting on the laptop as the village last said, forks, quarantine, and
what the township holds for the village that it has not taken yet (待下发). The
county folds them into `node_contacts`, and `county-server nodes` reads them
beside what it saw itself (a village that fell back to the county directly).

Bounded: nothing is written when nothing changed. A later contact alone (the
village synced again, its figures the same) is reported once it is
`CONTACT_STEP_MS` newer than the last report, so a village that syncs every
minute costs at most one entry per step, not one per sync.
"""

from __future__ import annotations

from typing import Any

from sanji_domain import contacts, kinds
from sanji_domain.commands import stamps
from sync_protocol import routing
from sync_protocol.entries import Record
from sync_protocol.keys import SigningKey
from sync_protocol.sqlite_store import Store

from . import state

CONTACT_STEP_MS = 15 * 60 * 1000


def figures(store: Store, node: str, *, with_backlog: bool = True) -> dict[str, int] | None:
    """What this node knows of a child: last contact, waiting on it, forks, quarantine, backlog; None if never
    seen."""
    row = store.conn.execute("SELECT last_seen_ms FROM peers WHERE node = ?", (node,)).fetchone()
    if row is None:
        return None
    waiting = state.waiting_on(store, node)
    prefix = node + "/"
    forks = sum(1 for f in store.forks() if f["feed"].startswith(prefix) and f["resolved_seq"] is None)
    quarantined = sum(
        q["last_seq"] - q["first_seq"] + 1
        for q in store.quarantined(waiting_only=True)
        if str(q["feed"]).startswith(prefix)
    )
    backlog, oldest = 0, None
    if with_backlog:
        directory = store.directory()
        backlog, oldest = state.backlog(store, node, lambda f: routing.should_hold(node, f, directory))
    return {
        "last_seen_ms": int(row[0]),
        "waiting": waiting[0] if waiting else 0,
        "forks": forks,
        "quarantined": quarantined,
        "backlog": backlog,
        "oldest_unsent_hlc": oldest or 0,
    }


def due_reports(store: Store, township: str) -> list[dict[str, Any]]:
    """Bodies of the reports to write now: villages of `township` whose figures changed since the last one."""
    last = contacts.reported(store.conn)
    out = []
    for (village,) in store.conn.execute(
        "SELECT node FROM nodes WHERE parent = ? AND role = 'village' ORDER BY node", (township,)
    ).fetchall():
        now = figures(store, village)
        if now is None:
            continue
        before = last.get(village)
        if before is not None:
            same = all(now[f] == before[f] for f in contacts.FIELDS if f != "last_seen_ms")
            if same and now["last_seen_ms"] - before["last_seen_ms"] < CONTACT_STEP_MS:
                continue
        out.append({"node": village, **now})
    return out


def report_contacts(store: Store, key: SigningKey, township: str, now_ms: int) -> int:
    """Write the due reports in the township's up feed (one commit); return how many."""
    bodies = due_reports(store, township)
    if not bodies:
        return 0
    feed = f"{township}/up"
    hlcs = stamps(store.conn, feed, now_ms, len(bodies))
    store.append(key, feed, [Record(kinds.NODE_CONTACT, b["node"], b, h) for b, h in zip(bodies, hlcs, strict=True)])
    return len(bodies)


def contact_view(store: Store, node: str, relayed_all: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """At the county: a node's last contact (直连 or 经乡镇), waiting on it, forks and quarantine, as best known
    (and, when its township's report is the newer news, the township's backlog toward it).

    Direct: what the county saw itself (the node synced here). Relayed: its township's newest report. The
    newer contact wins; forks and quarantine take the larger of the two (the same fork may be seen at both).
    `relayed_all` is `sanji_domain.contacts.reported(store.conn)`, read once for all nodes.
    """
    direct = figures(store, node, with_backlog=False)  # the caller has the direct backlog
    relayed = relayed_all.get(node)
    waiting_direct = state.waiting_on(store, node)
    out: dict[str, Any] = {
        "contact_via": None,
        "last_contact_ms": None,
        "waiting_up": None,
        "waiting_reported_ms": None,
        "forks_count": max(direct["forks"] if direct else 0, relayed["forks"] if relayed else 0),
        "quarantined_entries": max(direct["quarantined"] if direct else 0, relayed["quarantined"] if relayed else 0),
    }
    if direct is not None and (relayed is None or direct["last_seen_ms"] >= relayed["last_seen_ms"]):
        out.update(contact_via="direct", last_contact_ms=direct["last_seen_ms"])
        if waiting_direct is not None:
            out.update(waiting_up=waiting_direct[0], waiting_reported_ms=waiting_direct[1])
    elif relayed is not None:
        out.update(
            contact_via="township",
            last_contact_ms=relayed["last_seen_ms"],
            waiting_up=relayed["waiting"],
            waiting_reported_ms=relayed["reported_ms"],
            relayed_backlog=relayed["backlog"],
            relayed_oldest_unsent_hlc=relayed["oldest_unsent_hlc"] or None,
        )
    return out
