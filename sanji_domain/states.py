"""The case state machine (办件状态) and the deterministic fold of a case's events.

    DRAFT ─► SUBMITTED(收件) ─► PRE_ACCEPTED ─► ACCEPTED(受理) ─► IN_PROCESS ─► COMPLETED(办结) ─► DELIVERED(送达)
                  ▲                 │  │                            │  ▲  │
                  └─ NEED_SUPPLEMENT◄┘  └► NOT_ACCEPTED(不予受理)     │  └──┴► SUSPENDED(挂起/特别程序)
                       (补齐补正, clock off)                           └► FORWARDED(转报 → linked county case)
    any open state ─► WITHDRAWN(撤回) | VOIDED(作废)

Each transition is an *action* a role may take from some states. Events come
from several authors (the village agent, the township clerk, the county), so
the state of a case is the fold of all its events in one total order:
(hlc, author node, feed, seq). An event that is not a legal transition at its
place in that order is kept and marked as a conflict, with the reason; it
never changes the state and never disappears. Every node that holds the same
events therefore computes the same state and the same conflicts, whatever
order the events arrived in.

A 补正 requested after acceptance returns the case to where it was once the
materials are supplemented; 补正, 挂起 and 特别程序 intervals after acceptance
pause the working-day clock (see `workdays`).

Forwarding (转报) names a linked county case. The county's actions on the
linked case (accept, start, suspend, complete, reject) drive the linked
case's own state; its 办结 or 不予受理 also closes the origin case.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

DRAFT = "DRAFT"
SUBMITTED = "SUBMITTED"
PRE_ACCEPTED = "PRE_ACCEPTED"
NEED_SUPPLEMENT = "NEED_SUPPLEMENT"
NOT_ACCEPTED = "NOT_ACCEPTED"
ACCEPTED = "ACCEPTED"
IN_PROCESS = "IN_PROCESS"
SUSPENDED = "SUSPENDED"
FORWARDED = "FORWARDED"
COMPLETED = "COMPLETED"
DELIVERED = "DELIVERED"
WITHDRAWN = "WITHDRAWN"
VOIDED = "VOIDED"

STATE_LABELS = {
    DRAFT: "草稿",
    SUBMITTED: "已收件",
    PRE_ACCEPTED: "预受理",
    NEED_SUPPLEMENT: "补齐补正",
    NOT_ACCEPTED: "不予受理",
    ACCEPTED: "已受理",
    IN_PROCESS: "办理中",
    SUSPENDED: "挂起",
    FORWARDED: "已转报",
    COMPLETED: "已办结",
    DELIVERED: "已送达",
    WITHDRAWN: "已撤回",
    VOIDED: "已作废",
}
STATES = tuple(STATE_LABELS)
OPEN_STATES = frozenset({DRAFT, SUBMITTED, PRE_ACCEPTED, NEED_SUPPLEMENT, ACCEPTED, IN_PROCESS, SUSPENDED, FORWARDED})
CLOSED_STATES = frozenset(STATES) - OPEN_STATES
# states in which the working-day clock does not run (after acceptance)
PAUSED_STATES = frozenset({NEED_SUPPLEMENT, SUSPENDED})

AGENT, CLERK, COUNTY = "agent", "clerk", "county"
ROLE_LABELS = {AGENT: "代办员", CLERK: "窗口工作人员", COUNTY: "县级管理员"}
NODE_ROLE_ACTOR = {"village": AGENT, "township": CLERK, "county": COUNTY}

_RETURN = "<return>"  # target: the state the case was in before 补正 was asked


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    # source state -> roles that may take the action from it
    sources: dict[str, frozenset[str]]
    target: str
    needs_reason: bool = False


def _from(states: Iterable[str], *roles: str) -> dict[str, frozenset[str]]:
    return {s: frozenset(roles) for s in states}


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("submit", "收件", _from([DRAFT], AGENT, CLERK), SUBMITTED),
        Action("pre_accept", "预受理", _from([SUBMITTED], CLERK, COUNTY), PRE_ACCEPTED),
        Action(
            "request_supplement",
            "补齐补正",
            _from([SUBMITTED, PRE_ACCEPTED, ACCEPTED, IN_PROCESS], CLERK, COUNTY),
            NEED_SUPPLEMENT,
            needs_reason=True,
        ),
        Action("supplement", "补正完成", _from([NEED_SUPPLEMENT], AGENT, CLERK), _RETURN),
        Action("accept", "受理", _from([SUBMITTED, PRE_ACCEPTED], CLERK, COUNTY), ACCEPTED),
        Action(
            "reject",
            "不予受理",
            {**_from([SUBMITTED, PRE_ACCEPTED], CLERK, COUNTY), **_from([FORWARDED], COUNTY)},
            NOT_ACCEPTED,
            needs_reason=True,
        ),
        Action("start", "办理", _from([ACCEPTED], CLERK, COUNTY), IN_PROCESS),
        Action("suspend", "挂起", _from([ACCEPTED, IN_PROCESS], CLERK, COUNTY), SUSPENDED, needs_reason=True),
        Action("resume", "恢复办理", _from([SUSPENDED], CLERK, COUNTY), IN_PROCESS),
        Action("forward", "转报", _from([ACCEPTED, IN_PROCESS], CLERK), FORWARDED),
        Action(
            "complete",
            "办结",
            {**_from([ACCEPTED, IN_PROCESS], CLERK, COUNTY), **_from([FORWARDED], COUNTY)},
            COMPLETED,
        ),
        Action("deliver", "送达", _from([COMPLETED], AGENT, CLERK, COUNTY), DELIVERED),
        Action("withdraw", "撤回", _from(OPEN_STATES, AGENT, CLERK), WITHDRAWN, needs_reason=True),
        Action("void", "作废", _from(OPEN_STATES, CLERK, COUNTY), VOIDED, needs_reason=True),
    )
}
ACTION_LABELS = {name: a.label for name, a in ACTIONS.items()}

CONFLICT_RULE = (
    "事件按 (时间戳, 作者节点, 序号) 的先后依次处理；与当时状态不符或角色无权的事件保留并标记为冲突，不改变状态 "
    "(events apply in (hlc, author, seq) order; one that is not a legal transition at its place is kept as a conflict)"
)


VILLAGE_HANDLED = "村受理村办结"  # items the village itself accepts and completes


def acting_role(role: str, village_mode: str | None) -> str:
    """The role an actor plays on a case: a village agent handles 村受理村办结 items as a window would."""
    return CLERK if role == AGENT and village_mode == VILLAGE_HANDLED else role


def allowed(action: str, state: str, role: str) -> str | None:
    """None if `role` may take `action` from `state`; otherwise why not (Chinese, for people)."""
    a = ACTIONS.get(action)
    if a is None:
        return f"未知的操作 {action!r} (unknown action; one of {', '.join(ACTIONS)})"
    roles = a.sources.get(state)
    if roles is None:
        return f"办件处于「{STATE_LABELS.get(state, state)}」状态，不能{a.label} (not allowed from {state})"
    if role not in roles:
        return f"{ROLE_LABELS.get(role, role)}无权在「{STATE_LABELS[state]}」状态下{a.label} (role {role} may not {action})"
    return None


@dataclass(frozen=True)
class Event:
    """One `case.event` entry as the fold sees it."""

    case_id: str
    action: str
    role: str
    author: str  # node id of the feed's author
    feed: str
    seq: int
    hlc: int
    at_ms: int
    body: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def order(self) -> tuple[int, str, str, int]:
        return (self.hlc, self.author, self.feed, self.seq)


@dataclass
class Applied:
    event: Event
    before: str
    after: str
    conflict: str | None = None  # the reason the event did not apply


@dataclass
class CaseState:
    state: str
    history: list[Applied]
    accepted_ms: int | None = None
    completed_ms: int | None = None
    delivered_ms: int | None = None
    closed_ms: int | None = None
    linked_case_id: str | None = None
    # (start_ms, end_ms or None) intervals after acceptance in which the clock stood still
    pauses: list[tuple[int, int | None]] = field(default_factory=list)
    result: str | None = None

    @property
    def conflicts(self) -> list[Applied]:
        return [a for a in self.history if a.conflict]


def fold_case(initial: str, events: Sequence[Event], *, linked: Sequence[Event] = ()) -> CaseState:
    """The state of a case from its first state and all its events, in the one total order.

    `linked` are the events of the county case linked by a 转报: their 办结 and
    不予受理 also close this case (as the county's action from FORWARDED).
    """
    merged = sorted([*events, *(e for e in linked if e.action in ("complete", "reject"))], key=lambda e: e.order)
    cs = CaseState(initial, [])
    back = SUBMITTED
    for ev in merged:
        before = cs.state
        why = allowed(ev.action, before, ev.role)
        if why is not None:
            cs.history.append(Applied(ev, before, before, why))
            continue
        a = ACTIONS[ev.action]
        after = back if a.target == _RETURN else a.target
        if after == NEED_SUPPLEMENT:
            back = before if before in (ACCEPTED, IN_PROCESS) else SUBMITTED
        if after == ACCEPTED and cs.accepted_ms is None:
            cs.accepted_ms = ev.at_ms
        if cs.accepted_ms is not None:
            if after in PAUSED_STATES and before not in PAUSED_STATES:
                cs.pauses.append((ev.at_ms, None))
            elif before in PAUSED_STATES and after not in PAUSED_STATES and cs.pauses and cs.pauses[-1][1] is None:
                cs.pauses[-1] = (cs.pauses[-1][0], ev.at_ms)
        if ev.action == "forward":
            cs.linked_case_id = ev.body.get("linked_case_id")
        if after == COMPLETED:
            cs.completed_ms = ev.at_ms
            cs.result = ev.body.get("result") or cs.result
        if after == DELIVERED:
            cs.delivered_ms = ev.at_ms
        if after in CLOSED_STATES and after != DELIVERED:
            cs.closed_ms = ev.at_ms
            if after != COMPLETED:
                cs.result = ev.body.get("reason") or cs.result
        cs.state = after
        cs.history.append(Applied(ev, before, after))
    if cs.state in CLOSED_STATES and cs.pauses and cs.pauses[-1][1] is None:
        cs.pauses[-1] = (cs.pauses[-1][0], cs.closed_ms)
    return cs
