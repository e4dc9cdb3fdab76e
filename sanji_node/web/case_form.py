"""The case-filing form (收件), shared by the village agent (代办) and the township window (窗口收件).

One form for both roles: the item is chosen first (its 实施编码 rides in the
form; the item's materials make the checklist), then the applicant, the
materials brought, the 容缺 pledge where the item allows it, the 委托书编号 and
notes; the agent also says whether it was a home visit (上门代办). Every field
is checked with the domain's own checks (`sanji_domain.applicant`,
`commands.check_materials`), so the errors beside the fields are the domain's
words; filing then validates everything again, and an error it still raises is
put beside the field it names. Nothing is saved unless all of it passes.

A view uses it like this::

    form = case_form(item, role="agent")          # "clerk" at a window
    if form.validate_on_submit():
        outcome = file_from_form(ws, form, item, person=user["name"])
        if outcome.case is not None:
            return redirect(url_for(".detail", case_id=outcome.case["case_id"]))
        # else: outcome.duplicates (ask to confirm), or errors now beside the fields
    return render_template(..., form=form, item=item, duplicates=outcome.duplicates)

and the page renders it with the macro in `sanji/case_form.html`::

    {% from "sanji/case_form.html" import case_form with context %}
    {{ case_form(form, item, role="agent", duplicates=duplicates, case_endpoint="cases.detail") }}

The 身份证号 is also checked as it is typed by `static/case_form.js` (the
GB 11643 check character), which shows the same words beside the field; the
form works the same without JavaScript.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, RadioField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, StopValidation
from wtforms.widgets import CheckboxInput, ListWidget

from sanji_domain import applicant as checks
from sanji_domain.commands import check_materials
from sanji_domain.errors import ValidationError as DomainValidationError
from sync_protocol.errors import SyncError

from ..actions import cases
from ..workspace import Workspace, today

ROLES = ("agent", "clerk")
HOME_VISIT = "上门代办"  # written at the head of the notes: the case body has no field for it
NOTES_LIMIT = 2000


def _domain_check(check: Callable[[Any], Any]) -> Callable[[Any, Any], None]:
    """A WTForms validator that runs one of the domain's applicant checks and shows its message."""

    def validate(form: Any, fld: Any) -> None:
        try:
            check(fld.data)
        except DomainValidationError as e:
            raise StopValidation(plain_message(e)) from e

    return validate


def plain_message(e: SyncError) -> str:
    """A domain message for a person: the last line, without the batch prefix and the English glosses, and
    the hint: 申请人身份证号 430321********1234 校验位错误。请对照身份证原件重新输入."""
    line = e.message.strip().splitlines()[-1].strip()
    for prefix in ("办件: ", "办件："):
        if line.startswith(prefix):
            line = line[len(prefix) :]
    line = without_glosses(line)
    hint = without_glosses(e.hint or "")
    return line + (f"。{hint}" if hint and hint not in line else "")


def without_glosses(text: str) -> str:
    """The text without its parenthesised English glosses ("(GB 11643 check digit)"): pages speak Chinese."""
    return _GLOSS.sub("", text).strip()


_GLOSS = re.compile(r"\s*\([\x20-\x7e]*[A-Za-z][\x20-\x7e]*\)")


