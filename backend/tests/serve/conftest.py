"""The served process (`python -m app.serve`) as a real subprocess on a free loopback
port, on this run's test database, spoken to over raw sockets: the limits live below
the ASGI app, where httpx's ASGITransport never goes."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import coverage
import pytest

from app.core.config import Settings
from tests.conftest import BACKEND

# Small limits, so that every deadline is met in a second or two.
FAST_LIMITS = {
    "HTTP_HEADER_TIMEOUT": "2",
    "HTTP_BODY_TIMEOUT": "1",
    "HTTP_BODY_TOTAL_TIMEOUT": "3",
    "HTTP_KEEPALIVE_TIMEOUT": "1",
}
# The sweeper checks deadlines every quarter of the shortest one; the rest is slack
# for a shared 2-core machine. A server's clock may start a little before the test's
# (when it sends a response, before the test has read it).
LATE = 0.25 + 0.75
EARLY = 0.1
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """A client connection that reads responses by Content-Length (keep-alive and
    pipelining), or everything until the server closes."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.opened = time.monotonic()
        self._buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except ConnectionResetError:
            return b""

    def response(self) -> Response:
        while b"\r\n\r\n" not in self._buffer:
            data = self._recv()
            assert data, f"closed before a response: {self._buffer!r}"
            self._buffer += data
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            data = self._recv()
            assert data, "closed inside a response body"
            self._buffer += data
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return Response(int(status_line.split()[1]), headers, body)

    def closed_after(self) -> float:
        """Seconds from opening until the server closed the connection (which must
        send nothing more)."""
        rest = self._recv()
        assert rest == b"", rest
        return time.monotonic() - self.opened

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def get(path: str = "/health", *headers: str, close: bool = False) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: test", *headers]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def send_json(method: str, path: str, document: Any, token: str | None = None) -> bytes:
    body = json.dumps(document).encode()
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: test",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Served:
    """`python -m app.serve` with some settings, its JSON log in a file."""

    def __init__(self, settings: Settings, log: Path, **env: str) -> None:
        self.port = free_port()
        self.log = log
        environment = {
            **os.environ,
            "DATABASE_URL": settings.DATABASE_URL,
            "DATABASE_POOLER": settings.DATABASE_POOLER,
            "DATABASE_DIRECT_URL": settings.DATABASE_DIRECT_URL,
            "DB_POOL_SIZE": "3",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            **env,
        }
        command = [sys.executable, "-m", "app.serve"]
        if coverage.Coverage.current() is not None:
            # Measured as the suite is: pytest-cov combines the parallel data file that
            # this writes beside its own (backend/.coverage.*) when the run ends.
            command[1:1] = ["-m", "coverage", "run", "--parallel-mode"]
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                cwd=BACKEND,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_serving()

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the server exited:\n{self.output()}"
            try:
                with self.connect(timeout=2) as conn:
                    conn.send(get(close=True))
                    if conn.response().status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the server did not start:\n{self.output()}")

    def connect(self, timeout: float = 10.0) -> Connection:
        return Connection(self.port, timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.output().splitlines() if line.startswith("{")]

    def wait_for_log(self, message: str, count: int = 1, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while sum(r.get("message") == message for r in self.log_records()) < count:
            assert time.monotonic() < deadline, f"no {count} x {message!r}:\n{self.output()}"
            time.sleep(0.1)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 30.0) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.terminate()
            try:
                self.wait()
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


ServeFactory = Callable[..., Served]


@pytest.fixture(scope="module")
def serve(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeFactory]:
    """Start served processes for the module; each is stopped at its end."""
    started: list[Served] = []

    def start(**env: str) -> Served:
        log = tmp_path_factory.mktemp("serve") / "server.log"
        server = Served(settings, log, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def served(serve: ServeFactory) -> Served:
    """The served process with small deadlines."""
    return serve(**FAST_LIMITS)
