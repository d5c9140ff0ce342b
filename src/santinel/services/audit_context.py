"""What the audit trail needs to know about the request being served, gathered as it runs.

One `AuditScope` per request lives in a context variable: the web layer opens it, the policy
notes the scope that granted access, the services note the stored versions they serve, and the
audit service reads it when the data change commits and when the response is ready. Code that
runs outside a request (the CLI's `load` and `demo`) gets the operator's scope.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field

from santinel.audit.events import Actor
from santinel.storage.base import StoredVersion

OPERATOR_ACTOR = Actor(client_id="santinel-operator")


@dataclass
class AuditScope:
    actor: Actor
    request_id: str | None = None
    query: bytes | None = None  # the raw query string
    interaction: str | None = None
    policy: str | None = None  # the scope that authorized the request
    served: list[StoredVersion] = field(default_factory=list)
    committed: bool = False  # the request's changes committed with their audit records


_current: ContextVar[AuditScope | None] = ContextVar("santinel_audit_scope", default=None)


def current() -> AuditScope | None:
    return _current.get()


def enter(scope: AuditScope) -> Token[AuditScope | None]:
    return _current.set(scope)


def leave(token: Token[AuditScope | None]) -> None:
    _current.reset(token)


@contextmanager
def opened(scope: AuditScope) -> Iterator[AuditScope]:
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


def note_served(versions: Sequence[StoredVersion]) -> None:
    """Resource versions whose content this request returns (reads, searches, history)."""
    scope = _current.get()
    if scope is not None:
        scope.served.extend(versions)


def note_policy(granting_scope: str | None) -> None:
    scope = _current.get()
    if scope is not None and scope.policy is None and granting_scope:
        scope.policy = granting_scope
