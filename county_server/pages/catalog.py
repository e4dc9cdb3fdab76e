"""事项清单: the catalog as released, importing a file with a preview, editing one item, releases and diffs.

Routes (blueprint `catalog`; reading needs 管理员 or 监察员, every change 管理员):

    GET  /catalog                              the items (在用/暂停/取消), search and filters, the release in force
    GET  /catalog/item/<code>                  one item in full, its versions; 修改, 暂停/取消/恢复, 办事指南
    GET  /catalog/item/<code>/guide            the printable 办事指南 (A4; ?version=N for an earlier one)
    GET|POST /catalog/item/<code>/edit         edit one item (the import's checks) → its preview
    GET|POST /catalog/new                      add one item → its preview
    POST /catalog/item/<code>/state            暂停 / 取消 / 恢复 with a reason (a one-item release)
    GET|POST /catalog/import                   upload a CSV/XLSX/JSON file, mode 增量 or 全量替换 → its preview
    GET  /catalog/preview/<upload_id>          the preview: added, changed field by field, cancelled, bad cells
    POST /catalog/preview/<upload_id>/publish  publish exactly what the preview showed (its digest), or refuse
    POST /catalog/preview/<upload_id>/discard  放弃: delete the upload, publish nothing
    GET  /catalog/releases                     the release history
    GET  /catalog/diff?a=N&b=M                 two releases compared field by field

An upload waits on the county's disk (`county_server.catalog_uploads`) between
its preview and the confirmation; the preview is computed again on every
view against the catalog as it is then, and the confirmation carries the
digest of the preview the administrator saw, so a catalog changed in between
is refused (`StalePreviewError`) and the fresh preview is shown instead.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from sanji_domain import catalog_import as importing
from sanji_domain import guide
from sanji_domain.catalog import CANCELLED, FORMS, IN_USE, LABELS, LEVELS, STATE_ACTIONS, STATES, SUSPENDED
from sanji_node.web.auth import require
from sync_protocol.errors import SyncError
from sync_protocol.sqlite_store import Store

from .. import catalog as county_catalog
from .. import catalog_uploads as uploads
from .catalog_form import (
    BLANK_ROWS,
    FIELDS,
    deadline_text,
    field_errors,
    form_values,
    level_text,
    posted_values,
    row_of,
    show_value,
)
from .common import READ, WRITE, county, error_text, flash_error, me, now

bp = Blueprint("catalog", __name__)
STATE_BADGES = {IN_USE: "green", SUSPENDED: "orange", CANCELLED: "grey"}
FORM_OVERHEAD = 64 * 1024  # the multipart framing and the other fields of the upload form


@bp.record_once
def _limit_uploads(state: Any) -> None:
    """Cap an upload's body before anything reads it (the CSRF check parses the form before any view runs)."""

    def limit() -> None:
        if request.method == "POST" and request.endpoint == "catalog.import_file":
            request.max_content_length = uploads.MAX_BYTES + FORM_OVERHEAD

    state.app.before_request_funcs.setdefault(None, []).insert(0, limit)


