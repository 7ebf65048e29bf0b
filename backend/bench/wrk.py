"""One wrk run: build the command (pinned, bounded), start it, parse its WRKJSON line."""

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.procs import HOST, HarnessError, finish, run_bounded, spawn

LUA = Path(__file__).with_name("request.lua")
# wrk stops sending at -d; allow for draining, reporting and a slow start on top.
SLACK_S = 30.0


@dataclass(frozen=True)
class Target:
    """What to hit: a URL on 127.0.0.1, method, body and bearer token."""

    url: str
    method: str = "GET"
    body: str | None = None
    token: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    # The one status every answer should have (e.g. 304); None: any 2xx.
    expect: int | None = None


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    socket_errors: dict[str, int]
    hung: bool = False
    notes: list[str] = field(default_factory=list)
    expect: int | None = None  # the target's (see Target)
    # CPU per answered request during the run: of the server that answered, and of the
    # whole machine (the server, PostgreSQL, PgBouncer, wrk...), in µs.
    server_cpu_us: float | None = None
    machine_cpu_us: float | None = None
    # ... of PostgreSQL's processes and of PgBouncer's (all of them on the machine)
    postgres_cpu_us: float | None = None
    pgbouncer_cpu_us: float | None = None

    @property
    def non2xx(self) -> int:
        """Answers other than expected: not 2xx, or not the target's `expect`."""
        if self.expect is not None:
            return sum(n for code, n in self.statuses.items() if code != str(self.expect))
        return sum(n for code, n in self.statuses.items() if not code.startswith("2"))

    @property
    def socket_error_total(self) -> int:
        return sum(self.socket_errors.values())

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["non2xx"] = self.non2xx
        return data


@dataclass
class WrkSpec:
    """Load shape: connections, seconds, per-request timeout, CPU to pin wrk to (or None)."""

    connections: int
    duration_s: int
    timeout_s: int
    cpu: int | None = 1
    threads: int = 1


def ensure_wrk() -> str:
    """Path of wrk; installs the Debian package when missing and running as root."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() != 0:
        raise HarnessError("wrk is not installed: sudo apt-get install -y wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        code, out, err = run_bounded(cmd, env=env, timeout=600)
        if code != 0:
            raise HarnessError(f"{' '.join(cmd)} failed:\n{out}{err}")
    path = shutil.which("wrk")
    if not path:
        raise HarnessError("wrk still missing after apt-get install")
    return path


def _command(target: Target, spec: WrkSpec) -> tuple[list[str], dict[str, str]]:
    parts = urlsplit(target.url)
    if parts.scheme != "http" or parts.hostname != HOST:
        raise HarnessError(f"refusing to send load anywhere but {HOST}: {target.url}")
    cmd = [
        shutil.which("wrk") or "wrk",
        f"-t{spec.threads}",
        f"-c{spec.connections}",
        f"-d{spec.duration_s}s",
        f"--timeout={spec.timeout_s}s",
        "--latency",
        "-s",
        str(LUA),
        target.url,
    ]
    if spec.cpu is not None:
        cmd = ["taskset", "-c", str(spec.cpu), *cmd]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WRK_")}
    env["WRK_METHOD"] = target.method
    if target.token:
        env["WRK_TOKEN"] = target.token
    if target.body is not None:
        env["WRK_BODY"] = target.body
    if target.headers:
        env["WRK_HEADERS"] = "|".join(f"{name}: {value}" for name, value in target.headers)
    return cmd, env


def start(target: Target, spec: WrkSpec) -> subprocess.Popen[bytes]:
    """Start wrk in the background (collect it with collect())."""
    cmd, env = _command(target, spec)
    return spawn(cmd, env=env, capture=True)


def collect(proc: subprocess.Popen[bytes], spec: WrkSpec) -> WrkResult:
    code, out, err = finish(proc, spec.duration_s + spec.timeout_s + SLACK_S)
    if code is None:
        return _hung(spec, "wrk did not finish within its time budget and was killed")
    return parse(out, err)


def run(target: Target, spec: WrkSpec) -> WrkResult:
    result = collect(start(target, spec), spec)
    result.expect = target.expect
    return result


def parse(out: str, err: str = "") -> WrkResult:
    line = next((ln for ln in out.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise HarnessError(f"no WRKJSON line in wrk output:\n{out[-2000:]}{err[-2000:]}")
    data = json.loads(line[len("WRKJSON ") :])
    duration = data["duration_us"] / 1e6 or 1e-9
    result = WrkResult(
        requests=data["requests"],
        duration_s=round(duration, 3),
        rps=round(data["requests"] / duration, 1),
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["lat_max_us"] / 1000,
        statuses={str(k): v for k, v in sorted(data["statuses"].items())},
        socket_errors={
            kind: data[f"err_{kind}"] for kind in ("connect", "read", "write", "timeout")
        },
    )
    if data["requests"] == 0:
        result.hung = True
        result.notes.append("no response at all")
    return result


def _hung(spec: WrkSpec, note: str) -> WrkResult:
    return WrkResult(
        requests=0,
        duration_s=float(spec.duration_s),
        rps=0.0,
        p50_ms=0.0,
        p90_ms=0.0,
        p99_ms=0.0,
        max_ms=0.0,
        statuses={},
        socket_errors={"connect": 0, "read": 0, "write": 0, "timeout": 0},
        hung=True,
        notes=[note],
    )