class CaseForm(FlaskForm):  # type: ignore[misc]
    """收件: one case. Build it with `case_form(item, role=)`, which sets the checklist from the item."""

    item = HiddenField()
    applicant_name = StringField(
        "申请人姓名",
        validators=[InputRequired("请填写申请人姓名"), _domain_check(checks.check_name)],
        render_kw={"autocomplete": "off", "maxlength": checks.MAX_NAME},
    )
    id_number = StringField(
        "身份证号",
        validators=[
            InputRequired("请填写申请人的 18 位身份证号"),
            _domain_check(lambda v: checks.check_id_number(v, today=today())),
        ],
        render_kw={"autocomplete": "off", "maxlength": 24, "data-id-number": "", "inputmode": "text"},
    )
    phone = StringField(
        "联系电话",
        validators=[InputRequired("请填写联系电话（手机或带区号的固定电话）"), _domain_check(checks.check_phone)],
        render_kw={"autocomplete": "off", "inputmode": "tel", "maxlength": 24},
    )
    address = StringField(
        "住址",
        validators=[_domain_check(checks.check_address)],
        render_kw={"autocomplete": "off", "maxlength": checks.MAX_ADDRESS},
    )
    materials = SelectMultipleField(
        "收取的材料",
        choices=[],
        validate_choice=False,  # the domain's check names an unknown material in Chinese
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    pledge = BooleanField("容缺受理：申请人承诺在规定时间内补齐缺少的材料")
    home_visit = RadioField(
        "上门代办",
        choices=[SelectChoice("否", "否，村民到站办理"), SelectChoice("是", "是，上门代办")],
        default="否",
        validate_choice=False,
    )
    proxy_no = StringField("委托书编号", validators=[Length(max=50, message="委托书编号最多 50 个字")])
    notes = TextAreaField("备注", validators=[Length(max=1800, message="备注最多 1800 个字")])
    confirm_duplicate = BooleanField("我已核实：该申请人确实要再办一件同一事项")

    def __init__(self, *args: Any, item: dict[str, Any] | None = None, role: str = "agent", **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.item_data: dict[str, Any] = item or {}
        self.role = role

    def validate_materials(self, fld: Any) -> None:
        """Every material must be the item's, and the required ones must be there (or pledged, if allowed)."""
        try:
            _, missing = check_materials(self.item_data, list(fld.data or []))
        except DomainValidationError as e:
            raise StopValidation(plain_message(e)) from e
        if missing and not (self.pledge.data and self.item_data.get("allow_pledge")):
            hint = "；本事项允许容缺受理，可勾选下方的容缺承诺" if self.item_data.get("allow_pledge") else ""
            raise StopValidation(f"缺少必要材料: {'、'.join(missing)}。请收齐后再收件{hint}")

    def request(self, person: str | None = None) -> dict[str, Any]:
        """The case request for `actions.cases.file_case`."""
        notes = (self.notes.data or "").strip()
        if self.role == "agent" and self.home_visit.data == "是":
            notes = f"【{HOME_VISIT}】{notes}"
        agent: dict[str, Any] = {"proxy_no": (self.proxy_no.data or "").strip() or None}
        if person:
            agent["name"] = person
        return {
            "item": self.item_data.get("task_code") or self.item.data,
            "applicant": {
                "name": self.applicant_name.data or "",
                "id_number": self.id_number.data or "",
                "phone": self.phone.data or "",
                "address": self.address.data or "",
            },
            "materials": list(self.materials.data or []),
            "pledge": bool(self.pledge.data and self.item_data.get("allow_pledge")),
            "agent": agent,
            "notes": notes[:NOTES_LIMIT] or None,
        }

    def put_error(self, e: SyncError) -> None:
        """Show a domain error beside the field it names (or above the form if it names none)."""
        text = plain_message(e)
        for words, name in _FIELD_WORDS:
            if any(w in text for w in words):
                fld = getattr(self, name)
                fld.errors = [*(fld.errors or []), text]
                return
        self.form_errors.append(text)


# which field a domain message is about, by the words it uses (first match wins)
_FIELD_WORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("身份证号",), "id_number"),
    (("姓名",), "applicant_name"),
    (("电话",), "phone"),
    (("住址",), "address"),
    (("材料",), "materials"),
    (("委托书",), "proxy_no"),
    (("备注",), "notes"),
)


def case_form(item: dict[str, Any], *, role: str = "agent", **kw: Any) -> CaseForm:
    """The form for `item` (as `actions.catalog.show_item` gives it); `role` is agent or clerk."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    form = CaseForm(item=item, role=role, **kw)
    form.item.data = item.get("task_code")
    form.materials.choices = [str(m["name"]) for m in item.get("materials") or []]
    if role == "clerk":
        form.proxy_no.label.text = "委托书编号（他人代为申请时填写）"
    return form


@dataclass
class Outcome:
    """What filing from the form did: the case filed, or the open cases to confirm first, or nothing."""

    case: dict[str, Any] | None = None
    duplicates: list[dict[str, Any]] = field(default_factory=list)


def file_from_form(ws: Workspace, form: CaseForm, *, person: str | None = None) -> Outcome:
    """File the validated form's case; first warn if the applicant has an open case of the same item.

    Returns `Outcome(case=…)` (with `query_code`) when filed; `Outcome(duplicates=…)` when the
    applicant already has one open and the form has not confirmed; `Outcome()` when the domain
    refused it (its message is then beside the field on the form).
    """
    request = form.request(person)
    try:
        id_number = checks.check_id_number(request["applicant"]["id_number"], today=today())
    except DomainValidationError as e:
        form.put_error(e)
        return Outcome()
    duplicates = cases.open_duplicates(ws, str(request["item"]), id_number)
    if duplicates and not form.confirm_duplicate.data:
        return Outcome(duplicates=duplicates)
    try:
        made = cases.file_case(ws, request, person=person)
    except DomainValidationError as e:
        form.put_error(e)
        return Outcome(duplicates=duplicates)
    return Outcome(case=made)
