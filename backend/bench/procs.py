"""Every process the harness starts: its own process group, always stopped on the way out.

Each child gets a new session (so a Ctrl-C in the terminal reaches only the harness,
which then stops the children in order) and a raised open-file limit (wrk -c1000 and
the server accepting 1000 sockets need more than the usual 1024).
"""

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

HOST = "127.0.0.1"  # the only address the harness ever sends load to
NOFILE = 65536

_started: list[subprocess.Popen[bytes]] = []


class HarnessError(RuntimeError):
    """The benchmark cannot go on (a server does not start, wrk is missing...)."""


def _raise_nofile() -> None:
    """Runs in the child before exec (preexec_fn): lift RLIMIT_NOFILE as far as allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limits in ((max(NOFILE, soft), max(NOFILE, hard)), (hard, hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
            return
        except (ValueError, OSError):
            continue


def spawn(
    cmd: list[str],
    *,
    env: dict[str, str],
    cwd: Path | None = None,
    log: Path | None = None,
    capture: bool = False,
) -> subprocess.Popen[bytes]:
    """Start cmd in a new process group; output to log, a pipe (capture) or the terminal."""
    stdout: Any = None
    if capture:
        stdout = subprocess.PIPE
    elif log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        stdout = log.open("ab")
    try:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE if capture else subprocess.STDOUT if log else None,
            start_new_session=True,
            preexec_fn=_raise_nofile,
        )
    finally:
        if log is not None and not capture:
            stdout.close()  # the child holds its own descriptor
    _started.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL it after `grace` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    # The group may outlive its leader (uvicorn's workers): make sure nothing is left.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
    if proc in _started:
        _started.remove(proc)


def stop_all() -> None:
    """Stop every process still running that this harness started, newest first."""
    for proc in reversed(list(_started)):
        stop(proc)


# What stops the harness (run.py turns each into KeyboardInterrupt).
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold back Ctrl-C, SIGTERM and SIGHUP around a short bounded step that must not be
    cut in half (attaching to the embedded server); the first one comes right after.
    Handlers, not the signal mask: children started meanwhile must not inherit a mask."""
    pending: list[int] = []

    def hold(signum: int, _: FrameType | None) -> None:
        pending.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if pending:
            signal.raise_signal(pending[0])


def run_bounded(
    cmd: list[str], *, env: dict[str, str], timeout: float, cwd: Path | None = None
) -> tuple[int | None, str, str]:
    """Run cmd to completion within `timeout` seconds: (returncode or None if killed, out, err)."""
    proc = spawn(cmd, env=env, cwd=cwd, capture=True)
    return finish(proc, timeout)


def finish(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int | None, str, str]:
    """Collect a captured process started by spawn(); kill its group after `timeout`."""
    try:
        out, err = proc.communicate(timeout=max(timeout, 0.1))
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        stop(proc, grace=2)
        out, err = proc.communicate()
        code = None
    if proc in _started:
        _started.remove(proc)
    return code, (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace")


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def http_json(
    method: str,
    url: str,
    body: Any = None,
    token: str | None = None,
    timeout: float = 15.0,
    extra_headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One small HTTP request to the local servers: (status, decoded JSON body or None)."""
    status, _, data = http_exchange(method, url, body, token, timeout, extra_headers)
    return status, data


def http_exchange(
    method: str,
    url: str,
    body: Any = None,
    token: str | None = None,
    timeout: float = 15.0,
    extra_headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """http_json with the response's headers (names lower-cased) too."""
    assert url.startswith(f"http://{HOST}:"), url
    headers = {"Accept": "application/json", **(extra_headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, got = response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        status, raw, got = exc.code, exc.read(), exc.headers
    names = {k.lower(): v for k, v in got.items()}
    try:
        return status, names, json.loads(raw) if raw else None
    except ValueError:
        return status, names, None


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path | None, timeout: float) -> None:
    """Poll url until it answers 200; fail early if the server process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HarnessError(
                f"server exited with {proc.returncode} before {url} answered" + _log_tail(log)
            )
        with contextlib.suppress(OSError):
            if http_json("GET", url, timeout=2)[0] == 200:
                return
        time.sleep(0.25)
    raise HarnessError(f"{url} did not answer 200 within {timeout:.0f} s" + _log_tail(log))


def _log_tail(log: Path | None, lines: int = 25) -> str:
    if log is None or not log.exists():
        return ""
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last lines of {log} ---\n" + "\n".join(tail)


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        # The command name in field 2 may hold spaces: fields after ")" are fixed.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"resource_tracker" not in cmdline:
            kids.append(int(entry))
    return kids


def _vmhwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _stat_ticks(stat: str) -> int:
    """utime + stime of a /proc/<pid>/stat line (the fields after the command's ")")."""
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += _stat_ticks(Path(f"/proc/{pid}/stat").read_text())
        except OSError:
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by a server and its worker processes."""
    return _cpu_ticks([pid, *_children(pid)]) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent not idle (all CPUs, /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_by_command(names: tuple[str, ...]) -> dict[str, float]:
    """CPU time used so far by every process whose command is one of `names` (e.g.
    PostgreSQL's backends, PgBouncer), by name. A process that exits meanwhile takes
    its share with it: the pools' connections stay up through a run."""
    totals = dict.fromkeys(names, 0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.find("(") + 1 : text.rfind(")")]
        if name in totals:
            totals[name] += _stat_ticks(text)
    tick = os.sysconf("SC_CLK_TCK")
    return {name: ticks / tick for name, ticks in totals.items()}


def wait_idle(pid: int, timeout: float = 30.0, busy_share: float = 0.05) -> float:
    """Wait until the server (and its workers) use under `busy_share` of a CPU over half a
    second, so work left over from the previous point doesn't load the next. Returns the
    seconds waited."""
    tick = os.sysconf("SC_CLK_TCK")
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        pids = [pid, *_children(pid)]
        before = _cpu_ticks(pids)
        time.sleep(0.5)
        if (_cpu_ticks(pids) - before) / tick < busy_share * 0.5:
            break
    return time.monotonic() - start


def worker_peak_rss_mb(pid: int) -> float | None:
    """Peak RSS (VmHWM) of the uvicorn worker: the server process itself when it runs one
    worker, else the largest of its worker children (the supervisor serves nothing)."""
    pids = _children(pid) or [pid]
    peak = max(_vmhwm_kb(p) for p in pids)
    return round(peak / 1024, 1) if peak else None
