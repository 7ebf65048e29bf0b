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

log = prepare.Logger()


@dataclass
class Servers:
    ours: subprocess.Popen[bytes]
    ref: subprocess.Popen[bytes] | None
    workers: int
    ours_log: Path


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
    it attaches to the embedded PostgreSQL under DATA_DIR (and migrates it) at start-up."""
    pin = ["taskset", "-c", "0"] if workers == 1 else []
    flags = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--host", HOST]
    ours_flags = ["--no-proxy-headers"]  # as `make run` and the Docker image serve
    if workers > 1:
        flags += ["--workers", str(workers)]
    for port in (args.port, args.ref_port) if with_ref else (args.port,):
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
    if pooler_port is not None:
        # Through the run's PgBouncer; migrations and LISTEN on the direct --dsn.
        direct = env["DATABASE_URL"]
        parts = urlsplit(direct)
        pooled = parts._replace(netloc=f"{parts.username or 'postgres'}@{HOST}:{pooler_port}")
        env |= {
            "DATABASE_URL": urlunsplit(pooled),
            "DATABASE_POOLER": "transaction",
            "DATABASE_DIRECT_URL": direct,
        }
        name += "-pgbouncer"
    if embedded_dir is not None:
        # Empty is unset for the settings, and beats a DATABASE_URL in a .env file.
        env |= {"DATABASE_URL": "", "DATA_DIR": str(embedded_dir)}
        name += "-embedded"
    uvicorn = os.path.normpath(Path(sys.executable).parent / "uvicorn")
    ours_log = args.results_dir / "logs" / f"{stamp}-{name}.log"
    if args.server == "serve":
        # As production serves it (make serve, the Docker image): the guarded protocol.
        env |= {"HOST": HOST, "PORT": str(args.port), "WEB_CONCURRENCY": str(workers)}
        cmd = [*pin, sys.executable, "-m", "app.serve"]
    else:  # plain uvicorn, as make run serves it
        cmd = [*pin, uvicorn, "app.main:app", *flags, *ours_flags, "--port", str(args.port)]
    where = f"embedded PostgreSQL under {embedded_dir}" if embedded_dir else "--dsn"
    log(f"starting ours ({workers} worker(s), {where}): {' '.join(cmd)}")
    ours = procs.spawn(cmd, env=env, cwd=prepare.BACKEND, log=ours_log)
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
            *flags,
            "--port",
            str(args.ref_port),
        ]
        log(f"starting the reference: {' '.join(ref_cmd)}")
        ref_log = args.results_dir / "logs" / f"{stamp}-ref-w{workers}.log"
        ref = procs.spawn(ref_cmd, env=ref_env, cwd=args.ref_dir, log=ref_log)
        procs.wait_http(f"http://{HOST}:{args.ref_port}/const", ref, ref_log, START_TIMEOUT_S)
    procs.wait_http(f"http://{HOST}:{args.port}/health", ours, ours_log, START_TIMEOUT_S)
    return Servers(ours, ref, workers, ours_log)


def stop_servers(servers: Servers | None) -> None:
    if servers is None:
        return
    for proc in (servers.ours, servers.ref):
        if proc is not None:
            procs.stop(proc)


def settle(servers: Servers) -> None:
    """Work left over from the previous run (requests wrk gave up on, bcrypt jobs still
    queued) would load the next one: wait until both servers are idle."""
    for proc in (servers.ours, servers.ref):
        if proc is not None:
            procs.wait_idle(proc.pid)
