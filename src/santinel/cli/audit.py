"""`santinel audit`: verify, export, checkpoint and prune the tamper-evident audit trail.

Exit codes: 0 the trail verifies (or the command did its work); 1 the trail does not verify
(`verify`, and `prune`, which refuses to prune records that do not verify); 2 a usage or
configuration problem (no audit key where one is needed, an unreadable checkpoints file, a
database at an older schema).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated

import orjson
import typer
from joserfc.jwk import ECKey
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from santinel.audit import checkpoint as signing
from santinel.audit import export
from santinel.audit.chain import ChainedRow
from santinel.audit.checkpoint import AuditKeyMissing, Checkpoint
from santinel.cli.common import DatabaseUrlOption, DataDirOption, make_settings
from santinel.cli.store import audit_store, opened_audit_store
from santinel.crypto.key_providers import KeyProviderError
from santinel.errors import FhirError
from santinel.fhir.dates import parse_period
from santinel.services import audit_verify
from santinel.services.audit_verify import AuditKeyNeeded, Keys, PruneRefused, Verification
from santinel.services.container import SchemaNotCurrent
from santinel.settings import Settings
from santinel.storage.sql.keystore import WrongKeyEncryptionKey
from santinel.storage.sql.sealing import IntegrityFailure

app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
console = Console(stderr=True)
FORMATS = ("ndjson", "syslog")

AuditKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--audit-key-file",
        help="The audit signing key (env SANTINEL_AUDIT_KEY_FILE; default: "
        "audit-signing-key.pem in the data dir).",
    ),
]


def _settings(
    data_dir: Path | None, database_url: str | None, audit_key_file: Path | None
) -> Settings:
    return make_settings(
        data_dir=data_dir, database_url=database_url, audit_key_file=audit_key_file
    )


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(message, markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _signing_key(settings: Settings) -> ECKey:
    try:
        return signing.load_key(settings.audit_key_path)
    except AuditKeyMissing:
        raise _fail(
            f"No audit key at {settings.audit_key_path}: point --audit-key-file (or "
            "SANTINEL_AUDIT_KEY_FILE) at the key the server uses."
        ) from None


def _verification_keys(settings: Settings, public_keys: list[Path] | None) -> Keys:
    """The keys given with --public-key, else the server's audit key when it exists."""
    if public_keys:
        try:
            return Keys(key for path in public_keys for key in _public_keys(path.read_bytes()))
        except (OSError, ValueError, export.BadCheckpointFile) as problem:
            raise _fail(f"Cannot read --public-key: {problem}") from None
    with contextlib.suppress(AuditKeyMissing):
        return Keys([signing.load_key(settings.audit_key_path)])
    return Keys([])


def _public_keys(data: bytes) -> list[ECKey]:
    """A JWK, a PEM key, or the key line(s) of a `santinel audit checkpoints` export."""
    if data.lstrip().startswith(b'{"kind"'):
        _checkpoints, jwks = export.read_checkpoint_file(data.splitlines())
        return [signing.import_public_key(orjson.dumps(jwk)) for jwk in jwks]
    return [signing.import_public_key(data)]


def _read_checkpoints(files: list[Path] | None) -> list[Checkpoint]:
    found: list[Checkpoint] = []
    for path in files or ():
        try:
            with path.open("rb") as lines:
                checkpoints, _keys = export.read_checkpoint_file(lines)
        except OSError as problem:
            raise _fail(f"Cannot read {path}: {problem.strerror}") from None
        except export.BadCheckpointFile as problem:
            raise _fail(f"{path}: {problem}") from None
        found += checkpoints
    return found


def _instant_us(value: str, option: str) -> int:
    """The start of a FHIR date/dateTime (`2026-11-29`, `2026-11-29T10:00:00Z`), in µs."""
    try:
        return parse_period(value).start
    except FhirError:
        raise typer.BadParameter(
            f"{option}: {value!r} is not a date or date-time (e.g. 2026-11-29 or "
            "2026-11-29T10:00:00Z)"
        ) from None


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[IO[bytes]]:
    """The export's destination: a new file readable by its owner only (audit records name
    patients), or standard output."""
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        yield file


