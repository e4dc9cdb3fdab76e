"""办件查询: find any case of the township by name, 身份证号, case number or 查询码, with filters.

The search text may be personal (a name, an ID number), so it never goes into
a URL: the form posts it, the view keeps it in the signed session and
redirects to the list (POST-redirect-GET); the filters (state, village,
dates, order) are not personal and stay in the query string for paging.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, SubmitField
from wtforms.validators import Length, Optional

from sanji_domain.search import CaseFilter
from sanji_domain.states import STATE_LABELS
from sanji_node.actions import cases
from sanji_node.web.auth import require
from sanji_node.web.searches import searches

from .. import villages
from .common import PAGE_SIZE, STAFF, options, page_number, ws
from .inbox import ORDER_CHOICES

bp = Blueprint("cases", __name__)
STATE_CHOICES = [("", "全部状态"), ("open", "全部在办"), *list(STATE_LABELS.items())]


class SearchForm(FlaskForm):
    text = StringField(
        "姓名、身份证号、办件编号或查询码",
        validators=[Optional(), Length(max=60, message="最多 60 个字")],
        render_kw={"autocomplete": "off", "placeholder": "如 张秀英 或 430321…"},
    )
    submit = SubmitField("查询")
    clear = SubmitField("清除")


class ListFilter(FlaskForm):
    class Meta:
        csrf = False  # a GET form: it changes nothing

    village = SelectField("村", choices=[], validators=[Optional()])
    state = SelectField("状态", choices=options(STATE_CHOICES), validators=[Optional()])
    date_from = DateField("收件日期 从", validators=[Optional()])
    date_to = DateField("至", validators=[Optional()])
    order = SelectField("排序", choices=options(ORDER_CHOICES[::-1]), default="newest", validators=[Optional()])
    submit = SubmitField("筛选")


FILTER_KEYS = ("village", "state", "date_from", "date_to", "order")


@bp.route("/cases", methods=["GET", "POST"])
@require(*STAFF)
def index() -> Any:
    search = SearchForm()
    if search.validate_on_submit():
        if search.clear.data:
            searches().drop()
        else:
            searches().remember((search.text.data or "").strip())
        keep = {k: v for k, v in request.args.items() if k in FILTER_KEYS and v}
        return redirect(url_for("cases.index", **keep))
    text = searches().recall()
    if request.method == "GET":
        search.text.data = text
    w = ws()
    filters = ListFilter(request.args)
    filters.village.choices = options([("", "全部村"), *villages.villages(w)])
    valid = filters.validate()
    f = CaseFilter(
        text=text or None,
        village=(filters.village.data or None) if valid else None,
        state=(filters.state.data or None) if valid else None,
        date_from=filters.date_from.data if valid else None,
        date_to=filters.date_to.data if valid else None,
        order=filters.order.data if valid and filters.order.data in dict(ORDER_CHOICES) else "newest",
        county_copies=False,
    )
    page = page_number()
    result = cases.find_cases(w, f, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    args = {k: v for k, v in request.args.items() if k in FILTER_KEYS and v}
    return render_template(
        "township/cases.html", search=search, filters=filters, result=result, args=args, text=text
    ), (400 if search.errors else 200)
