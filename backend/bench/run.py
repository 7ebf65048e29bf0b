"""Load benchmark of the API beside the lean reference app (see bench/README.md).

    cd backend && ../.venv/bin/python -m bench.run [--quick] [--points list,create] ...

Seeds (once), starts both servers the way production does (one worker pinned to CPU 0;
for the *_embedded points ours on the embedded PostgreSQL, as `make run` runs it),
drives each point with wrk pinned to CPU 1, interleaving ours and the reference, then
prints a markdown table with budgets and writes it, with the raw runs as JSON, to
bench/results/. Every process it starts is stopped on the way out, Ctrl-C included.
"""

import argparse
import dataclasses
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from bench import measure, prepare, procs, report, wrk
from bench.idp import IdentityProvider
from bench.points import BY_KEY, POINTS, Context, Point, PointError
from bench.procs import HOST, HarnessError
from bench.results import PointResult
from bench.servers import start_servers, stop_servers
from faults.pgbouncer import PgBouncer

RESULTS = Path(__file__).with_name("results")
DEFAULT_EMBEDDED_DIR = RESULTS / "embedded-data"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/todo_bench"
DEFAULT_REF_DSN = "postgresql://postgres@127.0.0.1:5432/todo_bench_ref"
DEFAULT_REF_DIR = Path(os.environ.get("BENCH_REF_DIR", "/work/shared/perf-ref"))
REF_ROWS = 1_000_000