def _progress() -> Progress:
    """A progress bar on a terminal (standard error), nothing otherwise."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    )


@app.command()
def verify(
    checkpoints: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoints",
            help="Checkpoints exported with `santinel audit checkpoints` (NDJSON; repeatable): "
            "the chain must match them too (records pruned since are reported, not failed).",
        ),
    ] = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            help="Verify signatures with this audit public key (a JWK, a PEM key, or a "
            "`santinel audit checkpoints` export; repeatable) instead of the server's key file: "
            "what an auditor without the private key uses.",
        ),
    ] = None,
    audit_key_file: AuditKeyOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Walk the whole chain and check every signature; exit 1 naming the first bad record.
    With the data keys (the server's KEK settings), every sealed body is opened too and checked
    against its columns; without them, the chain and signatures alone (no key needed)."""
    settings = _settings(data_dir, database_url, audit_key_file)
    keys = _verification_keys(settings, public_key)
    external = _read_checkpoints(checkpoints)
    if external and not keys:
        raise _fail("Checking exported checkpoints needs the audit key (or --public-key).")
    foreign = audit_verify.check_external(keys, external)
    if foreign:
        raise _fail(
            f"{len(foreign)} checkpoint(s) of --checkpoints are not signed by the audit key "
            f"(first at seq {foreign[0].seq}): a damaged file or another key."
        )

    async def run() -> Verification:
        async with opened_audit_store(settings, required=False) as (store, no_keys):
            if no_keys is not None:
                console.print(
                    f"Sealed bodies not opened (the data keys: {no_keys}); verifying the chain "
                    "and signatures only.",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
            head, _ = await store.head()
            with _progress() as bar:
                task = bar.add_task("verifying", total=head or None)
                return await audit_verify.verify(
                    store,
                    keys,
                    external,
                    progress=lambda seq: bar.update(task, completed=seq),
                    open_bodies=True,
                )

    try:
        result = asyncio.run(run())
    except AuditKeyNeeded as problem:
        raise _fail(
            f"Cannot verify: {problem} (no key at {settings.audit_key_path}; use "
            "--audit-key-file or --public-key)."
        ) from None
    except SchemaNotCurrent as problem:
        raise _fail(str(problem)) from None
    typer.echo(result.summary())
    if not result.ok:
        raise typer.Exit(1)


@app.command("export")
def export_records(
    since: Annotated[
        str, typer.Option(help="First instant exported (a date or date-time; UTC if no zone).")
    ],
    until: Annotated[
        str | None, typer.Option(help="Export records recorded before this date or date-time.")
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="ndjson or syslog (RFC 5424).")
    ] = "ndjson",
    output: Annotated[
        Path | None, typer.Option(help="Write to this file (created 0600); default: stdout.")
    ] = None,
    octet_counting: Annotated[
        bool,
        typer.Option(
            "--octet-counting",
            help="syslog: frame each message as `LENGTH SP MESSAGE` (RFC 5425, for a TLS "
            "syslog receiver) instead of one message per line.",
        ),
    ] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Stream the records recorded in [--since, --until) in chain order, for a SIEM or an
    ATNA audit record repository: bodies opened with the data keys (the server's KEK settings);
    a record whose patient was erased as its clear columns only (meta.security REDACTED)."""
    if output_format not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")
    since_us = _instant_us(since, "--since")
    until_us = _instant_us(until, "--until") if until is not None else None
    settings = _settings(data_dir, database_url, None)

    def encode(row: ChainedRow) -> bytes:
        if output_format == "ndjson":
            return export.ndjson_line(row)
        message = export.syslog_line(row)
        return export.octet_counted(message) if octet_counting else message + b"\n"

    async def run(sink: IO[bytes]) -> int:
        count = 0
        async with opened_audit_store(settings, required=True) as (store, _):
            total = await store.count(since_us, until_us)
            with _progress() as bar:
                task = bar.add_task("exporting", total=total)
                async for row in store.events(since_us, until_us):
                    sink.write(encode(row))
                    count += 1
                    bar.advance(task)
        return count

    try:
        with _output(output) as sink:
            exported = asyncio.run(run(sink))
    except (SchemaNotCurrent, KeyProviderError, WrongKeyEncryptionKey) as problem:
        raise _fail(f"Cannot export: {problem}") from None
    except IntegrityFailure as problem:
        raise _fail(
            f"Export stopped: {problem.diagnostics} Run `santinel audit verify`.", 1
        ) from None
    console.print(f"Exported {exported} audit record(s) as {output_format}.")


@app.command("checkpoints")
def export_checkpoints(
    output: Annotated[
        Path | None,
        typer.Option(help="Write to this file; default: stdout (append with >> to keep all)."),
    ] = None,
    audit_key_file: AuditKeyOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Export the signed checkpoints and the audit public key (NDJSON), to keep elsewhere."""
    settings = _settings(data_dir, database_url, audit_key_file)
    key = _signing_key(settings)

    async def run() -> list[Checkpoint]:
        async with audit_store(settings) as store:
            return await store.checkpoints()

    try:
        stored = asyncio.run(run())
    except SchemaNotCurrent as problem:
        raise _fail(str(problem)) from None
    with _output(output) as sink:
        sink.write(export.key_line(key))
        for item in stored:
            sink.write(export.checkpoint_line(item))
    console.print(f"Exported {len(stored)} signed checkpoint(s) and the audit public key.")


@app.command("checkpoint")
def checkpoint_now(
    audit_key_file: AuditKeyOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Sign the head of the chain now (running servers do it every audit_checkpoint_seconds)."""
    settings = _settings(data_dir, database_url, audit_key_file)
    key = _signing_key(settings)

    async def run() -> Checkpoint | None:
        async with audit_store(settings) as store:
            seq, head_hash = await store.head()
            if seq == 0:
                return None
            signed = signing.sign(key, seq, head_hash, int(time.time() * 1_000_000))
            await store.add_checkpoint(signed)
            return signed

    try:
        signed = asyncio.run(run())
    except SchemaNotCurrent as problem:
        raise _fail(str(problem)) from None
    if signed is None:
        console.print("The audit trail is empty: nothing to sign.")
        return
    typer.echo(f"Signed checkpoint at seq {signed.seq} (chain hash {signed.hash}).")


@app.command()
def prune(
    before: Annotated[
        str,
        typer.Option(help="Delete the records recorded before this date or date-time."),
    ],
    audit_key_file: AuditKeyOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Delete old records after verifying them, leaving a signed anchor the rest chains from
    (the retention a server applies by itself with audit_retention_days)."""
    cutoff_us = _instant_us(before, "--before")
    settings = _settings(data_dir, database_url, audit_key_file)
    key = _signing_key(settings)

    async def run() -> audit_verify.Pruned:
        async with audit_store(settings) as store:
            return await audit_verify.prune_before(store, key, cutoff_us)

    try:
        pruned = asyncio.run(run())
    except PruneRefused as refused:
        raise _fail(
            f"Refused to prune: the records to delete do not verify; {refused}", 1
        ) from None
    except SchemaNotCurrent as problem:
        raise _fail(str(problem)) from None
    if not pruned.deleted:
        typer.echo("Nothing to prune.")
        return
    typer.echo(
        f"Pruned {pruned.deleted} record(s) through seq {pruned.anchor_seq}; the rest chains "
        "from a signed anchor."
    )
