"""One patient's record while it is being generated, and the id scheme of demo resources."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from santinel.demo.catalog import ConditionSpec
from santinel.demo.elements import JsonObject
from santinel.demo.people import Person


def prefix(seed: int) -> str:
    return f"demo-{seed}"


def organization_id(seed: int, n: int) -> str:
    return f"{prefix(seed)}-org{n}"


def practitioner_id(seed: int, n: int) -> str:
    return f"{prefix(seed)}-prac{n}"


@dataclass
class Chart:
    """One patient's record while it is being written."""

    seed: int
    index: int
    rng: random.Random
    person: Person
    conditions: list[ConditionSpec]
    height_cm: float
    bmi: float
    resources: list[JsonObject] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def patient_id(self) -> str:
        return f"{prefix(self.seed)}-p{self.index}"

    def new_id(self, kind: str) -> str:
        number = self.counters.get(kind, 0) + 1
        self.counters[kind] = number
        return f"{self.patient_id}-{kind}{number}"

    def has(self, condition_key: str | None) -> bool:
        return any(c.key == condition_key for c in self.conditions)
