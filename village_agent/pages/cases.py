"""我的办件 and 办件详情: find a case, read its history, answer a 补正, 村办结, 送达, 好差评, print its notices.

A search by name, 身份证号, case number or 查询码 is personal data: it is
POSTed, kept in this process under a token in the session, and the list is
shown by a redirect, so it never appears in a URL or in the browser's history.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, RadioField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from sanji_domain.applicant import mask_id
from sanji_domain.commands import LEVEL_LABELS
from sanji_domain.search import CaseFilter
from sanji_domain.states import ACTIONS, STATE_LABELS
from sanji_node.actions import cases, evaluations
from sanji_node.web import workspace
from sanji_node.web.auth import require
from sanji_node.web.case_form import plain_message
from sanji_node.web.notices import available
from sanji_node.web.searches import searches
from sync_protocol.errors import SyncError

from .common import parse_day, person, village

bp = Blueprint("cases", __name__, url_prefix="/cases")

PAGE_SIZE = 20
# actions with a form of their own on the case page (the rest share the generic action form)
OWN_FORMS = ("supplement", "deliver")
STATE_CHOICES = [("", "全部"), ("open", "在办（未办结）"), *STATE_LABELS.items()]


class SearchForm(FlaskForm):  # type: ignore[misc]
    text = StringField("姓名、身份证号、办件编号或查询码", validators=[Length(max=60, message="最多 60 个字")])


class ActForm(FlaskForm):  # type: ignore[misc]
    action = HiddenField(validators=[InputRequired("没有选择操作")])
    reason = TextAreaField("原因", validators=[Length(max=500, message="原因最多 500 个字")])
    result = StringField("办理结果", validators=[Length(max=200, message="办理结果最多 200 个字")])
    confirm = BooleanField("办理结果已交给村民本人（或其委托人）")


class SupplementForm(FlaskForm):  # type: ignore[misc]
    materials = SelectMultipleField(
        "村民这次补来的材料",
        choices=[],
        validate_choice=False,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )


class EvaluationForm(FlaskForm):  # type: ignore[misc]
    level = RadioField(
        "村民的评价",
        choices=[SelectChoice(str(k), v) for k, v in sorted(LEVEL_LABELS.items(), reverse=True)],
        validators=[InputRequired("请选择村民的评价")],
        validate_choice=False,
    )
    stage = RadioField("评价的环节", choices=["办结", "受理"], default="办结", validate_choice=False)
    comment = TextAreaField("村民的意见", validators=[Length(max=500, message="意见最多 500 个字")])


# -- 我的办件 ----------------------------------------------------------------------------------------


def _filters() -> dict[str, str]:
    """The list's filters that may ride in the URL (no personal data): state and dates."""
    state = request.args.get("state", "open")
    state = state if state in dict(STATE_CHOICES) else "open"
    return {
        "state": state,
        "date_from": request.args.get("date_from", "")[:10],
        "date_to": request.args.get("date_to", "")[:10],
    }


