"""Security events of traffic control, all through `security_event`.

AUDIT HOOK: `security_event` is the one place these events leave traffic control. Today it
writes a structured log line; the audit trail (`santinel.services.audit`) records them from here
as AuditEvents (BALP security alert) — nothing else needs to change. Events never carry a
secret: no password, token, assertion or client secret, and no username in clear (a digest).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any

from santinel.logging import get_logger

log = get_logger("santinel.security")

LOCKOUT = "security.lockout"


@dataclass(frozen=True)
class SecurityEvent:
    name: str  # e.g. security.lockout
    subject_kind: str  # client, user or ip
    subject: str  # client_id, `sha256:<digest prefix>` of a username, or the address
    address: str  # the caller's address
    failures: int  # failed attempts counted for the subject
    locked_seconds: int  # how long the subject is locked


AuditHook = Callable[[SecurityEvent], Coroutine[Any, Any, None]]
_audit_hook: list[AuditHook] = []
_pending: set[asyncio.Task[None]] = set()


def set_audit_hook(hook: AuditHook | None) -> None:
    """Where security events go besides the log (the Container sets the audit service)."""
    _audit_hook.clear()
    if hook is not None:
        _audit_hook.append(hook)


def security_event(event: SecurityEvent) -> None:
    """Report a security event: a log line, and an AuditEvent written in the background (the
    request it happened in is refused anyway, so it does not wait for the record)."""
    log.warning(event.name, **{k: v for k, v in asdict(event).items() if k != "name"})
    if not _audit_hook:
        return
    try:
        task = asyncio.get_running_loop().create_task(_audit_hook[0](event))
    except RuntimeError:  # no running loop (a synchronous caller): the log line stands
        return
    _pending.add(task)
    task.add_done_callback(_pending.discard)
