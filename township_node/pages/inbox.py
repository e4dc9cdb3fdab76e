"""待办: the cases awaiting the township, most urgent first, and the cases a clerk covers for (A/B 岗)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, SubmitField
from wtforms.validators import Optional

from sanji_domain.search import CaseFilter
from sanji_domain.states import (
    ACCEPTED,
    COMPLETED,
    FORWARDED,
    IN_PROCESS,
    NEED_SUPPLEMENT,
    PRE_ACCEPTED,
    STATE_LABELS,
    SUBMITTED,
    SUSPENDED,
)
from sanji_node.actions import cases
from sanji_node.web.auth import require

from .. import absences, villages
from . import supervision
from .common import PAGE_SIZE, STAFF, local, me, options, page_number, today, ws

bp = Blueprint("inbox", __name__)

# the states in which the township has something to do: take in, accept, handle, chase 补正, deliver
TODO_STATES = (SUBMITTED, PRE_ACCEPTED, NEED_SUPPLEMENT, ACCEPTED, IN_PROCESS, SUSPENDED, COMPLETED)
STATE_CHOICES = [("", "全部待办")] + [(s, STATE_LABELS[s]) for s in TODO_STATES] + [(FORWARDED, "已转报（等县级）")]
ORDER_CHOICES = [("urgent", "最急的在前"), ("newest", "最新的在前")]
COVER_LIMIT = 50


class InboxFilter(FlaskForm):
    class Meta:
        csrf = False  # a GET form: it changes nothing

    village = SelectField("村", choices=[], validators=[Optional()])
    state = SelectField("状态", choices=options(STATE_CHOICES), validators=[Optional()])
    date_from = DateField("收件日期 从", validators=[Optional()])
    date_to = DateField("至", validators=[Optional()])
    order = SelectField("排序", choices=options(ORDER_CHOICES), default="urgent", validators=[Optional()])
    submit = SubmitField("筛选")


@bp.get("/")
@require(*STAFF)
def index() -> Any:
    w = ws()
    places = villages.villages(w)
    form = InboxFilter(request.args)
    form.village.choices = options([("", "全部村"), *places])
    valid = form.validate()
    village = form.village.data if valid and form.village.data else None
    state = form.state.data if valid and form.state.data else None
    order = form.order.data if valid and form.order.data in dict(ORDER_CHOICES) else "urgent"
    f = CaseFilter(
        village=village,
        state=state,
        states=() if state else TODO_STATES,
        date_from=form.date_from.data if valid else None,
        date_to=form.date_to.data if valid else None,
        order=order,
        county_copies=False,
    )
    page = page_number()
    result = cases.find_cases(w, f, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    user = me()
    covers = []
    for absence in local(lambda db: absences.covering(db, int(user["id"]), today=today())):
        found = cases.find_cases(
            w,
            CaseFilter(handled_by=absence["clerk_name"], state="open", order="urgent", county_copies=False),
            limit=COVER_LIMIT,
        )
        covers.append({"absence": absence, "cases": found})
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "township/inbox.html",
        form=form,
        result=result,
        covers=covers,
        args=args,
        cover_limit=COVER_LIMIT,
        notices=supervision.unread(),
    )
