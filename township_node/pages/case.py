"""One case at the window: its facts, applicant, materials, clock and history, and every transition the
township may make now (预受理, 受理, 补齐补正, 不予受理, 办理, 挂起/恢复, 转报, 办结, 送达, 撤回, 作废),
each a small form that records the signed-in clerk's name on the event; after it, the notice to print."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from sanji_domain.commands import SUSPEND_KINDS
from sanji_domain.states import ACTIONS
from sanji_node.actions import cases
from sanji_node.web import notices
from sanji_node.web.auth import require
from sync_protocol.errors import SyncError

from .common import STAFF, MultiCheckboxField, error_text, me, options, ws

bp = Blueprint("case", __name__)

# the notice to print right after an action (sanji_node.web.notices kinds)
NOTICE_AFTER = {
    "filed": "receipt",  # 窗口收件 just filed the case
    "accept": "accept",
    "request_supplement": "supplement",
    "reject": "reject",
    "complete": "complete",
    "deliver": "deliver",
}
# what each action means, in the window's words (shown above its button)
HELP = {
    "submit": "草稿材料已齐：正式收件。",
    "pre_accept": "材料初审通过，先预受理，再做受理决定。",
    "accept": "材料齐全、符合条件：受理，从明天起按工作日计时。",
    "request_supplement": "材料不全或不符合要求：一次性告知要补齐补正的材料（计时暂停）。",
    "supplement": "申请人已补齐材料：勾选收到的材料，恢复办理。",
    "reject": "不符合受理条件：不予受理，须写明原因。",
    "start": "开始办理。",
    "suspend": "需要鉴定、公示等特别程序或其他原因暂停：挂起（计时暂停），须写明原因。",
    "resume": "恢复办理，继续计时。",
    "forward": "县级事项：转报县政务服务中心办理。",
    "complete": "办理完毕：写明办理结果，办结。",
    "deliver": "结果已交到申请人手中：送达。",
    "withdraw": "申请人撤回申请，须写明原因。",
    "void": "登记有误等原因作废本办件，须写明原因。",
}
RARE = ("withdraw", "void")  # kept behind 「其他操作」
# the order the window meets them in: the usual next step first
ORDER = (
    "accept", "pre_accept", "start", "complete", "deliver", "supplement", "resume", "request_supplement",
    "suspend", "forward", "reject", "submit", "withdraw", "void",
)  # fmt: skip


class NoteForm(FlaskForm):
    note = StringField("备注（可不填）", validators=[Optional(), Length(max=500, message="最多 500 字")])


class ReasonForm(FlaskForm):
    reason = TextAreaField("原因", validators=[DataRequired("请写明原因"), Length(max=500, message="最多 500 字")])


class SupplementRequestForm(FlaskForm):
    materials = MultiCheckboxField("需补齐补正的材料", choices=[], validate_choice=True)
    reason = TextAreaField("说明（要怎样补正）", validators=[Optional(), Length(max=400, message="最多 400 字")])

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        if ok and not self.materials.data and not (self.reason.data or "").strip():
            self.reason.errors = [*self.reason.errors, "请勾选要补的材料，或写明要怎样补正"]
            return False
        return ok


class SupplementDoneForm(FlaskForm):
    materials = MultiCheckboxField("这次收到的材料", choices=[], validate_choice=True)
    note = StringField("备注（可不填）", validators=[Optional(), Length(max=500, message="最多 500 字")])


class SuspendForm(FlaskForm):
    kind = RadioField("类型", choices=options((k, k) for k in SUSPEND_KINDS), default=SUSPEND_KINDS[0])
    reason = TextAreaField("原因", validators=[DataRequired("请写明原因"), Length(max=500, message="最多 500 字")])


class CompleteForm(FlaskForm):
    result = StringField(
        "办理结果",
        default="准予办理",
        validators=[DataRequired("请写明办理结果"), Length(max=200, message="最多 200 字")],
    )


FORMS: dict[str, type[FlaskForm]] = {
    "request_supplement": SupplementRequestForm,
    "supplement": SupplementDoneForm,
    "reject": ReasonForm,
    "suspend": SuspendForm,
    "complete": CompleteForm,
    "withdraw": ReasonForm,
    "void": ReasonForm,
}


def _material_names(detail: dict[str, Any]) -> list[str]:
    return [m["name"] for m in detail.get("materials") or [] if m.get("name")]


def _form(action: str, detail: dict[str, Any], *, posted: bool = False) -> FlaskForm:
    cls = FORMS.get(action, NoteForm)
    kw: dict[str, Any] = {"prefix": action}
    if not posted:
        kw["formdata"] = None
    if action == "request_supplement" and not posted:
        kw["data"] = {"materials": [n for n in detail.get("missing") or [] if n in _material_names(detail)]}
    form = cls(**kw)
    if action == "request_supplement":
        form.materials.choices = options((n, n) for n in _material_names(detail))
    if action == "supplement":  # a clearer copy of a material held already counts too
        form.materials.choices = options((n, n) for n in _material_names(detail))
    return form


def _data(action: str, form: Any) -> dict[str, Any]:
    """The transition's data from a validated form."""
    if action == "request_supplement":  # the materials asked for are recorded on the event (一次告知)
        asked = list(form.materials.data or [])
        reason = (form.reason.data or "").strip() or "需补齐补正的材料：" + "、".join(asked)
        return {"reason": reason, "requested": asked}
    if action == "supplement":
        data: dict[str, Any] = {"materials": list(form.materials.data or [])}
        if (form.note.data or "").strip():
            data["reason"] = form.note.data.strip()
        return data
    if action == "suspend":
        return {"kind": form.kind.data, "reason": form.reason.data.strip()}
    if action == "complete":
        return {"result": form.result.data.strip()}
    if hasattr(form, "reason"):
        return {"reason": form.reason.data.strip()}
    note = (form.note.data or "").strip()
    return {"reason": note} if note else {}


