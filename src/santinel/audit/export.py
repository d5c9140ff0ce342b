"""Export formats of the audit trail: NDJSON, RFC 5424 syslog, and signed checkpoints.

- NDJSON: one JSON object per line, `{"seq": N, "hash": "…", "resource": {AuditEvent}}`: the
  record's place in the chain beside the FHIR resource unchanged (`jq -c .resource` gives plain
  FHIR NDJSON, e.g. for an ATNA repository's FHIR feed).
- Syslog (RFC 5424, framed for RFC 5425 TLS transport by the caller if needed):

      <PRI>1 TIMESTAMP HOSTNAME santinel - AUDIT [santinel@32473 seq="N" hash="…"] BOM{JSON}

  PRI uses facility 10 (security/authorization) as IHE ITI-20 and DICOM PS3.15 A.5 require,
  severity 5 (notice: `<85>`) for successful events and 4 (warning: `<84>`) for failures.
  TIMESTAMP is the event's `recorded` time (RFC 3339, UTC, microseconds); HOSTNAME the
  observer's host. The MSGID is not `IHE+RFC-3881`: that value announces the DICOM XML schema,
  and the MSG here is the FHIR AuditEvent as JSON. The MSG is UTF-8 and starts with the BOM,
  as RFC 5424 requires of a UTF-8 MSG. Structured data carries the chain position; its values
  are escaped (`"`, `\\` and `]`) as RFC 5424 section 6.3.3 says. 32473 is the private
  enterprise number reserved for documentation (RFC 5612).
- Checkpoints: NDJSON whose first line is the audit public key
  (`{"kind": "audit-public-key", "jwk": {…}}`), then one line per signed checkpoint
  (`{"kind": "checkpoint", "seq", "hash", "created_us", "recorded", "signature"}`). Several
  exports can be concatenated (`>>`): `santinel audit verify --checkpoints FILE` reads them all.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from joserfc.jwk import ECKey

from santinel.audit.chain import ChainedRow
from santinel.audit.checkpoint import ALGORITHM, Checkpoint
from santinel.fhir.resource import instant

FACILITY_SECURITY = 10
SEVERITY_NOTICE = 5
SEVERITY_WARNING = 4
APP_NAME = "santinel"
MSG_ID = "AUDIT"
SD_ID = "santinel@32473"
BOM = b"\xef\xbb\xbf"
KEY_KIND = "audit-public-key"
CHECKPOINT_KIND = "checkpoint"


class BadCheckpointFile(ValueError):
    """A checkpoints file that is not what `santinel audit checkpoints` writes."""


def ndjson_line(row: ChainedRow) -> bytes:
    """One record as `{"seq", "hash", "resource"}` and a newline (the body's bytes kept as is)."""
    head = orjson.dumps({"seq": row.seq, "hash": row.hash})
    return head[:-1] + b',"resource":' + row.record.body + b"}\n"


def syslog_line(row: ChainedRow, default_host: str | None = None) -> bytes:
    """One record as an RFC 5424 message (no trailing newline: framing is the caller's)."""
    try:
        event: dict[str, Any] = orjson.loads(row.record.body)
    except orjson.JSONDecodeError:
        event = {}
    severity = SEVERITY_NOTICE if row.record.outcome == "0" else SEVERITY_WARNING
    pri = FACILITY_SECURITY * 8 + severity
    host = _header_field(_observer_host(event) or default_host or socket.gethostname(), 255)
    data = f'[{SD_ID} seq="{sd_escape(str(row.seq))}" hash="{sd_escape(row.hash)}"]'
    header = f"<{pri}>1 {instant(row.record.recorded_us)} {host} {APP_NAME} - {MSG_ID} {data} "
    return header.encode("ascii") + BOM + row.record.body


def octet_counted(message: bytes) -> bytes:
    """RFC 5425 / RFC 6587 octet-counting framing: `MSG-LEN SP SYSLOG-MSG`."""
    return str(len(message)).encode("ascii") + b" " + message


def sd_escape(value: str) -> str:
    """An SD-PARAM value: `"`, `\\` and `]` escaped with a backslash (RFC 5424 6.3.3)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _observer_host(event: dict[str, Any]) -> str | None:
    """`santinel@host` (the event's source observer) → `host`."""
    source = event.get("source")
    observer = source.get("observer") if isinstance(source, dict) else None
    display = observer.get("display") if isinstance(observer, dict) else None
    if isinstance(display, str) and "@" in display:
        return display.rsplit("@", 1)[1] or None
    return None


def _header_field(value: str, limit: int) -> str:
    """A HOSTNAME: printable US-ASCII without spaces (33-126), at most `limit`, else `-`."""
    kept = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return kept or "-"


# -- checkpoints ----------------------------------------------------------------------------
def key_line(key: ECKey) -> bytes:
    jwk = {**key.as_dict(private=False), "use": "sig", "alg": ALGORITHM, "kid": key.thumbprint()}
    return orjson.dumps({"kind": KEY_KIND, "jwk": jwk}) + b"\n"


def checkpoint_line(checkpoint: Checkpoint) -> bytes:
    return (
        orjson.dumps(
            {
                "kind": CHECKPOINT_KIND,
                "seq": checkpoint.seq,
                "hash": checkpoint.hash,
                "created_us": checkpoint.created_us,
                "recorded": instant(checkpoint.created_us),
                "signature": checkpoint.signature,
            }
        )
        + b"\n"
    )


def read_checkpoint_file(lines: Iterable[bytes]) -> tuple[list[Checkpoint], list[dict[str, Any]]]:
    """The checkpoints and the public keys (JWKs) of one or more concatenated exports."""
    checkpoints: list[Checkpoint] = []
    keys: list[dict[str, Any]] = []
    for number, line in _numbered(lines):
        try:
            item = orjson.loads(line)
            kind = item["kind"]
            if kind == KEY_KIND:
                keys.append(dict(item["jwk"]))
            elif kind == CHECKPOINT_KIND:
                checkpoints.append(
                    Checkpoint(
                        _integer(item["seq"]),
                        str(item["hash"]),
                        _integer(item["created_us"]),
                        str(item["signature"]),
                    )
                )
            else:
                raise ValueError(kind)
        except (ValueError, KeyError, TypeError):
            raise BadCheckpointFile(
                f"line {number}: not a checkpoint or key line of `santinel audit checkpoints`"
            ) from None
    return checkpoints, keys


def _numbered(lines: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield number, line


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not an integer")
    return value
