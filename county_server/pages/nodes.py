"""节点与登记: enrol a township or village (the one-time token on screen and on a printable A4 sheet), the
token list (cancel, re-send), and each node's page with its problems and the action for each: decide a fork,
release or refuse a quarantined batch, acknowledge a conflict, revoke, rename.

Routes (docs/http-api.md, "The county's pages"):
    GET  /nodes                                         every node by name, the tokens, the enrolment form
    POST /nodes/enrol                                   issue a token; answers with the enrolment sheet
    POST /nodes/tokens/<token_id>/cancel                作废 an unused token
    POST /nodes/<node_id>/resend                        重发: a fresh token (the old ones cancelled); the sheet
    GET  /nodes/<node_id>                               the node's page: facts, problems, actions, audit rows
    POST /nodes/<node_id>/rename                        a new display name
    POST /nodes/<node_id>/revoke                        asks to confirm, then revokes (`confirm=yes`)
    POST /nodes/<node_id>/fork                          the county's decision on a fork of the node's feed
    POST /nodes/<node_id>/quarantine/<int:qid>/<how>    release | refuse a quarantined batch
    POST /nodes/<node_id>/ack                           acknowledge a conflict or refused entry (feed, seq)

Every POST is `@require(*WRITE)`, asks for a reason (or note), and writes one audit row (target_kind "node")
in the transaction of its change, through `county_server.node_admin` (which the CLI calls too).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from sanji_domain import contacts as domain_contacts
from sanji_domain import rejects, views
from sanji_domain.rejects import KIND_LABELS
from sanji_domain.views import to_local_datetime
from sanji_node import contacts, state
from sanji_node.web.auth import require
from sync_protocol import routing
from sync_protocol.batches import decode_batch
from sync_protocol.enrolment import fingerprint
from sync_protocol.entries import rebuild_chain
from sync_protocol.errors import SyncError
from sync_protocol.membership import COUNTY, TOWNSHIP, VILLAGE
from sync_protocol.sqlite_store import REFUSED, RELEASED, Store

from .. import audit, node_admin
from .common import READ, WRITE, county, error_text, me, now

bp = Blueprint("nodes", __name__)
T = TypeVar("T")
EXPIRY_DAYS = (1, 3, 7, 14, 30)
EVIDENCE_ROWS = 20  # entries shown per branch of a fork


def _act(fn: Callable[[Store], T]) -> T:
    """Run an action on the county's store under the workspace's lock."""
    c = county()
    return c.ws.read(lambda _conn: fn(c.ws.store))


def _key() -> Any:
    return county().node.key


def _form(name: str) -> str:
    return (request.form.get(name) or "").strip()


# -- the list -----------------------------------------------------------------------------------------


def _overview(store: Store, at_ms: int) -> dict[str, Any]:
    directory = store.directory()
    relayed = domain_contacts.reported(store.conn)
    forks = node_admin.fork_rows(store)
    open_forks: dict[str, int] = {}
    for f in forks:
        if not f["resolved_seq"]:
            open_forks[f["node"]] = open_forks.get(f["node"], 0) + 1
    waiting_q: dict[str, int] = {}
    for q in store.quarantined(waiting_only=True):
        author = str(q["feed"]).split("/")[0]
        waiting_q[author] = waiting_q.get(author, 0) + q["last_seq"] - q["first_seq"] + 1
    acked = node_admin.acks(store)
    conflicts: dict[str, int] = {}
    for feed, seq in store.conn.execute(
        "SELECT feed, seq FROM case_events WHERE conflict IS NOT NULL UNION ALL SELECT feed, seq FROM fold_rejects"
    ).fetchall():
        if (feed, seq) not in acked:
            conflicts[feed.split("/")[0]] = conflicts.get(feed.split("/")[0], 0) + 1
    rows = []
    for m in directory:
        if m.role == COUNTY:
            continue
        view = contacts.contact_view(store, m.node, relayed)
        rows.append(
            {
                "node": m.node,
                "name": directory.name_of(m.node),
                "role": m.role,
                "role_label": node_admin.ROLE_NAMES[m.role],
                "division": m.division,
                "parent": m.parent,
                "revoked": m.revocation is not None,
                "last_contact_ms": view.get("last_contact_ms"),
                "contact_via": view.get("contact_via"),
                "forks": max(open_forks.get(m.node, 0), view.get("forks_count") or 0),
                "quarantined": waiting_q.get(m.node, 0),
                "conflicts": conflicts.get(m.node, 0),
            }
        )
    # townships first, each followed by its villages
    order = {r["node"]: (r["division"][:9], r["role"] != TOWNSHIP, r["division"]) for r in rows}
    rows.sort(key=lambda r: order[r["node"]])
    townships = [(m.node, directory.name_of(m.node)) for m in directory if m.role == TOWNSHIP and not m.revocation]
    return {"rows": rows, "tokens": node_admin.token_rows(store, at_ms), "townships": townships}


@bp.get("/nodes")
@require(*READ)
def index() -> Any:
    return _index()


def _index(form: dict[str, str] | None = None, error: str | None = None, status: int = 200) -> Any:
    data = _act(lambda store: _overview(store, now()))
    return (
        render_template(
            "county/nodes.html",
            **data,
            form=form or {"role": VILLAGE, "days": "3"},
            error=error,
            expiry_days=EXPIRY_DAYS,
            roles={TOWNSHIP: "乡镇", VILLAGE: "村"},
        ),
        status,
    )


@bp.post("/nodes/enrol")
@require(*WRITE)
def enrol() -> Any:
    form = {k: _form(k) for k in ("role", "name", "division", "parent", "days")}
    try:
        days = int(form["days"] or "3")
        if not 1 <= days <= 90:
            raise ValueError
    except ValueError:
        return _index(form, "有效期请填 1–90 天", 400)
    parent = form["parent"] if form["role"] == VILLAGE else ""
    try:
        sheet = _act(
            lambda store: node_admin.issue_token(
                store, who=me(), now_ms=now(), role=form["role"], division=form["division"], parent=parent or None,
                name=form["name"], ttl_ms=days * 86_400_000, random_bytes=os.urandom(21),
            )
        )  # fmt: skip
    except SyncError as e:
        return _index(form, error_text(e), 400)
    return _sheet(sheet, fresh=True)


def _sheet(sheet: node_admin.Sheet, *, fresh: bool) -> Any:
    return render_template(
        "county/enrol_sheet.html",
        sheet=sheet,
        fresh=fresh,
        role_label=node_admin.ROLE_NAMES[sheet.role],
        county_url=request.host_url.rstrip("/"),
    )


@bp.post("/nodes/tokens/<token_id>/cancel")
@require(*WRITE)
def cancel_token(token_id: str) -> Any:
    reason = _form("reason")
    try:
        node_admin.need_reason(reason)
        _act(lambda store: node_admin.cancel_token(store, token_id, who=me(), now_ms=now(), reason=reason))
    except SyncError as e:
        flash(error_text(e), "error")
        return redirect(url_for("nodes.index") + "#tokens")
    flash(f"已作废登记令牌 {token_id.upper()}。", "success")
    return redirect(url_for("nodes.index") + "#tokens")


@bp.post("/nodes/<node_id>/resend")
@require(*WRITE)
def resend(node_id: str) -> Any:
    reason = _form("reason")
    back = request.form.get("back") == "node"
    try:
        node_admin.need_reason(reason)
        sheet = _act(
            lambda store: node_admin.resend_token(
                store, node_id, who=me(), now_ms=now(), ttl_ms=3 * 86_400_000, random_bytes=os.urandom(21),
                reason=reason,
            )
        )  # fmt: skip
    except SyncError as e:
        flash(error_text(e), "error")
        return redirect(url_for("nodes.node", node_id=node_id) if back else url_for("nodes.index") + "#tokens")
    return _sheet(sheet, fresh=True)


# -- one node -------------------------------------------------------------------------------------------


def _when_hlc(hlc: int | None) -> str:
    return to_local_datetime(hlc // 1000).strftime("%Y-%m-%d %H:%M") if hlc else "—"


def _entry_row(seq: int, kind: str, key: str, hlc: int, value: Any) -> dict[str, Any]:
    local_no = value.get("local_no") if isinstance(value, dict) else None
    return {"seq": seq, "kind": KIND_LABELS.get(kind, kind), "key": local_no or key, "at": _when_hlc(hlc)}


def _evidence(store: Store, fork: dict[str, Any]) -> dict[str, Any]:
    """The entries on each branch after the fork point: what the county holds, and the other history."""
    feed, start = fork["feed"], fork["seq"]
    shown = store.entries(feed, start, start + EVIDENCE_ROWS - 1)
    ours = [_entry_row(e.seq, e.kind, e.key, e.hlc, e.value) for e in shown]
    ours_total = max(0, fork["held_seq"] - start + 1)
    theirs: dict[int, dict[str, Any]] = {}
    if fork["id"] is not None:
        for (blob,) in store.conn.execute(
            "SELECT batch FROM fork_batches WHERE fork_id = ? ORDER BY first_seq", (fork["id"],)
        ).fetchall():
            try:
                raw = decode_batch(bytes(blob))  # the county's store is not sealed
                for e in rebuild_chain(feed, raw.seq, raw.prev, raw.entries):
                    if e.seq >= start:
                        theirs[e.seq] = _entry_row(e.seq, e.kind, e.key, e.hlc, orjson.loads(e.body))
            except (SyncError, ValueError):
                continue
    other = [theirs[s] for s in sorted(theirs)]
    return {"ours": ours, "ours_total": ours_total, "theirs": other[:EVIDENCE_ROWS],
            "theirs_total": len(other)}  # fmt: skip


def _node_page(store: Store, node_id: str, at_ms: int) -> dict[str, Any] | None:
    directory = store.directory()
    m = directory.get(node_id)
    node_tokens = node_admin.token_rows(store, at_ms, node_id)
    if (m is None or m.role == COUNTY) and not node_tokens:
        return None
    out: dict[str, Any] = {"node_id": node_id, "member": m, "tokens": node_tokens}
    out["name"] = directory.name_of(node_id) if m else node_tokens[0]["name"]
    out["role_label"] = node_admin.ROLE_NAMES[m.role if m else node_tokens[0]["role"]]
    out["audit"] = audit.rows(store.db, target_kind="node", target=node_id)
    if m is None:
        return out
    used = [t for t in node_tokens if t["used_ms"]]
    out["enrolled_ms"] = used[0]["used_ms"] if used else None
    out["fingerprint"] = fingerprint(m.key)
    view = contacts.contact_view(store, node_id, domain_contacts.reported(store.conn))
    out["contact"] = view
    out["latest_text"] = _when_hlc(
        store.conn.execute(
            "SELECT MAX(hlc) FROM entries WHERE feed LIKE ? ESCAPE '\\'", (node_id.replace("_", "\\_") + "/%",)
        ).fetchone()[0]
    )
    if store.conn.execute("SELECT 1 FROM peers WHERE node = ?", (node_id,)).fetchone():
        out["backlog"] = state.backlog(store, node_id, lambda f: routing.should_hold(node_id, f, directory))[0]
    forks = [f for f in node_admin.fork_rows(store) if f["node"] == node_id]
    for f in forks:
        f["evidence"] = _evidence(store, f) if f["seq"] else None
    out["forks"] = forks
    prefix = node_id + "/"
    out["quarantine"] = [q for q in store.quarantined() if str(q["feed"]).startswith(prefix)]
    for q in out["quarantine"]:  # the store's reason, said as the administrator would
        if "was revoked" in q["reason"] and m.revocation is not None:
            q["why"] = f"吊销（{m.revocation.reason}）以后写入的数据"
        elif "frozen after a fork" in q["reason"]:
            q["why"] = "分叉冻结期间收到的数据，裁决分叉后可以放行"
        else:
            q["why"] = q["reason"]
    acked = node_admin.acks(store)
    conflicts = [c for c in views.conflicts(store.conn) if c["author"] == node_id]
    refused = [r for r in rejects.listed(store.conn) if r["author"] == node_id]
    for row in conflicts + refused:
        row["ack"] = acked.get((row["feed"], row["seq"]))
    out["conflicts"], out["refused"] = conflicts, refused
    return out


@bp.get("/nodes/<node_id>")
@require(*READ)
def node(node_id: str) -> Any:
    data = _act(lambda store: _node_page(store, node_id, now()))
    if data is None:
        abort(404)
    return render_template("county/nodes_node.html", **data, decisions=node_admin.DECISIONS, now_ms=now())


def _done(node_id: str, message: str) -> Any:
    flash(message, "success")
    return redirect(url_for("nodes.node", node_id=node_id))


def _failed(node_id: str, e: SyncError, anchor: str = "") -> Any:
    flash(error_text(e), "error")
    return redirect(url_for("nodes.node", node_id=node_id) + anchor)


@bp.post("/nodes/<node_id>/rename")
@require(*WRITE)
def rename(node_id: str) -> Any:
    name, reason = _form("name"), _form("reason")
    try:
        node_admin.need_reason(reason)
        old = _act(lambda store: node_admin.rename(store, _key(), node_id, name, who=me(), now_ms=now(), reason=reason))
    except SyncError as e:
        return _failed(node_id, e)
    return _done(node_id, f"已将 {old} 改名为 {name}。各乡镇、村同步后显示新名称。")


@bp.post("/nodes/<node_id>/revoke")
@require(*WRITE)
def revoke(node_id: str) -> Any:
    reason = _form("reason")
    try:
        node_admin.need_reason(reason)
        name = _act(lambda store: node_admin.member_name(store, node_id))
    except SyncError as e:
        return _failed(node_id, e)
    if request.form.get("confirm") != "yes":
        return render_template("county/nodes_confirm.html", node_id=node_id, name=name, reason=reason)
    try:
        _act(lambda store: node_admin.revoke(store, _key(), node_id, reason, who=me(), now_ms=now()))
    except SyncError as e:
        return _failed(node_id, e)
    return _done(node_id, f"已吊销 {name}（{reason}）。它以后写入的数据到县里会被隔离待审。")


@bp.post("/nodes/<node_id>/fork")
@require(*WRITE)
def fork(node_id: str) -> Any:
    reason, feed = _form("reason"), _form("feed") or None
    try:
        feed, seq = _act(
            lambda store: node_admin.resolve_fork(store, _key(), node_id, reason, who=me(), now_ms=now(), feed=feed)
        )
    except SyncError as e:
        return _failed(node_id, e, "#forks")
    return _done(
        node_id,
        f"已裁决分叉：以县级所存第 1–{seq} 条为准（{reason}）。裁决经乡镇下发，该村下次同步后解除冻结，"
        "并把另一分支上的办件重新登记上传。",
    )


@bp.post("/nodes/<node_id>/quarantine/<int:qid>/<how>")
@require(*WRITE)
def quarantine(node_id: str, qid: int, how: str) -> Any:
    decision = {"release": RELEASED, "refuse": REFUSED}.get(how)
    if decision is None:
        abort(404)
    reason = _form("reason")
    try:
        changed = _act(lambda store: node_admin.decide_quarantine(store, qid, decision, reason, who=me(), now_ms=now()))
    except SyncError as e:
        return _failed(node_id, e, "#quarantine")
    label = "放行" if decision == RELEASED else "拒收"
    if not changed:
        return _done(node_id, f"隔离批次 {qid} 早已{label}，没有再改动。")
    return _done(node_id, f"已{label}隔离批次 {qid}（{reason}）。")


@bp.post("/nodes/<node_id>/ack")
@require(*WRITE)
def ack(node_id: str) -> Any:
    note, feed = _form("note"), _form("feed")
    try:
        seq = int(_form("seq") or "0")
    except ValueError:
        abort(400)
    try:
        added = _act(lambda store: node_admin.acknowledge(store, feed, seq, note, who=me(), now_ms=now()))
    except SyncError as e:
        return _failed(node_id, e, "#conflicts")
    return _done(node_id, "已确认，说明已记下。" if added else "这一条早已确认过。")