def _import_page(mode: str, error: str | None, status: int = 200) -> Any:
    page = render_template("county/catalog_import.html", modes=importing.MODES, mode=mode,
                           limit_mb=uploads.MAX_BYTES // (1024 * 1024), error=error)  # fmt: skip
    return page, status


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(e: RequestEntityTooLarge) -> Any:
    return _import_page(
        importing.INCREMENTAL, f"文件太大：事项清单文件不能超过 {uploads.MAX_BYTES // (1024 * 1024)} MB。", 413
    )


@bp.app_template_filter("catalog_value")
def _catalog_value(value: Any, field: str) -> str:
    return show_value(field, value)


def _store(fn: Any) -> Any:
    """Run `fn(store)` on the county's store under the workspace's lock."""
    ws = county().ws
    return ws.read(lambda _conn: fn(ws.store))


def _db(fn: Any) -> Any:
    ws = county().ws
    return ws.read(lambda _conn: fn(ws.store.db))


def _items(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    out = []
    for (body,) in db.execute("SELECT body FROM catalog_items ORDER BY task_code").fetchall():
        item = json.loads(body)
        item["fee_text"] = guide.fee_text(item)
        item["deadline_text"] = deadline_text(item)
        item["level_text"] = level_text(item)
        out.append(item)
    return out


def _release(db: sqlite_utils.Database) -> dict[str, Any] | None:
    row = db.execute("SELECT version, released_ms, source, count FROM catalog_releases ORDER BY version DESC LIMIT 1")
    found = row.fetchone()
    return dict(zip(("version", "released_ms", "source", "count"), found, strict=True)) if found else None


def _matches(item: dict[str, Any], text: str) -> bool:
    low = text.lower()
    return (
        text in item["name"]
        or low in item["task_code"].lower()
        or low in guide.initials(item["name"])
        or text == item.get("catalog_code")
    )


@bp.get("/catalog")
@require(*READ)
def index() -> Any:
    q = (request.args.get("q") or "").strip()
    state = request.args.get("state") or ""
    level = request.args.get("level") or ""
    items, release = _db(lambda db: (_items(db), _release(db)))
    counts = {s: sum(1 for i in items if i.get("state") == s) for s in STATES}
    shown = [
        i
        for i in items
        if (state not in STATES or i.get("state") == state)
        and (level not in LEVELS or i.get("level") == level)
        and (not q or _matches(i, q))
    ]
    shown.sort(key=lambda i: (STATES.index(i["state"]) if i.get("state") in STATES else 9, i["task_code"]))
    return render_template(
        "county/catalog.html", items=shown, total=len(items), counts=counts, release=release, q=q, state=state,
        level=level, states=STATES, levels=LEVELS, badges=STATE_BADGES,
    )  # fmt: skip


def _item(db: sqlite_utils.Database, code: str) -> dict[str, Any] | None:
    row = db.execute("SELECT body FROM catalog_items WHERE task_code = ?", (code,)).fetchone()
    return json.loads(row[0]) if row else None


def _no_item(code: str) -> Any:
    flash(f"事项清单中没有实施编码为 {code} 的事项。", "error")
    return redirect(url_for("catalog.index"))


@bp.get("/catalog/item/<code>")
@require(*READ)
def item(code: str) -> Any:
    def read(db: sqlite_utils.Database) -> tuple[Any, list[dict[str, Any]]]:
        versions = [
            {"version": v, "state": json.loads(body).get("state"), "released_ms": ms}
            for v, body, ms in db.execute(
                "SELECT v.version, v.body, r.released_ms FROM catalog_item_versions v "
                "LEFT JOIN catalog_releases r ON r.version = v.version WHERE v.task_code = ? ORDER BY v.version DESC",
                (code,),
            ).fetchall()
        ]
        return _item(db, code), versions

    found, versions = _db(read)
    if found is None:
        return _no_item(code)
    found["fee_text"], found["material_rows"] = guide.fee_text(found), guide.material_rows(found)
    found["deadline_text"], found["level_text"] = deadline_text(found), level_text(found)
    return render_template(
        "county/catalog_item.html", item=found, versions=versions, badges=STATE_BADGES,
        state_forms=_state_forms(found.get("state", IN_USE)),
    )  # fmt: skip


def _state_forms(state: str) -> list[dict[str, Any]]:
    """The 暂停 / 取消 / 恢复 forms an item in `state` offers (a reason is needed to suspend or cancel)."""
    forms = []
    if state == IN_USE:
        forms.append({"state": SUSPENDED, "label": "暂停原因", "button": "暂停这个事项", "css": "", "required": True,
                      "placeholder": "例如：政策调整，暂停受理"})  # fmt: skip
    if state != CANCELLED:
        forms.append({"state": CANCELLED, "label": "取消原因", "button": "取消这个事项", "css": "danger",
                      "required": True, "placeholder": "例如：省级清单已取消该事项"})  # fmt: skip
    if state != IN_USE:
        forms.append({"state": IN_USE, "label": "恢复说明（可不填）", "button": "恢复在用", "css": "primary",
                      "required": False, "placeholder": ""})  # fmt: skip
    return forms


@bp.get("/catalog/item/<code>/guide")
@require(*READ)
def guide_print(code: str) -> Any:
    version = request.args.get("version", type=int)

    def read(db: sqlite_utils.Database) -> Any:
        if version is None:
            return _item(db, code)
        row = db.execute(
            "SELECT body FROM catalog_item_versions WHERE task_code = ? AND version = ?", (code, version)
        ).fetchone()
        return json.loads(row[0]) if row else None

    found = _db(read)
    if found is None:
        return _no_item(code)
    found["fee_text"], found["material_rows"] = guide.fee_text(found), guide.material_rows(found)
    found["deadline_text"], found["level_text"] = deadline_text(found), level_text(found)
    return render_template("county/guide_print.html", item=found, type_text=show_value("item_type", found["item_type"]))


# -- editing one item ------------------------------------------------------------------------------
def _edit(code: str | None) -> Any:
    old = _db(lambda db: _item(db, code)) if code else None
    if code and old is None:
        return _no_item(code)
    if request.method == "GET":
        values = form_values(old) if old else {f.key: "" for f in FIELDS} | {"materials": [], "fees": [], "visits": "1"}
        return _edit_form(old, values, {})
    values = posted_values(request.form)
    row = row_of(values, old)
    new_code = row[LABELS["task_code"]]
    if old is None and new_code and _db(lambda db: _item(db, new_code)) is not None:
        msg = f"实施编码 {new_code} 已在事项清单中；要修改它，请到该事项的页面点「修改」"
        return _edit_form(old, values, {"task_code": [msg]}), 400
    source = f"修改事项 {new_code}" if old else f"新增事项 {new_code}"
    try:
        preview = _store(lambda store: county_catalog.preview_item(store, row, source=source))
    except SyncError as e:
        return _edit_form(old, values, {"": [error_text(e)]}), 400
    if not preview.ok:
        return _edit_form(old, values, field_errors(preview.problems)), 400
    if not preview.written:
        flash("没有修改任何内容。", "info")
        return redirect(url_for("catalog.item", code=new_code))
    data = json.dumps(row, ensure_ascii=False).encode()
    upload = uploads.save(
        county().node.data.path, data, name=source, mode=importing.INCREMENTAL, kind=uploads.EDIT,
        login=str(me().get("login") or ""), now_ms=now(), target=new_code,
    )  # fmt: skip
    return redirect(url_for("catalog.preview", upload_id=upload.upload_id))


def _edit_form(old: dict[str, Any] | None, values: dict[str, str], errors: dict[str, list[str]]) -> str:
    return render_template(
        "county/catalog_edit.html", item=old, fields=FIELDS, values=values, errors=errors, blank_rows=BLANK_ROWS,
        forms=FORMS,
    )  # fmt: skip


@bp.route("/catalog/item/<code>/edit", methods=["GET", "POST"])
@require(*WRITE)
def edit(code: str) -> Any:
    return _edit(code)


@bp.route("/catalog/new", methods=["GET", "POST"])
@require(*WRITE)
def new() -> Any:
    return _edit(None)


@bp.post("/catalog/item/<code>/state")
@require(*WRITE)
def change_state(code: str) -> Any:
    state = request.form.get("state", "")
    reason = (request.form.get("reason") or "").strip()
    if state not in STATES:
        flash("请选择暂停、取消或恢复。", "error")
        return redirect(url_for("catalog.item", code=code))
    ws = county().ws
    try:
        release = _store(
            lambda store: county_catalog.change_state(store, ws.node.key, code, state, reason, now(), who=me())
        )
    except SyncError as e:
        flash_error(e)
        return redirect(url_for("catalog.item", code=code))
    flash(
        f"已{STATE_ACTIONS[state]}这个事项，发布为事项清单第 {release['version']} 版；各乡镇、村同步后生效。", "success"
    )
    return redirect(url_for("catalog.item", code=code))


# -- importing a file ------------------------------------------------------------------------------
@bp.route("/catalog/import", methods=["GET", "POST"])
@require(*WRITE)
def import_file() -> Any:
    limit_mb = uploads.MAX_BYTES // (1024 * 1024)
    if request.method == "GET":
        return _import_page(importing.INCREMENTAL, None)
    mode = request.form.get("mode", importing.INCREMENTAL)
    if mode not in importing.MODES:
        return _import_page(importing.INCREMENTAL, "请选择导入方式：增量 或 全量替换。", 400)
    f = request.files.get("file")
    if f is None or not f.filename:
        return _import_page(mode, "请选择要导入的事项清单文件（.csv、.xlsx 或 .json）。", 400)
    data = f.read(uploads.MAX_BYTES + 1)
    if len(data) > uploads.MAX_BYTES:
        return _import_page(mode, f"文件太大：事项清单文件不能超过 {limit_mb} MB。", 413)
    if not data:
        return _import_page(mode, f"文件 {f.filename} 是空的。", 400)
    name = f.filename.replace("\\", "/").rsplit("/", 1)[-1]
    if not name.lower().endswith((".csv", ".xlsx", ".xlsm", ".json")):
        return _import_page(
            mode, f"{name}: 事项清单应为 .csv、.xlsx 或 .json 文件（.xls 请在 Excel 中另存为 .xlsx）。", 400
        )
    upload = uploads.save(county().node.data.path, data, name=name, mode=mode, kind=uploads.IMPORT,
                          login=str(me().get("login") or ""), now_ms=now())  # fmt: skip
    return redirect(url_for("catalog.preview", upload_id=upload.upload_id))


def _preview_of(upload: uploads.Upload, data: bytes) -> importing.ImportPreview:
    if upload.kind == uploads.EDIT:
        row = json.loads(data.decode("utf-8"))
        return _store(lambda store: county_catalog.preview_item(store, row, source=upload.name))  # type: ignore[no-any-return]
    return _store(lambda store: county_catalog.preview_import(store, data, upload.name, mode=upload.mode))  # type: ignore[no-any-return]


def _load(upload_id: str) -> tuple[uploads.Upload, bytes]:
    """The upload and its bytes; an unknown (published, discarded, expired) one goes back to the import page."""
    try:
        return uploads.load(county().node.data.path, upload_id)
    except SyncError as e:
        flash_error(e)
        abort(redirect(url_for("catalog.import_file")))


@bp.get("/catalog/preview/<upload_id>")
@require(*WRITE)
def preview(upload_id: str) -> Any:
    upload, data = _load(upload_id)
    try:
        shown = _preview_of(upload, data)
    except SyncError as e:  # a file that cannot be read at all
        uploads.discard(county().node.data.path, upload_id)
        return _import_page(upload.mode, error_text(e), 400)
    written = {b["task_code"]: b for b in shown.written}
    for body in written.values():
        body["fee_text"], body["deadline_text"], body["level_text"] = (
            guide.fee_text(body),
            deadline_text(body),
            level_text(body),
        )
    return render_template(
        "county/catalog_preview.html", upload=upload, p=shown, written=written, labels=LABELS,
        changed_rows=[(c.task_code, c.fields) for c in shown.changed], names={c.task_code: c.name for c in shown.changed},
        replace=shown.mode == importing.REPLACE, edit=upload.kind == uploads.EDIT,
    ), 200 if shown.ok else 422  # fmt: skip


@bp.post("/catalog/preview/<upload_id>/publish")
@require(*WRITE)
def publish(upload_id: str) -> Any:
    upload, data = _load(upload_id)
    digest = request.form.get("digest", "")
    ws = county().ws
    action = "catalog.item" if upload.kind == uploads.EDIT else "catalog.publish"

    def publish_it(store: Store) -> dict[str, Any]:
        fresh = _preview_of(upload, data)
        return county_catalog.publish_import(store, ws.node.key, fresh, now_ms=now(), digest=digest, who=me(),
                                             action=action)  # fmt: skip

    try:
        release = _store(publish_it)
    except importing.StalePreviewError:
        current = _db(_release) or {"version": 0}
        flash(
            f"未发布：您预览之后，事项清单已有新版本（现行第 {current['version']} 版），这次没有发布任何内容。"
            "下面是按现行清单重新生成的预览，请核对后再确认。",
            "error",
        )
        return redirect(url_for("catalog.preview", upload_id=upload_id))
    except SyncError as e:
        flash_error(e)
        return redirect(url_for("catalog.preview", upload_id=upload_id))
    uploads.discard(county().node.data.path, upload_id)
    if release["version"] is None:
        flash("没有变化：文件与当前事项清单相同，未发布新版本。", "info")
        return redirect(url_for("catalog.index"))
    ch = release["changes"]
    flash(
        f"已发布事项清单第 {release['version']} 版（共 {release['count']} 项）：新增 {len(ch['added'])}，"
        f"变更 {len(ch['changed'])}，取消 {len(ch['cancelled'])}。各乡镇、村同步后生效。",
        "success",
    )
    if upload.kind == uploads.EDIT and upload.target:
        return redirect(url_for("catalog.item", code=upload.target))
    return redirect(url_for("catalog.releases"))


@bp.post("/catalog/preview/<upload_id>/discard")
@require(*WRITE)
def discard(upload_id: str) -> Any:
    uploads.discard(county().node.data.path, upload_id)
    flash("已放弃这次导入，未发布任何内容。", "info")
    return redirect(url_for("catalog.index"))


# -- releases and diffs ----------------------------------------------------------------------------
def _releases(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    who: dict[int, str] = {}
    for name, details in db.execute(
        "SELECT who_name, details FROM audit_log WHERE action IN ('catalog.publish', 'catalog.item', 'catalog.status')"
    ).fetchall():
        version = json.loads(details or "{}").get("version")
        if isinstance(version, int):
            who[version] = name
    out = []
    for (body,) in db.execute("SELECT body FROM catalog_releases ORDER BY version DESC").fetchall():
        r = json.loads(body)
        ch = r.get("changes") or {}
        out.append({
            "version": r["version"], "released_ms": r.get("released_ms"), "count": r.get("count", 0),
            "source": r.get("source", ""), "why": r.get("reason") or r.get("mode") or "",
            "added": len(ch.get("added", [])), "changed": len(ch.get("changed", [])),
            "cancelled": len(ch.get("cancelled", [])), "who": who.get(r["version"], ""),
        })  # fmt: skip
    return out


@bp.get("/catalog/releases")
@require(*READ)
def releases() -> Any:
    rows = _db(_releases)
    return render_template("county/catalog_releases.html", releases=rows)


@bp.get("/catalog/diff")
@require(*READ)
def diff() -> Any:
    versions = [r["version"] for r in _db(_releases)]
    if not versions:
        flash("还没有发布过事项清单。", "info")
        return redirect(url_for("catalog.releases"))
    b = request.args.get("b", type=int) or versions[0]
    a = request.args.get("a", type=int) or (versions[1] if len(versions) > 1 else versions[0])
    try:
        d = _store(lambda store: county_catalog.diff_releases(store, a, b))
    except SyncError as e:
        flash_error(e)
        return redirect(url_for("catalog.releases"))
    return render_template("county/catalog_diff.html", d=d, a=a, b=b, versions=versions, labels=LABELS)
