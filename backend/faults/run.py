"""`python -m faults`: set up, run each scenario within its time bound, print the table,
clean up whatever happens, exit 1 on any failure."""

import argparse
import asyncio
import atexit
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType

from app.core import migrations
from faults import canary, locks, restarts, slow_clients
from faults.cluster import Cluster
from faults.context import Bounds, Context
from faults.report import Report
from faults.server import ApiServer, has_serve

Scenario = Callable[[Context], Awaitable[None]]

# name -> (scenario, its time bound in seconds); run in this order.
SCENARIOS: dict[str, tuple[Scenario, float]] = {
    "pg-fast": (lambda ctx: restarts.postgres_restart(ctx, "fast"), 60),
    "pg-immediate": (lambda ctx: restarts.postgres_restart(ctx, "immediate"), 60),
    "api-kill": (restarts.api_sigkill, 60),
    "row-lock": (locks.lock_past_timeout, 30),
    "client-drop": (locks.client_hangs_up, 30),
    "slow-headers": (slow_clients.dribbled_headers, 40),
    "idle-sockets": (slow_clients.idle_sockets, 30),
    "canary": (canary.checks_catch_damage, 30),
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        choices=list(SCENARIOS),
        help="run only this scenario (repeatable)",
    )
    parser.add_argument(
        "--server",
        choices=("auto", "serve", "uvicorn"),
        default="auto",
        help="auto: python -m app.serve when app/serve.py exists, else uvicorn",
    )
    parser.add_argument("--statement-timeout", type=float, default=2.0)
    parser.add_argument("--header-timeout", type=float, default=3.0)
    parser.add_argument("--body-timeout", type=float, default=3.0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser.parse_args(argv)


def _api_env(cluster: Cluster, bounds: Bounds, root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for name in ("DATABASE_DIRECT_URL", "DATABASE_POOLER", "REDIS_URL", "WEB_CONCURRENCY"):
        env.pop(name, None)
    env.update(
        {
            "ENVIRONMENT": "test",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "DATABASE_URL": cluster.url,
            "DATA_DIR": str(root / "data"),
            "RATE_LIMIT_ENABLED": "false",
            "BCRYPT_ROUNDS": "4",
            "ACCESS_TOKEN_EXPIRE_MINUTES": "60",
            "LOG_LEVEL": "INFO",
            "DB_STATEMENT_TIMEOUT": f"{bounds.statement_timeout:g}",
            "REQUEST_TIMEOUT": f"{bounds.request_timeout:g}",
            "HTTP_HEADER_TIMEOUT": f"{bounds.header_timeout:g}",
            "HTTP_BODY_TIMEOUT": f"{bounds.body_timeout:g}",
            "HTTP_BODY_TOTAL_TIMEOUT": f"{bounds.body_total_timeout:g}",
            "HTTP_MAX_CONNECTIONS": str(bounds.max_connections),
        }
    )
    return env


async def _run_all(ctx: Context, names: list[str]) -> None:
    # SIGTERM cancels the run like Ctrl-C does (asyncio.run's own SIGINT handling): the
    # scenarios unwind, then main() cleans up.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    for name in names:
        scenario, limit = SCENARIOS[name]
        _say(f"-- {name} (bound {limit:g} s)")
        started = time.monotonic()
        try:
            async with asyncio.timeout(limit):
                await scenario(ctx)
        except TimeoutError:
            ctx.report.add(
                name,
                "the scenario itself",
                f"≤ {limit:g} s",
                "did not finish: hung past its bound",
                False,
            )
        except Exception as exc:  # one scenario's crash must not hide the others
            ctx.report.add(
                name,
                "the scenario itself",
                "runs to the end",
                f"crashed: {type(exc).__name__}: {exc}"[:300],
                False,
            )
        if ctx.api.process is None or ctx.api.process.poll() is not None:
            _say(f"   the API is down after {name}: starting it again")
            ctx.api.start()
        _say(f"   {time.monotonic() - started:.1f} s")


def _server_log(ctx: Context) -> None:
    """Every 500 the API logged, including those of clients that had gone away."""
    errors = 0
    statuses: dict[int, int] = {}
    for line in ctx.api.log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        status = entry.get("status")
        if isinstance(status, int) and status >= 500:
            statuses[status] = statuses.get(status, 0) + 1
        errors += entry.get("message") == "unhandled exception"
    fives = ", ".join(f"{k}×{v}" for k, v in sorted(statuses.items())) or "none"
    ctx.report.add(
        "API log",
        "every access-log line of the whole run, all API processes",
        "no 500, no unhandled exception",
        f"5xx logged: {fives}; unhandled exceptions: {errors}",
        500 not in statuses and errors == 0,
    )


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _interrupt(signum: int, _: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    bounds = Bounds(
        statement_timeout=args.statement_timeout,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
    )
    use_serve = args.server == "serve" or (args.server == "auto" and has_serve())
    root = Path(tempfile.mkdtemp(prefix="todo-faults-"))
    cluster = Cluster(root / "pg")
    report = Report()
    api = ApiServer({}, root / "api.log", use_serve=use_serve)
    cleaned = False

    def clean_up() -> None:
        nonlocal cleaned
        if cleaned:
            return
        cleaned = True
        api.stop()
        cluster.close()
        if args.keep:
            _say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    atexit.register(clean_up)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    try:
        _say(f"faults: PostgreSQL of our own in {cluster.root}")
        cluster.start()
        migrations.upgrade(cluster.url)
        api.env.update(_api_env(cluster, bounds, root))
        _say(
            f"faults: PostgreSQL on 127.0.0.1:{cluster.port}, API ({api.kind}) on "
            f"127.0.0.1:{api.port}"
        )
        api.start()
        ctx = Context(cluster, api, bounds, report)
        asyncio.run(_run_all(ctx, args.only or list(SCENARIOS)))
        _server_log(ctx)
    except (KeyboardInterrupt, asyncio.CancelledError):
        _say("faults: interrupted")
        report.add("run", "interrupted", "-", "stopped before the end", False)
    except Exception as exc:
        _say(f"faults: could not run: {type(exc).__name__}: {exc}")
        report.add(
            "setup",
            "cluster, migrations, API",
            "starts",
            f"{type(exc).__name__}: {exc}"[:300],
            False,
        )
    finally:
        clean_up()
    elapsed = time.monotonic() - started
    sys.stdout.write(
        f"\nFault suite against {api.kind}, DB_STATEMENT_TIMEOUT="
        f"{bounds.statement_timeout:g} s, REQUEST_TIMEOUT={bounds.request_timeout:g}"
        f" s, HTTP_HEADER_TIMEOUT={bounds.header_timeout:g} s, "
        f"HTTP_BODY_TIMEOUT={bounds.body_timeout:g} s, HTTP_BODY_TOTAL_TIMEOUT="
        f"{bounds.body_total_timeout:g} s; {elapsed:.0f} s in all\n"
    )
    sys.stdout.write(report.table() + "\n")
    failed = len(report.failed)
    sys.stdout.write(f"faults: {len(report.rows) - failed} passed, {failed} failed\n")
    return 1 if failed else 0
