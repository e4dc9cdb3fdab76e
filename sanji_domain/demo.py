"""Realistic demo data (Faker zh_CN): villagers, proxy requests and case requests for the demo and tests.

Deterministic for a seed. ID numbers are built from the county's own area
code, a Faker birth date and a sequence number, with the GB 11643 check digit
from `python-stdnum` (Faker's own `ssn()` draws area codes that do not exist,
so stdnum rejects many of them). Names, phones and the street part of the
address come from Faker; the place is the county's own township and village.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from faker import Faker
from stdnum.cn import ric

AGENT_NAMES = ("李建国", "王秀兰", "张德明", "刘桂英", "陈志强", "杨丽华")


@dataclass
class DemoPeople:
    """A deterministic source of villagers for one county."""

    seed: int = 2026
    county_code: str = "430321"
    place: str = "湖南省湘潭县"
    _faker: Faker = field(init=False, repr=False)
    _rng: random.Random = field(init=False, repr=False)
    _n: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._faker = Faker("zh_CN")
        self._faker.seed_instance(self.seed)
        self._rng = random.Random(self.seed)

    def id_number(self, *, min_age: int = 18, max_age: int = 90, today: date = date(2026, 11, 1)) -> str:
        born = self._faker.date_of_birth(minimum_age=min_age, maximum_age=max_age)
        if born > today:
            born = today.replace(year=today.year - min_age)
        self._n += 1
        body = f"{self.county_code}{born:%Y%m%d}{self._n % 1000:03d}"
        return body + ric.calc_check_digit(body + "0")  # stdnum computes over the first 17 of 18

    def applicant(self, *, township: str = "花石镇", village: str = "梅花村", min_age: int = 18) -> dict[str, str]:
        return {
            "address": f"{self.place}{township}{village}{self._rng.randint(1, 12)}组{self._rng.randint(1, 80)}号",
            "id_number": self.id_number(min_age=min_age),
            "name": self._faker.name(),
            "phone": self._faker.phone_number(),
        }

    def agent(self) -> str:
        return self._rng.choice(AGENT_NAMES)

    def case_request(
        self,
        item: dict[str, Any],
        *,
        complete: bool = True,
        pledge: bool = False,
        notes: str | None = None,
        **place: str,
    ) -> dict[str, Any]:
        """What an agent types for one villager: the item, the applicant, the materials received."""
        materials = [m["name"] for m in item.get("materials", []) if complete or not m.get("required", True)]
        if not complete and not materials:
            materials = []
        min_age = 80 if "高龄" in item.get("name", "") else 60 if "养老" in item.get("name", "") else 18
        self._n += 1
        return {
            "agent": {"name": self.agent(), "proxy_no": f"WT-{self.county_code}-{self._n:05d}"},
            "applicant": self.applicant(min_age=min_age, **place),
            "item": item["task_code"],
            "materials": materials,
            "notes": notes
            or self._rng.choice(["村民委托代办，已核对身份证原件。", "材料已当面核对。", "行动不便，上门收件。"]),
            "pledge": pledge,
        }
