"""Entry kinds of the service domain, and the feeds they travel in (ARCHITECTURE §2).

| kind                  | key             | written by, in feed                                                   |
|-----------------------|-----------------|-----------------------------------------------------------------------|
| catalog.item          | task_code       | county, `county/*` (one per new or changed item in a release)          |
| catalog.release       | version         | county, `county/*`                                                    |
| calendar.day          | yyyy-mm-dd      | county, `county/*` (法定节假日 / 调休 override)                        |
| setting               | name            | county, `county/*` (clock thresholds, rectification days, purge rule) |
| case.new              | case_id         | village `V/up`, township window `T/up`                                |
| case.event            | case_id         | `V/up` (agent); `T/V` or `T/up` (clerk); `county/V` or `county/T`      |
| case.number           | case_id         | county, `county/V` or `county/T`: the official 办件编号 on receipt      |
| evaluation.new        | evaluation_id   | `V/up` (代办) or `T/up` (现场)                                         |
| rectification.step    | evaluation_id   | township `T/up`; county `county/T` (the evaluation's township)         |
| card.issue / .revoke  | card_id         | county, the case's county feed `county/V` or `county/T` (电子监察)      |
| roster.duty           | village:day     | village `V/up` (值班表)                                                |
| supervision.notice    | notice_id       | county, `county/T` to the township concerned (督办)                    |
| supervision.ack       | notice_id       | the notice's township, its own `T/up` (签收; sanji_domain.supervision)   |
| node.contact          | village node id | township `T/up`, only about its own villages (sanji_domain.contacts)   |

The fold takes the place an entry speaks for from its feed's author and the
membership, never from the body; who may write which kind and which body
fields must agree is `sanji_domain.claims` (docs/domain.md, "Who may write
which kind"). An entry that breaks it is kept as a reject (`fold_rejects`).
"""

from __future__ import annotations

CATALOG_ITEM = "catalog.item"
CATALOG_RELEASE = "catalog.release"
CALENDAR_DAY = "calendar.day"
SETTING = "setting"
CASE_NEW = "case.new"
CASE_EVENT = "case.event"
CASE_NUMBER = "case.number"
EVALUATION = "evaluation.new"
RECTIFICATION = "rectification.step"
CARD_ISSUE = "card.issue"
CARD_REVOKE = "card.revoke"
ROSTER = "roster.duty"
NODE_CONTACT = "node.contact"
SUPERVISION_NOTICE = "supervision.notice"
SUPERVISION_ACK = "supervision.ack"

BAD_LEVEL_MAX = 2  # 不满意 2 and 非常不满意 1 are 差评
DEFAULT_RECTIFY_DAYS = 5
LEDGER_DUE_DAYS = 3  # the agent carries a case to the township within 3 working days