log = prepare.Logger()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    keys = ", ".join(p.key for p in POINTS)
    ap.add_argument("--points", help=f"comma list of points to run, of: {keys}")
    ap.add_argument("--duration", type=int, help="seconds per measured run (default 15, --quick 5)")
    ap.add_argument("--warmup", type=int, default=3, help="seconds of warm-up before each run")
    ap.add_argument(
        "--repeats", type=int, help="measured runs per point and server (default 2, --quick 1)"
    )
    ap.add_argument(
        "--quick", action="store_true", help="duration 5, repeats 1, no c=1000 and 2-worker points"
    )
    ap.add_argument(
        "--connections",
        type=int,
        help="override every selected point's concurrency (e.g. 1 for unloaded latency)",
    )
    ap.add_argument("--no-ref", action="store_true", help="don't run the reference app")
    ap.add_argument(
        "--no-seed",
        action="store_true",
        help="don't seed our database (it must hold the bench users already)",
    )
    ap.add_argument(
        "--reseed",
        action="store_true",
        help="seed our database again (bench.seed --reset), e.g. after a password change",
    )
    ap.add_argument(
        "--server",
        choices=("serve", "uvicorn"),
        default="serve",
        help="ours as `make serve` runs it (python -m app.serve, the default) or as plain "
        "uvicorn (`make run`), to compare the two",
    )
    ap.add_argument("--dsn", default=DEFAULT_DSN, help="our PostgreSQL database (libpq URL)")
    ap.add_argument("--ref-dsn", default=DEFAULT_REF_DSN, help="the reference's database")
    ap.add_argument(
        "--embedded-data-dir",
        type=Path,
        default=DEFAULT_EMBEDDED_DIR,
        help="DATA_DIR of the *_embedded points: their embedded PostgreSQL and its seed "
        "(default bench/results/embedded-data; another one for other --users/--tasks-per-user)",
    )
    ap.add_argument(
        "--ref-dir",
        type=Path,
        default=DEFAULT_REF_DIR,
        help="perf-ref folder (refapp.py, seed_tasks.py, mktoken.py)",
    )
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--tasks-per-user", type=int, default=10_000)
    ap.add_argument("--password", default="bench-password-123")
    ap.add_argument("--port", type=int, default=8100)
    ap.add_argument("--ref-port", type=int, default=8110)
    ap.add_argument(
        "--wrk-timeout",
        type=int,
        default=10,
        help="seconds before wrk counts a request as timed out",
    )
    ap.add_argument("--search-word", help="word for the search point (default: from titles)")
    ap.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra setting for our server, e.g. DB_POOL_SIZE=20 (repeatable)",
    )
    ap.add_argument("--results-dir", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    # --quick changes the defaults only: an explicit --duration or --repeats wins.
    if args.duration is None:
        args.duration = 5 if args.quick else 15
    if args.repeats is None:
        args.repeats = 1 if args.quick else 2
    connections = 1 if args.connections is None else args.connections
    if min(args.repeats, args.duration, connections) < 1 or args.warmup < 0:
        ap.error("--repeats, --duration and --connections must be ≥ 1, --warmup ≥ 0")
    bad = [item for item in args.server_env if "=" not in item]
    if bad:
        ap.error(f"--server-env takes KEY=VALUE, got {bad}")
    return args


def select_points(args: argparse.Namespace) -> list[Point]:
    if args.points:
        wanted = [k.strip() for k in args.points.split(",") if k.strip()]
        unknown = [k for k in wanted if k not in BY_KEY]
        if unknown:
            raise SystemExit(f"unknown point(s) {unknown}; known: {list(BY_KEY)}")
        chosen = [BY_KEY[k] for k in wanted]  # named points run even with --quick
    else:
        chosen = [p for p in POINTS if p.default and not (args.quick and p.heavy)]
    if args.connections:
        chosen = [dataclasses.replace(p, connections=args.connections) for p in chosen]
    # One server start per worker count and database: all one-worker points first, those
    # on the embedded server after those on --dsn.
    return sorted(chosen, key=lambda p: (p.workers, p.embedded, p.pooler))


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=prepare.BACKEND,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return out.stdout.strip() or "?"
    except OSError:
        return "?"


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _on_signal(signum: int, _: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def prepare_data(
    args: argparse.Namespace,
    points: list[Point],
    plan: prepare.SeedPlan,
    embedded: prepare.EmbeddedServer,
    seeding: dict[str, float | None],
) -> None:
    """Seed what the selected points use; `seeding` gets the seconds each seed took."""
    wrk.ensure_wrk()
    databases = [(plan, "external")] if any(not p.embedded for p in points) else []
    if any(p.embedded for p in points):
        # Attached before any uvicorn starts: the harness starts the server (unpinned, as
        # the external one runs) and holds it up until the end.
        dsn = embedded.attach(log)
        databases.append((dataclasses.replace(plan, dsn=dsn), "embedded"))
    for db_plan, name in databases:
        if args.no_seed:
            log(f"--no-seed: using the {name} database as it is")
        else:
            seeding[name] = prepare.seed_ours(db_plan, log, reset=args.reseed)
    if not args.no_ref and any(p.ref for p in points):
        python = prepare.ensure_ref_venv(log)
        prepare.seed_ref(args.ref_dsn, args.ref_dir, python, REF_ROWS, log)


def check_login(args: argparse.Namespace, ctx: Context) -> None:
    """Fail early, and say why, when the bench users don't take --password."""
    try:
        ctx.token(1)
    except PointError as exc:
        raise HarnessError(
            f"{exc}\nThe bench users exist but don't log in with --password {args.password!r}: "
            "pass the password the database was seeded with, or --reseed to seed it again "
            "with this one."
        ) from exc


def bench(
    args: argparse.Namespace,
    points: list[Point],
    stamp: str,
    contexts: dict[bool, Context],
    embedded: prepare.EmbeddedServer,
    results: list[PointResult],
) -> None:
    """Run the points, one server start per worker count and database (contexts[True] is
    the embedded server's); results grow as points finish."""
    keys = {"ours": secrets.token_urlsafe(48), "ref": secrets.token_urlsafe(48)}
    groups = sorted({(p.workers, p.embedded, p.pooler) for p in points})
    for workers, on_embedded, pooled in groups:
        group = [
            p for p in points if (p.workers, p.embedded, p.pooler) == (workers, on_embedded, pooled)
        ]
        with_ref = not args.no_ref and any(p.ref for p in group)
        ctx = contexts[on_embedded]
        data_dir = embedded.data_dir if on_embedded else None
        servers = None
        bouncer = None
        try:
            if pooled:
                bouncer = start_pgbouncer(args.dsn)
            servers = start_servers(
                args,
                keys,
                workers,
                with_ref,
                stamp,
                data_dir,
                pooler_port=bouncer.port if bouncer else None,
            )
            check_login(args, ctx)
            if on_embedded and not embedded.app_connections():
                raise HarnessError(
                    f"our server answers but holds no connection to the embedded PostgreSQL "
                    f"under {data_dir} (a DATABASE_URL from elsewhere?): see {servers.ours_log}"
                )
            for point in group:
                log(f"point {point.key} (c={point.connections}, {workers} worker(s))")
                result = measure.run_point(args, ctx, point, servers, keys["ref"])
                if result.error:
                    log(f"  error: {result.error}")
                results.append(result)
        finally:
            stop_servers(servers)
            if bouncer is not None:
                bouncer.stop()


def start_pgbouncer(dsn: str) -> PgBouncer:
    """A PgBouncer in transaction mode in front of --dsn's server, for the pooler points."""
    url = urlsplit(dsn)
    root = Path(tempfile.mkdtemp(prefix="bench-pgbouncer-"))
    root.chmod(0o755)
    bouncer = PgBouncer(root, url.port or 5432, url.hostname or HOST, url.username or "postgres")
    log(f"starting PgBouncer (transaction mode) on {HOST}:{bouncer.port} in front of {dsn}")
    bouncer.start()
    return bouncer


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    points = select_points(args)
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    stamp = started.replace(":", "").replace("-", "")
    # Also SIGINT: a shell's background job starts with it ignored, so Python would not
    # install its own handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    meta: dict[str, Any] = {
        "started_at": started,
        "commit": _commit(),
        "loadavg_start": _loadavg(),
        "config_line": f"{args.duration} s × {args.repeats} after {args.warmup} s warm-up, "
        f"wrk timeout {args.wrk_timeout} s, {os.cpu_count()} CPUs"
        + (", no reference" if args.no_ref else ""),
        "config": {k: str(v) for k, v in vars(args).items()},
    }
    plan = prepare.SeedPlan(args.dsn, args.users, args.tasks_per_user, args.password)
    # Same users and password on both databases, but each server has its own sessions,
    # task ids and tags.
    contexts = {
        False: Context(plan, args.port, args.ref_port, args.search_word, "external"),
        True: Context(plan, args.port, args.ref_port, args.search_word, "embedded"),
    }
    # A Better Auth stand-in for list_external: every server of ours trusts its JWKS.
    idp = IdentityProvider()
    args.server_env = [*args.server_env, *idp.server_env()]
    for ctx in contexts.values():
        ctx.idp = idp
    embedded = prepare.EmbeddedServer(args.embedded_data_dir)
    seeding: dict[str, float | None] = {}
    meta["seeding_s"] = seeding  # None: already seeded
    results: list[PointResult] = []
    code = 0
    try:
        prepare_data(args, points, plan, embedded, seeding)
        bench(args, points, stamp, contexts, embedded, results)
    except HarnessError as exc:
        log(f"FAILED: {exc}")
        code = 1
    except KeyboardInterrupt:
        log("interrupted: stopped everything this run started")
        meta["interrupted"] = True
        code = 130
    finally:
        for signum in procs.STOP_SIGNALS:  # a second Ctrl-C must not cut this short
            signal.signal(signum, signal.SIG_IGN)
        procs.stop_all()
        idp.stop()
        # After our servers: the last to release stops the embedded server.
        embedded.release(log)
    if results:
        meta["loadavg_end"] = _loadavg()
        meta["discovered"] = contexts[False].found | {
            f"embedded {key}": value for key, value in contexts[True].found.items()
        }
        meta["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        path, text = report.write(results, meta, args.results_dir)
        sys.stdout.write(text)
        log(f"written {path} and {path.with_suffix('.json')}")
    return code


if __name__ == "__main__":
    sys.exit(main())
