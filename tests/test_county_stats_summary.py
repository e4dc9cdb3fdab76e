"""The county's incrementally kept statistics (`county_server.stats_summary`) equal the from-scratch
computation (`sanji_domain.stats`) after random sequences of changes to the folded tables: cases
filed, accepted, paused, completed, voided, moved, forwarded and deleted (fork resolution), evaluations
added, changed and removed, cards issued and revoked, calendar days changed, with refreshes at random
points in between."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
import sqlite_utils

from county_server import stats_summary
from sanji_domain import stats
from sanji_domain.commands import CST
from sanji_domain.errors import ValidationError
from sanji_domain.schema import domain_migrations

TODAY = date(2026, 12, 3)
TOWNSHIPS = {"t1": ["v11", "v12", "v13"], "t2": ["v21", "v22"], "t3": []}
ITEMS = {"I1": 0, "I2": 3, "I3": 10}
STATES = ["SUBMITTED", "ACCEPTED", "IN_PROCESS", "SUSPENDED", "COMPLETED", "DELIVERED", "VOIDED", "WITHDRAWN"]
COUNTS = ("completions", "on_time", "instant", "handling_days", "evaluations", "satisfied", "filed")


def ms(d: date, hour: int = 10) -> int:
    return int(datetime.combine(d, time(hour), CST).timestamp() * 1000)


def fresh() -> sqlite_utils.Database:
    db = sqlite_utils.Database(memory=True)
    domain_migrations.apply(db)
    stats_summary.migrate(db)
    db.execute(
        "INSERT INTO nodes (node, role, parent, division, name) VALUES ('c', 'county', NULL, '430321000000', '示范县')"
    )
    for i, (t, vs) in enumerate(TOWNSHIPS.items()):
        db.execute("INSERT INTO nodes VALUES (?, 'township', 'c', ?, 0, ?)", (t, f"4303211{i:02d}000", f"{t}镇"))
        for j, v in enumerate(vs):
            db.execute(
                "INSERT INTO nodes VALUES (?, 'village', ?, ?, 0, ?)", (v, t, f"4303211{i:02d}2{j:02d}", f"{v}村")
            )
    for code, days in ITEMS.items():
        db.execute(
            "INSERT INTO catalog_items (task_code, version, state, name, promised_days, body) VALUES (?, 1, '在用', ?, ?, '{}')",
            (code, f"事项{code}", days),
        )
    return db


class Script:
    """Random changes to the folded tables, as the fold, the card scan and fork resolution make them."""

    def __init__(self, db: sqlite_utils.Database, rng: random.Random) -> None:
        self.db, self.rng, self.n = db, rng, 0

    def day(self) -> date:
        return date(2026, 9, 1) + timedelta(days=self.rng.randrange(0, 90))

    def place(self) -> tuple[str | None, str | None]:
        t = self.rng.choice(list(TOWNSHIPS))
        vs = TOWNSHIPS[t]
        return t, (self.rng.choice(vs) if vs and self.rng.random() < 0.85 else None)

    def cases(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT case_id FROM cases")]

    def new_case(self) -> None:
        self.n += 1
        t, v = self.place()
        code = self.rng.choice(list(ITEMS))
        filed = self.day()
        row: dict[str, Any] = {
            "case_id": f"case-{self.n}", "author": v or t, "village": v, "township": t, "feed": "f", "seq": self.n,
            "item_code": code, "promised_days": ITEMS[code], "initial_state": "SUBMITTED", "state": "SUBMITTED",
            "filed_ms": ms(filed, self.rng.randrange(8, 18)), "body": "{}",
        }  # fmt: skip
        self.db["cases"].insert(row)
        if self.rng.random() < 0.7:
            self.progress(row["case_id"], filed)

    def progress(self, cid: str, filed: date) -> None:
        accepted = filed + timedelta(days=self.rng.randrange(0, 3))
        changes: dict[str, Any] = {"accepted_ms": ms(accepted, 11), "state": "ACCEPTED"}
        if self.rng.random() < 0.3:
            start = accepted + timedelta(days=self.rng.randrange(0, 5))
            end = None if self.rng.random() < 0.3 else start + timedelta(days=self.rng.randrange(0, 8))
            changes["pauses"] = json.dumps([[ms(start), None if end is None else ms(end)]])
        if self.rng.random() < 0.75:
            completed = accepted + timedelta(days=self.rng.choice([0, 0, 1, 2, 5, 9, 15, 30]))
            changes.update(completed_ms=ms(completed, 16), state=self.rng.choice(["COMPLETED", "DELIVERED", "VOIDED"]))
        self.db["cases"].update(cid, changes)

    def change_case(self) -> None:
        ids = self.cases()
        if not ids:
            return
        cid = self.rng.choice(ids)
        what = self.rng.randrange(6)
        if what == 0:
            self.db.execute("UPDATE cases SET state = ? WHERE case_id = ?", (self.rng.choice(STATES), cid))
        elif what == 1:
            t, v = self.place()
            self.db.execute("UPDATE cases SET township = ?, village = ? WHERE case_id = ?", (t, v, cid))
        elif what == 2:
            filed = self.db.execute("SELECT filed_ms FROM cases WHERE case_id = ?", (cid,)).fetchone()[0]
            self.progress(cid, datetime.fromtimestamp(filed / 1000, CST).date())
        elif what == 3:  # fork resolution drops it
            self.db.execute("DELETE FROM cases WHERE case_id = ?", (cid,))
        elif what == 4:  # 转报: a linked county case whose pauses stop the origin's clock too
            self.n += 1
            link = f"case-{self.n}"
            day = self.day()
            self.db["cases"].insert(
                {"case_id": link, "author": "c", "origin_case_id": cid, "township": None, "village": None, "feed": "c",
                 "seq": self.n, "item_code": "I3", "promised_days": 10, "initial_state": "ACCEPTED", "state": "SUSPENDED",
                 "filed_ms": ms(day), "body": "{}", "pauses": json.dumps([[ms(day), ms(day + timedelta(days=4))]])}
            )  # fmt: skip
            self.db.execute("UPDATE cases SET linked_case_id = ? WHERE case_id = ?", (link, cid))
        else:
            self.db.execute("UPDATE cases SET item_code = ? WHERE case_id = ?", (self.rng.choice(list(ITEMS)), cid))

    def evaluation(self) -> None:
        rows = [r[0] for r in self.db.execute("SELECT evaluation_id FROM evaluations")]
        roll = self.rng.random()
        if rows and roll < 0.2:
            self.db.execute("DELETE FROM evaluations WHERE evaluation_id = ?", (self.rng.choice(rows),))
        elif rows and roll < 0.4:
            self.db.execute(
                "UPDATE evaluations SET level = ?, at_ms = ? WHERE evaluation_id = ?",
                (self.rng.randint(1, 5), ms(self.day()), self.rng.choice(rows)),
            )
        else:
            self.n += 1
            t, v = self.place()
            self.db["evaluations"].insert(
                {"evaluation_id": f"e-{self.n}", "case_id": None, "level": self.rng.randint(1, 5), "at_ms": ms(self.day()),
                 "author": v or t, "village": v, "township": t, "item_code": self.rng.choice([*ITEMS, None])}
            )  # fmt: skip

    def card(self) -> None:
        cards = [r[0] for r in self.db.execute("SELECT card_id FROM cards WHERE revoked_ms IS NULL")]
        if cards and self.rng.random() < 0.3:
            self.db.execute("UPDATE cards SET revoked_ms = 1 WHERE card_id = ?", (self.rng.choice(cards),))
            return
        ids = self.cases()
        if ids:
            self.n += 1
            self.db["cards"].insert(
                {"card_id": f"k-{self.n}", "case_id": self.rng.choice(ids), "level": self.rng.choice(["预警", "黄牌", "红牌"]),
                 "issued_ms": ms(self.day())}
            )  # fmt: skip

    def calendar(self) -> None:
        d = self.day()
        kind = self.rng.choice(["holiday", "workday", "normal"])
        self.db.execute(
            "INSERT INTO calendar_days (day, kind, name, seq) VALUES (?, ?, '', ?) "
            "ON CONFLICT (day) DO UPDATE SET kind = excluded.kind, seq = excluded.seq",
            (d.isoformat(), kind, self.n),
        )
        self.n += 1

    def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.35:
            self.new_case()
        elif roll < 0.6:
            self.change_case()
        elif roll < 0.78:
            self.evaluation()
        elif roll < 0.9:
            self.card()
        elif roll < 0.93:
            self.calendar()
        else:
            stats_summary.refresh(self.db, today=TODAY)


def from_scratch(db: sqlite_utils.Database, first: date, last: date) -> dict[str, dict[str, dict[str, int]]]:
    got = stats.statistics_by(
        db.conn, ("county", "township", "village", "item", "month"), period=(first, last), today=TODAY
    )
    return {g: {r["group"]: {c: r[c] for c in COUNTS} for r in rows} for g, rows in got.items()}


def summarised(db: sqlite_utils.Database, first: str, last: str) -> dict[str, dict[str, dict[str, int]]]:
    place = stats_summary.place_counts(db.conn, first, last)
    out: dict[str, dict[str, dict[str, int]]] = {g: {} for g in ("county", "township", "village", "item", "month")}

    def add(g: str, key: str, counts: dict[str, int]) -> None:
        row = out[g].setdefault(key, dict.fromkeys(COUNTS, 0))
        for c in COUNTS:
            row[c] += counts[c]

    for t, v, *values in place:
        counts = dict(zip(stats_summary.COUNTS, values, strict=True))
        add("county", stats.COUNTY_KEY, counts)
        if t:
            add("township", t, counts)
        if v:
            add("village", v, counts)
    for code, *values in stats_summary.item_counts(db.conn, first, last):
        if code:
            add("item", code, dict(zip(stats_summary.COUNTS, values, strict=True)))
    for m, *values in stats_summary.month_counts(db.conn, first, last):
        add("month", m, dict(zip(stats_summary.COUNTS, values, strict=True)))
    # a group whose facts all cancelled out (a deleted case) is a row of zeros here and absent there
    return {g: {k: c for k, c in rows.items() if any(c.values())} for g, rows in out.items()}


def cards_from_scratch(db: sqlite_utils.Database, first: str, last: str) -> dict[tuple[str, str], int]:
    rows = db.execute(
        "SELECT COALESCE(c.township, ''), k.level, COUNT(*) FROM cards k JOIN cases c ON c.case_id = k.case_id "
        "WHERE k.revoked_ms IS NULL AND strftime('%Y-%m', (k.issued_ms + 28800000) / 1000, 'unixepoch') "
        "BETWEEN ? AND ? GROUP BY 1, 2",
        (first, last),
    )
    return {(t, level): n for t, level, n in rows}


def cards_summarised(db: sqlite_utils.Database, first: str, last: str) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for t, _v, *values in stats_summary.place_counts(db.conn, first, last):
        counts = dict(zip(stats_summary.COUNTS, values, strict=True))
        for level, column in stats_summary.CARD_COUNTS.items():
            if counts[column]:
                out[(t, level)] = out.get((t, level), 0) + counts[column]
    return out


PERIODS = [
    (date(2026, 9, 1), date(2026, 9, 30)),
    (date(2026, 10, 1), date(2026, 12, 31)),
    (date(2026, 1, 1), date(2026, 12, 31)),
]


@pytest.mark.parametrize("seed", range(6))
def test_the_summary_equals_the_computation_from_scratch_after_random_events(seed: int) -> None:
    rng = random.Random(seed)
    db = fresh()
    script = Script(db, rng)
    for _ in range(rng.randrange(60, 160)):
        script.step()
    stats_summary.refresh(db, today=TODAY)
    assert db.execute("SELECT COUNT(*) FROM stats_dirty").fetchone()[0] == 0
    for first, last in PERIODS:
        months = (stats_summary.month_of(first), stats_summary.month_of(last))
        assert summarised(db, *months) == from_scratch(db, first, last), (seed, first, last)
        assert cards_summarised(db, *months) == cards_from_scratch(db, *months)


def test_a_summary_made_for_existing_data_counts_what_was_there() -> None:
    """The migration on a county that already holds cases and evaluations notes every case and counts
    every evaluation: the first refresh gives the same figures as one kept from the start."""
    rng = random.Random(99)
    db = sqlite_utils.Database(memory=True)
    domain_migrations.apply(db)
    kept = fresh()
    script = Script(kept, rng)
    for _ in range(80):
        script.step()
    # copy the folded tables (not the summaries) into a county without the summary, then migrate it
    for table in ("nodes", "catalog_items", "calendar_days", "cases", "cards", "evaluations"):
        rows = list(kept[table].rows)
        if rows:
            db[table].insert_all(rows)
    stats_summary.migrate(db)
    stats_summary.refresh(db, today=TODAY)
    stats_summary.refresh(kept, today=TODAY)
    for first, last in PERIODS:
        months = (stats_summary.month_of(first), stats_summary.month_of(last))
        assert summarised(db, *months) == summarised(kept, *months) == from_scratch(kept, first, last)


def test_ranking_ties_share_a_rank_and_townships_without_completions_are_not_ranked() -> None:
    def row(name: str, on_time: int, completions: int) -> dict[str, Any]:
        return stats.row_of("township", name, name, {"on_time": on_time, "completions": completions})

    rows = [
        row("甲镇", 1, 2),
        row("乙镇", 3, 3),
        row("丙镇", 2, 4),
        row("丁镇", 1, 1),
        row("戊乡", 0, 0),
        row("己镇", 0, 3),
    ]
    got = stats_summary.ranking(rows)
    assert [(r["label"], r["rank"], r["tied"]) for r in got["rows"]] == [
        ("乙镇", 1, True),  # 100.0%, 3 completions: listed before 丁镇's 1
        ("丁镇", 1, True),
        ("丙镇", 3, True),  # 50.0%: the rank after two firsts is 3
        ("甲镇", 3, True),
        ("己镇", 5, False),
    ]
    assert [r["label"] for r in got["best"]] == ["乙镇", "丁镇"] and [r["label"] for r in got["lowest"]] == ["己镇"]
    assert [r["label"] for r in got["unranked"]] == ["戊乡"]
    assert stats_summary.ranking([row("甲镇", 1, 1)])["lowest"] == []  # one township is not also the lowest


def test_periods() -> None:
    assert stats_summary.parse_period("2026-11").months == ["2026-11"]
    q = stats_summary.parse_period("2026-q4")
    assert (q.kind, q.label, q.months) == ("quarter", "2026年第四季度", ["2026-10", "2026-11", "2026-12"])
    assert (
        stats_summary.parse_period("2026").months[0] == "2026-01"
        and len(stats_summary.parse_period("2026").months) == 12
    )
    for bad in ("2026-13", "26-11", "2026-Q5", "", "十一月"):
        with pytest.raises(ValidationError, match="统计期间"):
            stats_summary.parse_period(bad)
