"""`POST [base]/Patient/[id]/$erase`: erasure of a patient's data (RGPD art. 17) by
crypto-shredding (`santinel.storage.sql.erasure`). `santinel patients erase` runs the same.

Allowed to an internal-tier client holding both a `system/` scope with the `d` permission on
Patient (`system/Patient.d`, `system/*.cruds`…, without query restriction) and the dedicated
scope `santinel:erase`; never to a patient-confined or user token. Refused (409) while the
patient is under a legal hold. The audit trail keeps a tombstone: who erased which pseudonymous
id, when, and how much became unreadable — no content. Earlier events about the patient were
sealed with the patient's keys: their details become unreadable with the data (only their clear
columns are served), and the chain, which covers their sealed bytes, still verifies.
"""

from __future__ import annotations

import socket
import time
import uuid

from santinel.audit.events import Actor, Happening, build
from santinel.audit.records import AuditRecord
from santinel.auth.principal import Principal
from santinel.auth.scopes import ERASE_SCOPE
from santinel.errors import Forbidden, MethodNotAllowed, NotFound
from santinel.services import audit_context
from santinel.services.audit_context import OPERATOR_ACTOR
from santinel.services.authn import unauthorized
from santinel.services.request import FhirRequest, FhirResponse
from santinel.storage.base import FhirRepository
from santinel.storage.sql.erasure import ErasureReport, erase_patient
from santinel.storage.sql.repository import SqlRepository

OPERATION = "$erase"
SUBTYPE = "$erase"


def is_erase(request: FhirRequest) -> bool:
    path = request.path
    return len(path) == 3 and path[0] == "Patient" and path[2] == OPERATION


async def handle(repository: FhirRepository, request: FhirRequest) -> FhirResponse:
    if request.method != "POST":
        raise MethodNotAllowed("$erase takes POST.", headers={"Allow": "POST"})
    require_erase_rights(request.principal)
    if not isinstance(repository, SqlRepository):
        raise NotFound("Erasure is not available on this store.")
    report = await erase(repository, request.path[1])
    scope = audit_context.current()
    if scope is not None:
        scope.committed = True  # the tombstone committed with the erasure
    return FhirResponse(200, outcome(report))


def require_erase_rights(principal: Principal | None) -> None:
    if principal is None or principal.anonymous:
        raise unauthorized()
    deletes_patients = any(
        s.context == "system" and not s.query and s.covers("Patient", "d")
        for s in principal.scopes.resources
    )
    if principal.tier != "internal" or not deletes_patients:
        raise Forbidden(
            "Erasure needs an internal client with system/Patient.d and santinel:erase."
        )
    if ERASE_SCOPE not in principal.scopes.others:
        raise Forbidden("Erasure needs the santinel:erase scope.")


async def erase(repository: SqlRepository, patient_id: str) -> ErasureReport:
    scope = audit_context.current()
    actor = scope.actor if scope is not None else OPERATOR_ACTOR
    request_id = scope.request_id if scope is not None else None

    def tombstone(report: ErasureReport) -> list[AuditRecord]:
        happening = Happening(
            SUBTYPE,
            outcome_desc=None,
            entity=f"Patient/{report.patient_id}",
            patient=report.patient_id,
            request_id=request_id,
        )
        return [_record(actor, happening)]

    return await erase_patient(repository, patient_id, tombstone)


def _record(actor: Actor, happening: Happening) -> AuditRecord:
    return build(
        uuid.uuid4().hex,
        int(time.time() * 1_000_000),
        actor,
        happening,
        f"santinel@{socket.gethostname()}",
    )


def summary(report: ErasureReport) -> str:
    return (
        f"Patient/{report.patient_id} erased: {report.resources} resource(s) and "
        f"{report.versions} version(s) can no longer be read, nor the details of "
        f"{report.audit_events} audit event(s) about them; {len(report.keys)} data key(s) "
        "destroyed."
    )


def outcome(report: ErasureReport) -> dict[str, object]:
    text = summary(report)
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": text}],
    }
