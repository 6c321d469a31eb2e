"""Real node processes for tests and benchmarks: `borderpost serve` on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

BORDERPOST = str(Path(sys.executable).parent / "borderpost")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node_env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BORDERPOST_")}
    env["BORDERPOST_DATA_DIR"] = str(data_dir)
    for name, value in settings.items():
        env[f"BORDERPOST_{name.upper()}"] = value
    return env


def cli(
    env: dict[str, str], *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [BORDERPOST, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"borderpost {' '.join(args)} failed: {result.stderr}{result.stdout}")
    return result


@dataclass
class ServerProcess:
    """A `borderpost serve` subprocess; kill() is a crash (SIGKILL), not a shutdown.
    With ``tls`` (certificate file, key file) it serves https only."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    tls: tuple[Path, Path] | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        data_dir = Path(self.env["BORDERPOST_DATA_DIR"])
        data_dir.mkdir(parents=True, exist_ok=True)
        log = open(data_dir / f"server-{self.port}.log", "ab")
        command = [BORDERPOST, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.tls:
            command += ["--ssl-certfile", str(self.tls[0]), "--ssl-keyfile", str(self.tls[1])]
        self.process = subprocess.Popen(
            command,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                verify = ssl.create_default_context(cafile=self.tls[0]) if self.tls else True
                health = httpx.get(f"{self.url}/api/health", timeout=1, verify=verify)
                if health.status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError("server did not become healthy")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


PASSWORD = "a-strong-password-1"


def add_account(
    env: dict[str, str],
    username: str,
    role: str,
    *options: str,
    password: str = PASSWORD,
    full_name: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """An officer account added with ``borderpost officer add``, as a node's admin does
    (``options`` such as ``--post``); the command's output is the account as JSON."""
    return cli(
        {**env, "BORDERPOST_NEW_PASSWORD": password},
        *("officer", "add", "--username", username, "--full-name", full_name or username),
        *("--role", role, *options),
    )


@pytest.fixture
def migrated_env(tmp_path: Path) -> dict[str, str]:
    env = node_env(tmp_path / "var", node_code="MR-GOGUI")
    assert "revision" in cli(env, "db", "upgrade").stdout
    add_account(env, "awa", "officer", full_name="Awa Diop")
    return env


def login_token(url: str, username: str, password: str) -> str:
    """Log in over HTTP as a client of the API does; the bearer token."""
    response = httpx.post(
        f"{url}/api/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def bearer(url: str, username: str, password: str = PASSWORD) -> dict[str, str]:
    """The Authorization header of a fresh login (``migrated_env``'s officer by default)."""
    return {"Authorization": f"Bearer {login_token(url, username, password)}"}