@bp.get("")
@require()
def index() -> Any:
    ws = workspace()
    v = village()
    args = _filters()
    text = searches().recall()
    try:
        page_no = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page_no = 1
    f = CaseFilter(
        text=text or None,
        state=args["state"] or None,
        village=v.config.node_id,
        date_from=parse_day(args["date_from"]),
        date_to=parse_day(args["date_to"]),
    )
    page = cases.find_cases(ws, f, offset=(page_no - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    form = SearchForm()
    form.text.data = text
    return render_template(
        "village/cases.html",
        page=page,
        args=args,
        text=text,
        form=form,
        receipts=_receipts(v),
        states=STATE_CHOICES,
    )


@bp.post("")
@require()
def search() -> Any:
    """The search text (personal data) goes into this process, not into the URL; then back to the list."""
    form = SearchForm()
    args = {k: (request.form.get(k) or "")[:10] for k in ("state", "date_from", "date_to")}
    if request.form.get("clear") or not form.validate():
        searches().drop()
    else:
        searches().remember((form.text.data or "").strip())
    kept: dict[str, Any] = {k: val for k, val in args.items() if val or k == "state"}
    return redirect(url_for(".index", **kept))


def _receipts(v: Any) -> dict[str, dict[str, bool]]:
    """case_id → {held_by_parent (已送达乡镇), receipted_by_county (县级已接收)}."""
    if v.node is None:
        return {}
    return {c["case_id"]: c for c in v.node.status()["cases"]}


# -- 办件详情 ----------------------------------------------------------------------------------------


@bp.get("/<case_id>")
@require()
def detail(case_id: str) -> Any:
    return _detail(case_id)


def _detail(case_id: str, *, status: int = 200, **forms: Any) -> Any:
    ws = workspace()
    case = cases.show_case(ws, case_id)
    names = {a["action"] for a in case["actions"]}
    supplement = forms.get("supplement") or SupplementForm()
    missing = [m for m in case["materials"] if not m.get("received")]
    asked = _last(case, "request_supplement")
    wanted = [*((asked or {}).get("asked_materials") or []), *(m["name"] for m in missing)]
    supplement.materials.choices = list(dict.fromkeys(wanted)) or [str(m["name"]) for m in case["materials"]]
    evaluation = forms.get("evaluation") or EvaluationForm()
    if not evaluation.is_submitted():
        evaluation.stage.data = "办结" if case["state"] in ("COMPLETED", "DELIVERED") else "受理"
    applicant = case["applicant"] if isinstance(case["applicant"], dict) else None
    act = forms.get("act")
    shown = names - {"supplement"}
    act_errors = [] if act is None or act.action.data in shown else [*act.reason.errors, *act.action.errors]
    just_filed = session.get("just_filed") == case["case_id"]
    if just_filed:
        session.pop("just_filed", None)
    return (
        render_template(
            "village/case.html",
            case=case,
            applicant=applicant,
            id_masked=mask_id(applicant["id_number"]) if applicant and applicant.get("id_number") else "",
            applicant_note=case["applicant"] if isinstance(case["applicant"], str) else "",
            asked=asked,
            rejected=_last(case, "reject"),
            completed=_last(case, "complete"),
            missing=missing,
            actions=[a for a in case["actions"] if a["action"] not in OWN_FORMS],
            reasoned=[name for name, spec in ACTIONS.items() if spec.needs_reason],
            village_handled=_village_handled(case),
            can_supplement="supplement" in names,
            can_deliver="deliver" in names,
            can_evaluate=case["state"] not in ("DRAFT", "WITHDRAWN", "VOIDED"),
            evaluate_now=case["state"] in ("COMPLETED", "DELIVERED", "NOT_ACCEPTED"),
            supplement=supplement,
            evaluation=evaluation,
            act=act,
            act_errors=act_errors,
            notices=available(case),
            receipt=_receipts(village()).get(case["case_id"]),
            just_filed=just_filed,
        ),
        status,
    )


def _village_handled(case: dict[str, Any]) -> bool:
    """村受理村办结: the agent accepts and completes this case at the village."""
    return any(a["action"] in ("accept", "complete") for a in case["actions"])


def _last(case: dict[str, Any], action: str) -> dict[str, Any] | None:
    found = [e for e in case["events"] if e["action"] == action and not e["conflict"]]
    return found[-1] if found else None


@bp.post("/<case_id>/act")
@require()
def act(case_id: str) -> Any:
    """A state change the domain allows this agent now (村办结: 受理, 办结 …; 送达; 撤回)."""
    ws = workspace()
    form = ActForm()
    if not form.validate():
        return _detail(case_id, status=400, act=form)
    action = form.action.data
    if action == "deliver" and not form.confirm.data:
        form.confirm.errors = ["请确认办理结果已交给村民"]
        return _detail(case_id, status=400, act=form)
    data = {"reason": (form.reason.data or "").strip() or None, "result": (form.result.data or "").strip() or None}
    try:
        done = cases.transition(ws, case_id, action, data, person=person())
    except SyncError as e:
        form.reason.errors = [plain_message(e)]
        return _detail(case_id, status=400, act=form)
    flash(
        f"已{ACTIONS[action].label}：办件 {done['local_no']} 现为「{STATE_LABELS.get(done['to'], done['to'])}」。",
        "success",
    )
    return redirect(url_for(".detail", case_id=case_id))


@bp.post("/<case_id>/supplement")
@require()
def supplement(case_id: str) -> Any:
    """补正完成: the materials the villager has now brought are added to the case's checklist."""
    ws = workspace()
    form = SupplementForm()
    given = [m for m in form.materials.data or [] if m]
    if not form.validate() or not given:
        form.materials.errors = [*form.materials.errors, "请勾选村民这次补来的材料"]
        return _detail(case_id, status=400, supplement=form)
    try:
        cases.transition(ws, case_id, "supplement", {"materials": given}, person=person())
    except SyncError as e:
        form.materials.errors = [plain_message(e)]
        return _detail(case_id, status=400, supplement=form)
    flash("已登记补正材料，办件将随下次同步报送乡镇。", "success")
    return redirect(url_for(".detail", case_id=case_id))


@bp.post("/<case_id>/evaluate")
@require()
def evaluate(case_id: str) -> Any:
    """好差评: the villager's rating, recorded by the agent (渠道 代办, 对象 代办点)."""
    ws = workspace()
    form = EvaluationForm()
    if not form.validate():
        return _detail(case_id, status=400, evaluation=form)
    level = int(form.level.data) if str(form.level.data).isdigit() else 0
    data = {
        "case": case_id,
        "level": level,
        "stage": form.stage.data or "办结",
        "comment": (form.comment.data or "").strip() or None,
    }
    try:
        done = evaluations.evaluate(ws, data, person=person())
    except SyncError as e:
        form.level.errors = [plain_message(e)]
        return _detail(case_id, status=400, evaluation=form)
    extra = "这是差评，乡镇会安排整改和回访。" if done.get("rectification") else ""
    flash(f"已记录评价：{LEVEL_LABELS[level]}。{extra}", "success")
    return redirect(url_for(".detail", case_id=case_id))