def _actions(detail: dict[str, Any]) -> list[dict[str, str]]:
    """What the township may do now; nothing on the county's copy of a forwarded case."""
    if detail.get("origin_case_id"):
        return []
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(detail.get("actions") or [], key=lambda a: rank.get(a["action"], len(ORDER)))


def _render(detail: dict[str, Any], posted: tuple[str, FlaskForm, str | None] | None = None) -> Any:
    acts = _actions(detail)
    forms = {a["action"]: _form(a["action"], detail) for a in acts}
    failed = None
    if posted is not None:
        forms[posted[0]] = posted[1]
        failed = {"action": posted[0], "message": posted[2]}
    done = request.args.get("done")
    done_notice = None
    if done in NOTICE_AFTER and not detail.get("origin_case_id"):
        done_notice = {"kind": NOTICE_AFTER[done], "label": notices.KINDS[NOTICE_AFTER[done]]}
    return render_template(
        "township/case.html",
        case=detail,
        acts=[a for a in acts if a["action"] not in RARE],
        rare=[a for a in acts if a["action"] in RARE],
        forms=forms,
        help=HELP,
        failed=failed,
        done_label="收件" if done == "filed" else ACTIONS[done].label if done in ACTIONS else None,
        done_notice=done_notice,
        printable=notices.available(detail),
    )


@bp.get("/case/<case_id>")
@require(*STAFF)
def show(case_id: str) -> Any:
    return _render(cases.show_case(ws(), case_id))


@bp.post("/case/<case_id>/act/<action>")
@require(*STAFF)
def act(case_id: str, action: str) -> Any:
    w = ws()
    detail = cases.show_case(w, case_id)
    allowed = {a["action"] for a in _actions(detail)}
    if action not in allowed:
        label = ACTIONS[action].label if action in ACTIONS else action
        flash(f"办件现在是「{detail['state_label']}」，不能{label}。(not allowed now)", "error")
        return redirect(url_for("case.show", case_id=detail["case_id"]))
    form = _form(action, detail, posted=True)
    if not form.validate_on_submit():
        return _render(detail, (action, form, None)), 400
    try:
        cases.transition(w, detail["case_id"], action, _data(action, form), person=me()["name"])
    except SyncError as e:
        return _render(cases.show_case(w, case_id), (action, form, error_text(e))), 400
    flash(f"已{ACTIONS[action].label}：办件 {detail['number']}（{detail['item_name']}）", "success")
    return redirect(url_for("case.show", case_id=detail["case_id"], done=action))
