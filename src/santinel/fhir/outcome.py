"""OperationOutcome builders (R4 `operationoutcome.html`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from santinel.errors import Issue


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [_issue(i) for i in issues]}


def information(diagnostics: str, code: str = "informational") -> dict[str, Any]:
    return operation_outcome([Issue(code=code, diagnostics=diagnostics, severity="information")])


def _issue(issue: Issue) -> dict[str, Any]:
    out: dict[str, Any] = {"severity": issue.severity, "code": issue.code}
    if issue.diagnostics:
        out["diagnostics"] = issue.diagnostics
    if issue.expression:
        out["expression"] = list(issue.expression)
    return out
