"""`make run`'s first start: the printed copy-paste commands really get a token and read a
patient (over HTTPS, trusting the development CA they name), and the printed demo user really
signs in to a SMART app as that patient."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx

from tests.integration.processes import ServerProcess, run_santinel
from tests.smart_browser import AuthorizationRun

SIGN_IN = re.compile(r"sign in as (\S+) / (\S+) \((Patient/[^)]+)\)")


def test_the_printed_commands_work(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    store = ["--data-dir", data, "--demo-on-first-start"]
    with ServerProcess(store, tmp_path / "log", tls=True) as server:
        printed = server.stderr()
        assert f"curl --cacert {server.ca_file}" in printed
        token_line = next(line for line in printed.splitlines() if "TOKEN=$(curl" in line)
        read_line = next(line for line in printed.splitlines() if "Bearer $TOKEN" in line)
        script = f"{token_line.strip()}\n{read_line.strip()}\n"
        result = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=60, check=True
        )
        bundle = json.loads(result.stdout)
        assert bundle["resourceType"] == "Bundle"
        assert bundle["entry"][0]["resource"]["resourceType"] == "Patient"

        username, password, fhir_user = SIGN_IN.search(printed).groups()  # type: ignore[union-attr]
        redirect = "http://127.0.0.1:9/callback"
        added = run_santinel(
            "clients",
            "add",
            "--name",
            "app",
            "--public",
            "--redirect-uri",
            redirect,
            "--scope",
            "launch/patient patient/*.rs openid fhirUser",
            "--json",
            "--data-dir",
            data,
        )
        assert added.returncode == 0, added.stderr
        client_id = json.loads(added.stdout)["client_id"]
        browser = httpx.Client(follow_redirects=False, verify=server.verify())
        run = AuthorizationRun(
            server.url,
            server.base,
            client_id,
            redirect,
            "launch/patient patient/*.rs",
            browser=browser,
            verify=server.verify(),
        )
        token = run.exchange(run.code(username, password)).json()
        assert f"Patient/{token['patient']}" == fhir_user
        own = httpx.get(
            f"{server.base}/{fhir_user}",
            headers={"Authorization": f"Bearer {token['access_token']}"},
            verify=server.verify(),
        )
        assert own.status_code == 200
    assert password not in (tmp_path / "data" / "santinel.sqlite3").read_bytes().decode("latin-1")
