"""The county's supervision commands: `cards scan/list/revoke` (电子监察) and `settings show/set`."""

from __future__ import annotations

import click

from sanji_domain.commands import SETTINGS
from sanji_domain.monitoring import GROUPS

from ..actions import county as actions
from ..cli import data_option, emit, handle_errors, json_option
from ..workspace import Workspace
from .common import Audit, Loader, no_audit, table

CARD_COLUMNS = [
    ("card_id", "牌号"),
    ("local_no", "办件"),
    ("level", "牌级"),
    ("reason", "原因"),
    ("revoke_reason", "撤销原因"),
]


GROUP_HEADINGS = {"township": "乡镇", "village": "村", "item": "事项", "clerk": "受理人"}
TOTAL_COLUMNS = [
    ("cases", "件数"),
    ("overdue", "超期"),
    ("carded", "有牌"),
    ("预警", "预警"),
    ("黄牌", "黄牌"),
    ("红牌", "红牌"),
]
OVERDUE_COLUMNS = [
    ("case_no", "办件"),
    ("township_name", "乡镇"),
    ("village_name", "村"),
    ("item_name", "事项"),
    ("clerk", "受理人"),
    ("promise_date", "承诺办结"),
    ("remaining_days", "剩余工作日"),
    ("card", "牌"),
]


def add_county_commands(group: click.Group, load: Loader, audit: Audit = no_audit) -> None:
    _add_cards(group, load, audit)
    _add_settings(group, load, audit)


def _add_cards(group: click.Group, load: Loader, audit: Audit) -> None:
    cards = click.Group("cards", help="电子监察: 黄牌/红牌 on cases near or past their promised date.")
    group.add_command(cards)

    @cards.command(
        name="scan", help="Issue a 黄牌 or 红牌 to every open case that has reached the threshold and has none yet."
    )
    @data_option
    @json_option
    @handle_errors
    def cards_scan(data_dir: str, as_json: bool) -> None:
        with Workspace(load(data_dir)) as ws:
            issued = actions.scan_cards(ws)
            audit(ws, "card.scan", target_kind="cards", details={"issued": len(issued)})
        emit(as_json, issued, f"已发出 {len(issued)} 张牌")

    @cards.command(
        name="overdue",
        help="Open cases overdue or carded across the county, and totals by township, village, item, clerk.",
    )
    @data_option
    @click.option(
        "--by",
        "group",
        type=click.Choice([g for g, _ in GROUPS]),
        default="township",
        show_default=True,
        help="the totals to print before the cases",
    )
    @json_option
    @handle_errors
    def cards_overdue(data_dir: str, group: str, as_json: bool) -> None:
        with Workspace(load(data_dir)) as ws:
            out = actions.overdue_overview(ws)

        def text() -> str:
            totals = table(out["totals"][group], [("name", GROUP_HEADINGS[group]), *TOTAL_COLUMNS])
            return totals + "\n\n" + table(out["rows"], OVERDUE_COLUMNS)

        emit(as_json, out, text)

    @cards.command(name="list", help="List cards (issued and revoked).")
    @data_option
    @json_option
    @handle_errors
    def cards_list(data_dir: str, as_json: bool) -> None:
        with Workspace(load(data_dir)) as ws:
            rows = actions.list_cards(ws)
        emit(as_json, rows, lambda: table(rows, CARD_COLUMNS))

    @cards.command(name="revoke", help="Revoke a card, with the reason (e.g. the delay was a 特别程序).")
    @data_option
    @click.argument("card_id")
    @click.option("--reason", required=True, help="why the card is revoked")
    @json_option
    @handle_errors
    def cards_revoke(data_dir: str, card_id: str, reason: str, as_json: bool) -> None:
        with Workspace(load(data_dir)) as ws:
            r = actions.revoke_card(ws, card_id, reason)
            audit(ws, "card.revoke", target_kind="card", target=card_id, reason=reason)
        emit(as_json, r, f"已撤销 {card_id}")


def _add_settings(group: click.Group, load: Loader, audit: Audit) -> None:
    settings = click.Group(
        "settings", help="County-wide settings that sync down: clock thresholds, rectification days, PII purge rule."
    )
    group.add_command(settings)

    @settings.command(name="show", help="Show the settings in force.")
    @data_option
    @json_option
    @handle_errors
    def settings_show(data_dir: str, as_json: bool) -> None:
        with Workspace(load(data_dir)) as ws:
            values = actions.settings(ws)
        emit(as_json, values, lambda: "\n".join(f"{k} = {v}    # {SETTINGS[k][3]}" for k, v in values.items()))

    @settings.command(name="set", help="Change one setting (it reaches every node at its next sync).")
    @data_option
    @click.argument("name", type=click.Choice(list(SETTINGS)))
    @click.argument("value", type=int)
    @json_option
    @handle_errors
    def settings_set(data_dir: str, name: str, value: int, as_json: bool) -> None:
        with Workspace(load(data_dir)) as ws:
            r = actions.set_setting(ws, name, value)
            audit(ws, "settings", target_kind="setting", target=name, details={"value": value})
        emit(as_json, r, f"{name} = {value}，将随同步下发")
