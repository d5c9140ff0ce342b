"""SMART on FHIR scopes, v1 and v2 (SMART App Launch 2.x, `scopes-and-launch-context.html`).

    patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory
    user/*.cruds        system/Patient.read (v1)        launch/patient  openid  fhirUser

v1 permissions map onto v2 letters: `read` → `rs`, `write` → `cud`, `*` → `cruds`. Tokens that
are not scopes this server understands are dropped (OAuth lets a server grant less than asked).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl

Context = Literal["patient", "user", "system"]
PERMISSIONS = "cruds"
V1 = {"read": "rs", "write": "cud", "*": "cruds"}
RESOURCE_SCOPE = re.compile(
    r"(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]+)\."
    r"(?P<permissions>read|write|\*|c?r?u?d?s?)(\?(?P<query>[^\s]+))?"
)
# Santinel's own: erasure of a patient's data (`Patient/[id]/$erase`), with system/Patient.d.
ERASE_SCOPE = "santinel:erase"
OTHER_SCOPES = frozenset(
    {
        ERASE_SCOPE,
        "openid",
        "fhirUser",
        "profile",
        "launch",
        "launch/patient",
        "launch/encounter",
        "offline_access",
        "online_access",
    }
)


@dataclass(frozen=True)
class ResourceScope:
    context: Context
    resource_type: str  # a type, or "*"
    permissions: frozenset[str]  # letters of "cruds"
    query: tuple[tuple[str, str], ...] = ()  # v2 restriction, e.g. (("category", "…|laboratory"),)

    def covers(self, resource_type: str, permission: str) -> bool:
        return permission in self.permissions and self.resource_type in ("*", resource_type)

    def text(self) -> str:
        letters = "".join(p for p in PERMISSIONS if p in self.permissions)
        query = "?" + "&".join(f"{k}={v}" for k, v in self.query) if self.query else ""
        return f"{self.context}/{self.resource_type}.{letters}{query}"


@dataclass(frozen=True)
class Scopes:
    resources: tuple[ResourceScope, ...]
    others: frozenset[str]

    @property
    def text(self) -> str:
        return " ".join([*(s.text() for s in self.resources), *sorted(self.others)])

    def narrowed_to(self, requested: Scopes) -> Scopes:
        """The scopes of `requested` that these scopes grant (a refresh or a client's request
        may only narrow what was granted)."""
        kept = tuple(r for r in requested.resources if any(_includes(g, r) for g in self.resources))
        return Scopes(kept, requested.others & self.others)


def parse_scopes(text: str) -> Scopes:
    resources: list[ResourceScope] = []
    others: set[str] = set()
    for token in dict.fromkeys(text.split()):
        if token in OTHER_SCOPES:
            others.add(token)
            continue
        scope = parse_resource_scope(token)
        if scope is not None:
            resources.append(scope)
    return Scopes(tuple(resources), frozenset(others))


def parse_resource_scope(token: str) -> ResourceScope | None:
    match = RESOURCE_SCOPE.fullmatch(token)
    if match is None:
        return None
    letters = V1.get(match["permissions"], match["permissions"])
    if not letters:
        return None
    query = tuple(parse_qsl(match["query"] or "", keep_blank_values=False))
    context: Context = match["context"]  # type: ignore[assignment]
    return ResourceScope(context, match["type"], frozenset(letters), query)


def _includes(granted: ResourceScope, wanted: ResourceScope) -> bool:
    return (
        granted.context == wanted.context
        and granted.resource_type in ("*", wanted.resource_type)
        and wanted.permissions <= granted.permissions
        and set(granted.query) <= set(wanted.query)
    )
