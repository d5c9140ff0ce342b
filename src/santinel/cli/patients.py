"""`santinel patients`: erasure (RGPD art. 17, crypto-shredding) and legal holds."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from santinel.cli.common import DatabaseUrlOption, DataDirOption, make_settings
from santinel.errors import FhirError
from santinel.services.key_admin import opened_repository
from santinel.services.operations.erase import erase as erase_patient
from santinel.services.operations.erase import summary
from santinel.storage.sql.erasure import place_hold, release_hold

app = typer.Typer(help="Patients' data: erasure and legal holds.", no_args_is_help=True)
console = Console(stderr=True)
PatientArgument = Annotated[str, typer.Argument(help="Patient/ID (or the bare id).")]


def _patient_id(reference: str) -> str:
    patient_id = reference.removeprefix("Patient/")
    if not patient_id or "/" in patient_id:
        raise typer.BadParameter("expected Patient/ID")
    return patient_id


@app.command()
def erase(
    patient: PatientArgument,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Erase every version of every resource of the patient's compartment, for good: their
    data keys are destroyed (crypto-shredding); refused under a legal hold."""
    patient_id = _patient_id(patient)
    settings = make_settings(data_dir=data_dir, database_url=database_url)
    if not yes:
        typer.confirm(f"Erase Patient/{patient_id} for good?", abort=True)

    async def run() -> str:
        async with opened_repository(settings) as repository:
            report = await erase_patient(repository, patient_id)
        return summary(report)

    try:
        console.print(asyncio.run(run()), markup=False)
    except FhirError as refused:
        console.print(f"[red]{refused.diagnostics}[/red]")
        raise typer.Exit(1) from None


@app.command()
def hold(
    patient: PatientArgument,
    reason: Annotated[str, typer.Option(help="Why the record must be kept.")] = "legal hold",
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Place a legal hold: the patient's data cannot be erased until it is released."""
    patient_id = _patient_id(patient)
    settings = make_settings(data_dir=data_dir, database_url=database_url)

    async def run() -> bool:
        async with opened_repository(settings) as repository:
            return await place_hold(repository, patient_id, reason)

    placed = asyncio.run(run())
    state = "is now" if placed else "was already"
    console.print(f"Patient/{patient_id} {state} under a legal hold.", markup=False)


@app.command()
def release(
    patient: PatientArgument,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Release a legal hold."""
    patient_id = _patient_id(patient)
    settings = make_settings(data_dir=data_dir, database_url=database_url)

    async def run() -> bool:
        async with opened_repository(settings) as repository:
            return await release_hold(repository, patient_id)

    released = asyncio.run(run())
    state = "released" if released else "was not under a legal hold"
    console.print(f"Patient/{patient_id}: {state}.", markup=False)
