"""Our API and the reference, started the way production runs them; stopped for sure."""

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench import prepare, procs
from bench.procs import HOST, HarnessError

START_TIMEOUT_S = 60.0
# Taken from the harness's environment; every app setting is set here or left at its default.
PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
UVICORN_FLAGS = ("--loop", "uvloop", "--http", "httptools", "--no-access-log", "--host", HOST)

log = prepare.Logger()


@dataclass
class Servers:
    ours: subprocess.Popen[bytes]
    ref: subprocess.Popen[bytes] | None
    workers: int
    ours_log: Path
    # Through a pooler: a direct server of ours beside the pooled one, on `partner_port`,
    # so that a pooled point and its direct counterpart are measured in turn.
    partner: subprocess.Popen[bytes] | None = None
    partner_port: int | None = None

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in (self.ours, self.partner, self.ref) if p is not None]


def base_env() -> dict[str, str]:
    env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def start_servers(
    args: argparse.Namespace,
    secrets_: dict[str, str],
    workers: int,
    with_ref: bool,
    stamp: str,
    embedded_dir: Path | None = None,
    pooler_port: int | None = None,
) -> Servers:
    """Ours on --dsn, or with `embedded_dir` as `make run` runs it: no DATABASE_URL, so
    it attaches to the embedded PostgreSQL under DATA_DIR (and migrates it) at start-up.
    With `pooler_port`, ours goes through that PgBouncer, and a second server of ours,
    direct on --dsn, listens on --port + 1 (same key, same database: a token of one is
    good on the other)."""
    pin = ["taskset", "-c", "0"] if workers == 1 else []
    partner_port = args.port + 1 if pooler_port is not None else None
    ports = [args.port] + ([args.ref_port] if with_ref else []) + [partner_port or 0]
    for port in filter(None, ports):
        if procs.port_in_use(port):
            raise HarnessError(f"port {port} is already in use: stop that server or pick --port")
    env = base_env() | {
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets_["ours"],
        "DATABASE_URL": args.dsn.replace("postgresql://", "postgresql+asyncpg://", 1),
        "RATE_LIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    env |= dict(item.split("=", 1) for item in args.server_env)
    name = f"ours-w{workers}"
    partner = None
    if pooler_port is not None:
        assert partner_port is not None
        partner = _start_ours(args, pin, env, partner_port, f"{stamp}-{name}-direct", workers)
        # Through the run's PgBouncer; migrations and LISTEN on the direct --dsn.
        direct = env["DATABASE_URL"]
        parts = urlsplit(direct)
        pooled = parts._replace(netloc=f"{parts.username or 'postgres'}@{HOST}:{pooler_port}")
        env = env | {
            "DATABASE_URL": urlunsplit(pooled),
            "DATABASE_POOLER": "transaction",
            "DATABASE_DIRECT_URL": direct,
        }
        name += "-pgbouncer"
    if embedded_dir is not None:
        # Empty is unset for the settings, and beats a DATABASE_URL in a .env file.
        env |= {"DATABASE_URL": "", "DATA_DIR": str(embedded_dir)}
        name += "-embedded"
    where = f"embedded PostgreSQL under {embedded_dir}" if embedded_dir else "--dsn"
    log(f"starting ours ({workers} worker(s), {where})")
    ours, ours_log = _start_ours(args, pin, env, args.port, f"{stamp}-{name}", workers)
    ref = None
    if with_ref:
        ref_env = base_env() | {"BENCH_DSN": args.ref_dsn, "BENCH_SECRET": secrets_["ref"]}
        ref_uvicorn = str(prepare.REF_VENV / "bin" / "uvicorn")
        ref_cmd = [
            *pin,
            ref_uvicorn,
            "refapp:app",
            "--app-dir",
            str(args.ref_dir),
            *UVICORN_FLAGS,
            "--port",
            str(args.ref_port),
        ]
        log(f"starting the reference: {' '.join(ref_cmd)}")
        ref_log = args.results_dir / "logs" / f"{stamp}-ref-w{workers}.log"
        ref = procs.spawn(ref_cmd, env=ref_env, cwd=args.ref_dir, log=ref_log)
        procs.wait_http(f"http://{HOST}:{args.ref_port}/const", ref, ref_log, START_TIMEOUT_S)
    procs.wait_http(f"http://{HOST}:{args.port}/health", ours, ours_log, START_TIMEOUT_S)
    if partner is None:
        return Servers(ours, ref, workers, ours_log)
    partner_proc, partner_log = partner
    procs.wait_http(
        f"http://{HOST}:{partner_port}/health", partner_proc, partner_log, START_TIMEOUT_S
    )
    return Servers(ours, ref, workers, ours_log, partner_proc, partner_port)


def _start_ours(
    args: argparse.Namespace,
    pin: list[str],
    env: dict[str, str],
    port: int,
    name: str,
    workers: int,
) -> tuple[subprocess.Popen[bytes], Path]:
    flags = [*UVICORN_FLAGS, "--no-proxy-headers"]  # as `make run` and the Docker image
    if workers > 1:
        flags += ["--workers", str(workers)]
    uvicorn = os.path.normpath(Path(sys.executable).parent / "uvicorn")
    ours_log = args.results_dir / "logs" / f"{name}.log"
    if args.server == "serve":
        # As production serves it (make serve, the Docker image): the guarded protocol.
        env = env | {"HOST": HOST, "PORT": str(port), "WEB_CONCURRENCY": str(workers)}
        cmd = [*pin, sys.executable, "-m", "app.serve"]
    else:  # plain uvicorn, as make run serves it
        cmd = [*pin, uvicorn, "app.main:app", *flags, "--port", str(port)]
    log(f"  {name} on port {port}: {' '.join(cmd)}")
    return procs.spawn(cmd, env=env, cwd=prepare.BACKEND, log=ours_log), ours_log


def stop_servers(servers: Servers | None) -> None:
    if servers is None:
        return
    for proc in servers.processes:
        procs.stop(proc)


def settle(servers: Servers) -> None:
    """Work left over from the previous run (requests wrk gave up on, bcrypt jobs still
    queued) would load the next one: wait until every server is idle."""
    for proc in servers.processes:
        procs.wait_idle(proc.pid)
