"""`santinel` as a real child process: what an operator runs, killed and restarted by tests."""

from __future__ import annotations

import functools
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from tests.services import TLS, free_port

# The console script next to the interpreter running the tests (.venv/bin/santinel).
SANTINEL = str(Path(sys.executable).with_name("santinel"))


def clean_environment() -> dict[str, str]:
    """The test environment without SANTINEL_* settings, so only the given flags count."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANTINEL_")}
    env["SANTINEL_LOG_LEVEL"] = "info"
    return env


def run_santinel(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run one `santinel` command to completion, capturing its output."""
    return subprocess.run(
        [SANTINEL, *args],
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class ServerProcess:
    """`santinel serve` on a free port with the given store flags; stderr goes to `log`.

    Plain HTTP on 127.0.0.1 (`--http`), unless `tls`: then the real default, HTTPS with the
    development CA the server creates in its data dir, which `verify()` trusts. `extra`: more
    flags for `serve`."""

    def __init__(
        self,
        store: list[str],
        log: Path,
        *,
        tls: bool = False,
        extra: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.log = log
        self.tls = tls
        self.extra = list(extra)
        self.env = dict(env or {})  # SANTINEL_* settings given to this server only
        self.port = free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.base = f"{self.url}/fhir"
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._verify: ssl.SSLContext | None = None

    @property
    def ca_file(self) -> Path:
        """The development CA `serve` creates (under `--data-dir`)."""
        return Path(self.store[self.store.index("--data-dir") + 1]) / "tls" / "ca.pem"

    def verify(self) -> ssl.SSLContext:
        """What clients of this server trust: its development CA (HTTPS), else the default."""
        if not self.tls:
            return TLS
        if self._verify is None:
            self._verify = ssl.create_default_context(cafile=str(self.ca_file))
        return self._verify

    @functools.cached_property
    def auth(self) -> httpx.Auth:
        """A full-access token for this server, from a client registered in its store (the
        same store, so it outlives a restart)."""
        from santinel.settings import Settings
        from tests.auth import BearerAuth, register_client

        flag, value = self.store[0], self.store[1]
        settings = (
            Settings(data_dir=value) if flag == "--data-dir" else Settings(database_url=value)
        )
        return BearerAuth(f"{self.url}/oauth/token", *register_client(settings))

    def start(self) -> subprocess.Popen[bytes]:
        self._stderr = self.log.open("ab")
        self.process = subprocess.Popen(
            [
                *(SANTINEL, "serve", "--host", "127.0.0.1", "--port", str(self.port)),
                *self.store,
                *self.extra,
                *([] if self.tls else ["--http"]),
            ],
            env={**clean_environment(), **self.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        return self.process

    def wait_ready(self, timeout: float = 60) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"santinel serve exited ({self.process.returncode}):\n{self.stderr()}"
                )
            try:
                if self.tls and not self.ca_file.exists():
                    raise httpx.ConnectError("no CA yet")
                answer = httpx.get(f"{self.url}/healthz", timeout=1, verify=self.verify())
                if answer.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(
            f"santinel serve did not answer /healthz in {timeout} s:\n{self.stderr()}"
        )

    def kill_9(self) -> None:
        """SIGKILL: no shutdown hook, no flush, exactly like a crash."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._close_log()

    def stop(self) -> int:
        """A graceful stop (SIGTERM), as a service manager does; the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._close_log()
        return self.process.returncode

    def stderr(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _close_log(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> ServerProcess:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()  # never leave a server that did not come up running
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()
        self._close_log()
