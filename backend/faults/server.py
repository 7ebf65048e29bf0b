"""The API under test, as a real subprocess on a free loopback port.

`python -m app.serve` when the worktree has it (the served process, with its
slow-client limits), else uvicorn as `make run` starts it. The process gets a session
of its own, so a SIGKILL reaches it and any worker it forked, by process group, and
nothing else.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

import httpx

BACKEND = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
RESERVED_PORTS = {5432, 8000}


def free_port() -> int:
    """A free loopback port, never 5432 or 8000."""
    while True:
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            port = int(probe.getsockname()[1])
        if port not in RESERVED_PORTS:
            return port


def has_serve() -> bool:
    return (BACKEND / "app" / "serve.py").is_file()


class ApiServer:
    def __init__(self, env: Mapping[str, str], log: Path, *, use_serve: bool) -> None:
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.use_serve = use_serve
        self.env = {**env, "HOST": HOST, "PORT": str(self.port)}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def kind(self) -> str:
        return "python -m app.serve" if self.use_serve else "uvicorn (app.serve absent)"

    def command(self) -> list[str]:
        if self.use_serve:
            return [sys.executable, "-m", "app.serve"]
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--no-proxy-headers",
        ]

    def start(self, timeout: float = 30.0) -> float:
        """Start it and wait until /health answers 200; returns the start-up time."""
        started = time.monotonic()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command(),
                cwd=BACKEND,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited with {self.process.returncode}; see {self.log}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/health", timeout=1.0).status_code == 200:
                    return time.monotonic() - started
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the API did not answer /health within {timeout:g} s; see {self.log}")

    def kill(self) -> None:
        """SIGKILL, no warning: the process and anything it forked (its group)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL after 10 s. Idempotent."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
