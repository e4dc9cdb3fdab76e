"""The authorisation matrix (issue 12, point 11): each role's key tries every write and every claim it must not make.

A county database (tests/test_claims.py: one county, townships 城关镇 chengguan and 石桥乡 shiqiao, villages
梅花村 meihua and 新桥村 xinqiao under chengguan, 荷塘村 hetang under shiqiao) holds a little legit history:
a meihua case accepted by chengguan, a 差评 of it with its rectification, a chengguan window case and a hetang
case. xinqiao is then revoked. Each attempt is one entry, signed by a key (county, township chengguan, village
meihua, the revoked xinqiao, a stranger's), in a batch framed and signed as that node would send it, and
received by the county through the same code a push or a bundle takes (`Store.receive`, then the node's folds).

For every kind of docs/protocol.md §8.9 ("Who may write which kind") each key writes it in the feed it would
use, and the claims a body must not make are tried one by one (another village, another township, the wrong
channel, another village's 代办点, another place's case, another village's roster day, a report on another
township's village, a receipt in the township's name, a case id that is taken). Every attempt that the table
does not allow must end refused (the batch rejected, forbidden or quarantined) or kept as a reject (or, for a
case event, a conflict), must change none of the domain's tables, and must be logged (the `sanji` loggers,
which go to DATA/logs/sanji.log) with its feed and seq and no personal data. The controls, one per kind its
role may write, must be applied.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sanji_domain import commands, kinds
from sync_protocol import canonical
from sync_protocol.entries import Record
from sync_protocol.keys import SigningKey
from sync_protocol.membership import KIND_MEMBER, KIND_NAME, KIND_REVOKE
from sync_protocol.verify import Status

from ..test_claims import ACTORS, ELDER, KEYS, NODES, World, open_county
from ..test_hostile import hand_signed
from ..test_views_stats import at

STRANGER = SigningKey.from_seed(b"\x07" * 32)
DOMAIN_TABLES = (
    "cases", "case_events", "case_numbers", "case_pii", "evaluations", "rectifications", "roster", "settings", "calendar_days", "catalog_items", "catalog_item_versions", "catalog_releases", "cards",
    "node_contacts", "receipt_marks", "ack_marks", "nodes", "fork_resolutions",
)  # fmt: skip
# not state: `rectification_steps` keeps every step until its evaluation is known (the decision is `rectifications`);
# a conflicting case event is kept in `case_events`, marked, and counted in `cases.conflicts` (both shown at the county)
REFUSED, QUARANTINED, REJECT, CONFLICT, APPLIED, IGNORED = (
    "refused", "quarantined", "reject", "conflict", "applied", "ignored",
)  # fmt: skip


@dataclass
class Base:
    """The ids of the legit history the attempts aim at."""

    case: dict[str, Any]  # meihua's case, accepted by chengguan
    window: dict[str, Any]  # chengguan's window case
    other: dict[str, Any]  # hetang's case (shiqiao's village)
    evaluation: str  # meihua's 差评 of its case (a rectification is open)


@dataclass
class Attempt:
    name: str
    signer: str  # a node of NODES, or "stranger"
    feed: str
    kind: str
    key: str
    body: dict[str, Any]
    allowed: bool = False
    outcome: str = ""
    problems: list[str] = field(default_factory=list)


class Logged(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[tuple[World, Base, Logged]]:
    store = open_county(tmp_path / "county.sqlite")
    w = World(store)
    case = w.file("meihua", "王秀英", at("2026-11-02", 9))
    w.run(commands.transition(w.conn, ACTORS["chengguan"], case["local_no"], "accept", now_ms=at("2026-11-02", 10)))
    window = w.file("chengguan", "孙霞", at("2026-11-02", 11))
    other = w.file("hetang", "赵军", at("2026-11-02", 12))
    ev = w.run(
        commands.evaluate(w.conn, ACTORS["meihua"], {"case": case["case_id"], "level": 1}, now_ms=at("2026-11-03"))
    )
    revoke = {"last_valid": {}, "node": "xinqiao", "reason": "笔记本电脑遗失"}
    w.store.append(KEYS["county"], "county/*", [Record(KIND_REVOKE, "xinqiao", revoke, at("2026-11-03", 12) * 1000)])
    logged, logger = Logged(), logging.getLogger("sanji")
    logger.addHandler(logged)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield w, Base(case, window, other, ev.records[0].key), logged
    finally:
        logger.removeHandler(logged)
        logger.setLevel(old_level)
        store.close()


def public(node: str) -> str:
    return f"{node}/*" if NODES.get(node, ("village",))[0] != "village" else f"{node}/up"


def up(node: str) -> str:
    return f"{node}/up" if node != "county" else "county/meihua"


def to_village(node: str) -> str:
    """The feed a node would address to village meihua (a village has none: its own up feed)."""
    return {"county": "county/meihua", "chengguan": "chengguan/meihua"}.get(node, f"{node}/up")


def writes(node: str, b: Base) -> list[Attempt]:
    """Every kind of §8.9, written by `node` in the feed it would use, with a body a legit writer would write."""
    case_id, ev = b.case["case_id"], b.evaluation
    new_case = {**b.case, "case_id": f"{node}-new", "local_no": f"{node}-1"}
    if NODES[node][0] == "township":
        new_case.update(village=None, township=node, channel="窗口")
    elif NODES[node][0] == "village":
        new_case.update(village=node, township=NODES[node][2], channel="代办")
    evaluation = {"at_ms": at("2026-11-05"), "case_id": case_id, "evaluation_id": f"{node}-ev", "level": 4,
                  "stage": "办结", "target_type": "事项"}  # fmt: skip
    member = {"division": "430321105209", "node": "newv", "parent": "chengguan", "pubkey": STRANGER.public.hex,
              "role": "village"}  # fmt: skip
    role = NODES.get(node, ("village",))[0]
    # a clerk starts the accepted case; an agent withdraws the case it has just filed
    event_case, action = (case_id, "start") if role != "village" else (f"{node}-new", "withdraw")
    mine = {
        "county": {KIND_MEMBER, KIND_NAME, kinds.CATALOG_ITEM, kinds.CALENDAR_DAY, kinds.SETTING, kinds.CASE_NUMBER,
                   kinds.CARD_ISSUE, "sync.receipt", kinds.CASE_EVENT, kinds.RECTIFICATION},
        "township": {kinds.CASE_NEW, kinds.CASE_EVENT, kinds.EVALUATION, kinds.RECTIFICATION, kinds.NODE_CONTACT},
        "village": {kinds.CASE_NEW, kinds.CASE_EVENT, kinds.EVALUATION, kinds.ROSTER},
    }[role]  # fmt: skip
    rows = [
        (KIND_MEMBER, public(node), "newv", member),
        (KIND_NAME, public(node), "meihua", {"name": "改名村", "node": "meihua"}),
        (kinds.CATALOG_ITEM, public(node), ELDER, {**_catalog_body(), "name": "改过的事项"}),
        (kinds.CALENDAR_DAY, public(node), "2026-11-09", {"day": "2026-11-09", "kind": "holiday", "name": "假日"}),
        (kinds.SETTING, public(node), "warn_days", {"name": "warn_days", "value": 9}),
        (kinds.CASE_NUMBER, to_village(node), case_id, {"case_id": case_id, "official_no": "43032120261104999999"}),
        (kinds.CARD_ISSUE, to_village(node), f"{node}-card", {"at_ms": at("2026-11-05"), "by": "x", "case_id": case_id,
         "card_id": f"{node}-card", "level": "红牌", "reason": "冒名"}),
        ("sync.receipt", to_village(node), "meihua/up", {"feed": "meihua/up", "hash": "00" * 32, "seq": 1}),
        (kinds.CASE_NEW, up(node), f"{node}-new", new_case),
        (kinds.CASE_EVENT, to_village(node), event_case, {"action": action, "at_ms": at("2026-11-05"), "by": "x",
         "case_id": event_case}),
        (kinds.EVALUATION, up(node), f"{node}-ev", evaluation),
        (kinds.RECTIFICATION, up(node) if node != "county" else "county/chengguan", ev,
         {"at_ms": at("2026-11-06"), "evaluation_id": ev, "note": "已回访", "step": "followup"}),
        (kinds.ROSTER, up(node), f"{node}:2026-11-10", {"agent": "李", "day": "2026-11-10", "substitute": None}),
        (kinds.NODE_CONTACT, up(node), "meihua", {"node": "meihua", "last_seen_ms": 1, "waiting": 0, "forks": 0,
         "quarantined": 0, "backlog": 0, "oldest_unsent_hlc": 0}),
    ]  # fmt: skip
    return [Attempt(f"{node} writes {k} in {f}", node, f, k, key, body, k in mine) for k, f, key, body in rows]


def claims(b: Base) -> list[Attempt]:
    """The claims a body must not make, each by the key that would like to make it (in its own feed)."""
    c, w, o, ev = b.case, b.window, b.other, b.evaluation
    mv = {**c, "local_no": "m-2"}
    e = {"at_ms": at("2026-11-05"), "level": 1, "stage": "办结"}
    return [
        Attempt("village case names another village", "meihua", "meihua/up", kinds.CASE_NEW, "c-x1",
                {**mv, "case_id": "c-x1", "village": "xinqiao"}),
        Attempt("village case names another township", "meihua", "meihua/up", kinds.CASE_NEW, "c-x2",
                {**mv, "case_id": "c-x2", "township": "shiqiao"}),
        Attempt("village case on the window channel", "meihua", "meihua/up", kinds.CASE_NEW, "c-x3",
                {**mv, "case_id": "c-x3", "channel": "窗口"}),
        Attempt("village case born completed", "meihua", "meihua/up", kinds.CASE_NEW, "c-x4",
                {**mv, "case_id": "c-x4", "state": "COMPLETED"}),
        Attempt("case_id differs from the key", "meihua", "meihua/up", kinds.CASE_NEW, "c-x5",
                {**mv, "case_id": "c-other"}),
        Attempt("township case counted as a village's 代办", "chengguan", "chengguan/up", kinds.CASE_NEW, "c-x6",
                {**w, "case_id": "c-x6", "village": "meihua", "channel": "代办"}),
        Attempt("township takes a village's case id", "chengguan", "chengguan/up", kinds.CASE_NEW, c["case_id"],
                {**w, "case_id": c["case_id"]}),
        Attempt("village re-files its own case id", "meihua", "meihua/up", kinds.CASE_NEW, c["case_id"],
                {**c, "applicant": {"name": "别人"}}),
        Attempt("another township acts on a case", "shiqiao", "shiqiao/up", kinds.CASE_EVENT, c["case_id"],
                {"action": "complete", "at_ms": at("2026-11-05"), "by": "x", "case_id": c["case_id"]}),
        Attempt("another village acts on a case", "hetang", "hetang/up", kinds.CASE_EVENT, c["case_id"],
                {"action": "withdraw", "at_ms": at("2026-11-05"), "by": "x", "case_id": c["case_id"]}),
        Attempt("township evaluates as a village's 代办点", "chengguan", "chengguan/up", kinds.EVALUATION, "e-x1",
                {**e, "case_id": c["case_id"], "evaluation_id": "e-x1", "channel": "代办", "target_type": "代办点",
                 "target_name": "meihua"}),
        Attempt("village evaluates a window", "meihua", "meihua/up", kinds.EVALUATION, "e-x2",
                {**e, "case_id": c["case_id"], "evaluation_id": "e-x2", "target_type": "窗口"}),
        Attempt("village evaluates another village's 代办点", "meihua", "meihua/up", kinds.EVALUATION, "e-x3",
                {**e, "case_id": c["case_id"], "evaluation_id": "e-x3", "target_type": "代办点",
                 "target_name": "xinqiao"}),
        Attempt("village evaluates on the 现场 channel", "meihua", "meihua/up", kinds.EVALUATION, "e-x4",
                {**e, "case_id": c["case_id"], "evaluation_id": "e-x4", "channel": "现场"}),
        Attempt("village evaluates another village's case", "meihua", "meihua/up", kinds.EVALUATION, "e-x5",
                {**e, "case_id": o["case_id"], "evaluation_id": "e-x5"}),
        Attempt("township evaluates another township's case", "shiqiao", "shiqiao/up", kinds.EVALUATION, "e-x6",
                {**e, "case_id": c["case_id"], "evaluation_id": "e-x6", "target_type": "窗口", "channel": "现场"}),
        Attempt("evaluation_id differs from the key", "meihua", "meihua/up", kinds.EVALUATION, "e-x7",
                {**e, "case_id": c["case_id"], "evaluation_id": "e-other"}),
        Attempt("another township closes a rectification", "shiqiao", "shiqiao/up", kinds.RECTIFICATION, ev,
                {"at_ms": at("2026-11-06"), "evaluation_id": ev, "level": 5, "step": "rate"}),
        Attempt("village writes another village's roster day", "meihua", "meihua/up", kinds.ROSTER,
                "xinqiao:2026-11-10", {"agent": "冒名", "day": "2026-11-10", "substitute": None}),
        Attempt("township reports on another township's village", "chengguan", "chengguan/up", kinds.NODE_CONTACT,
                "hetang", {"node": "hetang", "last_seen_ms": 1, "waiting": 0, "forks": 0, "quarantined": 0,
                           "backlog": 0, "oldest_unsent_hlc": 0}),
        Attempt("township writes 县级已接收 for its village", "chengguan", "chengguan/meihua", "sync.receipt",
                "meihua/up", {"feed": "meihua/up", "hash": "00" * 32, "seq": 1}),
        Attempt("township writes in a village's feed", "chengguan", "meihua/up", kinds.CASE_NEW, "c-x8",
                {**mv, "case_id": "c-x8"}),
        Attempt("village writes in its township's feed", "meihua", "chengguan/up", kinds.CASE_NEW, "c-x9",
                {**w, "case_id": "c-x9"}),
        Attempt("village writes a feed to another village", "meihua", "meihua/xinqiao", kinds.CASE_EVENT,
                c["case_id"], {"action": "start", "at_ms": at("2026-11-05"), "by": "x", "case_id": c["case_id"]}),
        Attempt("a stranger's key signs as meihua", "stranger", "meihua/up", kinds.CASE_NEW, "c-s1",
                {**mv, "case_id": "c-s1"}),
        Attempt("a stranger writes its own feed", "stranger", "ghost/up", kinds.CASE_NEW, "c-s2",
                {**mv, "case_id": "c-s2"}),
    ]  # fmt: skip


def _catalog_body() -> dict[str, Any]:
    from ..test_views_stats import item

    return item(ELDER, "高龄津贴申请", "乡")


def domain_state(w: World) -> dict[str, list[Any]]:
    out = {}
    for t in DOMAIN_TABLES:
        columns = [r[1] for r in w.conn.execute(f"PRAGMA table_info({t})") if (t, r[1]) != ("cases", "conflicts")]
        out[t] = w.conn.execute(f"SELECT {', '.join(columns)} FROM {t} ORDER BY 1").fetchall()
    return out


def attempt(w: World, a: Attempt, logged: Logged) -> None:
    """Deliver one attempt as the next batch of its feed and classify what the county made of it."""
    key = STRANGER if a.signer == "stranger" else KEYS[a.signer]
    seq, prev = w.store.vector().get(a.feed, (0, None))
    (hlc,) = commands.stamps(w.conn, a.feed, at("2026-11-05", 8), 1)
    batch = hand_signed(key, a.feed, [(hlc, a.kind, a.key, canonical.encode(a.body))], start=seq + 1, prev=prev)
    before, lines = domain_state(w), len(logged.lines)
    verdict = w.store.receive(batch)
    after, said = domain_state(w), logged.lines[lines:]
    here = f"{a.feed}#{seq + 1}"
    statuses = {o.status for o in verdict.outcomes}
    if not verdict.ok:
        a.outcome = REFUSED
    elif Status.QUARANTINED in statuses:
        a.outcome = QUARANTINED
    elif w.conn.execute("SELECT 1 FROM fold_rejects WHERE feed = ? AND seq = ?", (a.feed, seq + 1)).fetchone():
        a.outcome = REJECT
    elif w.conn.execute(
        "SELECT 1 FROM case_events WHERE feed = ? AND seq = ? AND conflict IS NOT NULL", (a.feed, seq + 1)
    ).fetchone():
        a.outcome = CONFLICT
    else:
        a.outcome = APPLIED if after != before else IGNORED
    if a.allowed:
        if a.outcome != APPLIED:
            a.problems.append(f"a write its role may make was not applied ({a.outcome}: {verdict.outcomes})")
        return
    if a.outcome in (APPLIED, IGNORED):
        a.problems.append(f"{a.outcome}: neither refused nor kept as a reject")
    changed = [t for t in DOMAIN_TABLES if before[t] != after[t] and not (a.outcome == CONFLICT and t == "case_events")]
    if changed:
        a.problems.append(f"changed the domain's tables {changed}")
    if not any(here in line or (a.outcome == REFUSED and a.feed in line) for line in said):
        a.problems.append(f"not logged (want a line naming {here}; got {said})")
    if any(secret in line for line in said for secret in (a.body.get("applicant") or {}).values() if secret):
        a.problems.append("personal data in the log")


MATRIX: dict[str, Callable[[Base], list[Attempt]]] = {
    "county": lambda b: writes("county", b),
    "township": lambda b: writes("chengguan", b),
    "village": lambda b: writes("meihua", b),
    "revoked_village": lambda b: [
        Attempt(
            a.name.replace("meihua", "xinqiao"),
            "xinqiao",
            a.feed.replace("meihua/up", "xinqiao/up"),
            a.kind,
            a.key,
            a.body,
        )
        for a in writes("meihua", b)
        if a.feed == "meihua/up"
    ],
    "stranger": lambda b: [
        Attempt(f"a stranger signs as the county: {a.kind} in {a.feed}", "stranger", a.feed, a.kind, a.key, a.body)
        for a in writes("county", b)
    ],
    "claims": claims,
}


@pytest.mark.parametrize("who", MATRIX)
def test_every_write_and_claim_is_refused_or_kept_as_a_reject_and_logged(
    scene: tuple[World, Base, Logged], who: str
) -> None:
    w, base, logged = scene
    done = []
    for a in MATRIX[who](base):
        attempt(w, a, logged)
        done.append(a)
    bad = [f"{a.name}: {'; '.join(a.problems)}" for a in done if a.problems]
    table = "\n".join(f"  {a.name:<60} {'allowed' if a.allowed else 'must not':<9} → {a.outcome}" for a in done)
    assert not bad, f"{len(bad)} of {len(done)} attempts went wrong:\n" + "\n".join(bad) + "\n" + table
    assert any(not a.allowed for a in done)
