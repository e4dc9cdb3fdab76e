"""办事指南: find an item by any part of its name, its pinyin initials or its code; read it; print it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from sanji_node.actions import catalog
from sanji_node.web import workspace
from sanji_node.web.auth import require

bp = Blueprint("guide", __name__, url_prefix="/guide")


@bp.get("")
@require()
def index() -> Any:
    # the search text names an item (高龄, gljt), never a person: it may ride in the URL
    text = (request.args.get("q") or "").strip()[:50]
    items = catalog.search_items(workspace(), text)
    return render_template("village/guide.html", items=items, q=text)


@bp.get("/<task_code>")
@require()
def item(task_code: str) -> Any:
    return render_template("village/item.html", item=catalog.show_item(workspace(), task_code))
