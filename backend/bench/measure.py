"""Running one point: probe, warm up, measure ours, the reference and the point it is
compared with in turn."""

import argparse
import json
import subprocess
import time

from bench import prepare, procs, wrk
from bench.points import BY_KEY, STORM_LOGIN_USER, Context, Point, PointError, Req, login_req
from bench.procs import HOST, HarnessError
from bench.results import PointResult
from bench.servers import Servers, settle

STORM_LOGIN_CONNECTIONS = 16
DATABASE_COMMANDS = ("postgres", "pgbouncer")


def _spec(args: argparse.Namespace, point: Point, seconds: int) -> wrk.WrkSpec:
    cpu = 1 if point.workers == 1 else None  # whole-machine points: wrk unpinned
    return wrk.WrkSpec(point.connections, seconds, point.wrk_timeout_s or args.wrk_timeout, cpu)


def _target(base: str, req: Req, token: str | None) -> wrk.Target:
    return wrk.Target(
        base + req.path, req.method, req.body, token if req.auth else None, req.headers, req.expect
    )


def _probe(target: wrk.Target) -> None:
    """One request first: a route that answers an error is reported, not benchmarked."""
    body = None if target.body is None else json.loads(target.body)
    status, data = procs.http_json(
        target.method, target.url, body, target.token, timeout=30,
        extra_headers=dict(target.headers),
    )  # fmt: skip
    if status != target.expect if target.expect is not None else not 200 <= status < 300:
        short = str(data)[:300]
        raise PointError(f"{target.method} {target.url} answered {status}: {short}")


def _measure(
    args: argparse.Namespace,
    point: Point,
    target: wrk.Target,
    servers: Servers,
    idle_first: bool = True,
    server: subprocess.Popen[bytes] | None = None,
) -> wrk.WrkResult:
    """One measured run (after a warm-up); `server` is the process that answers it."""
    if idle_first:
        settle(servers)
    if args.warmup and point.warmup:
        wrk.run(target, _spec(args, point, args.warmup))
    server = server or servers.ours
    cpu, busy = procs.cpu_seconds(server.pid), procs.machine_busy_seconds()
    database = procs.cpu_by_command(DATABASE_COMMANDS)
    result = wrk.run(target, _spec(args, point, args.duration))
    if result.requests:
        per_request = 1e6 / result.requests
        result.server_cpu_us = round((procs.cpu_seconds(server.pid) - cpu) * per_request)
        result.machine_cpu_us = round((procs.machine_busy_seconds() - busy) * per_request)
        after = procs.cpu_by_command(DATABASE_COMMANDS)
        result.postgres_cpu_us = round((after["postgres"] - database["postgres"]) * per_request)
        result.pgbouncer_cpu_us = round((after["pgbouncer"] - database["pgbouncer"]) * per_request)
    return result


def run_point(
    args: argparse.Namespace, ctx: Context, point: Point, servers: Servers, ref_secret: str
) -> PointResult:
    result = PointResult(
        point.key,
        point.label,
        point.connections,
        point.workers,
        point.budget,
        ref_label=point.ref.label if point.ref else "",
    )
    settle(servers)  # e.g. logins still queued for bcrypt would time the probes out
    ours = ref = None
    try:
        req = point.build(ctx, point.user)
        result.request = req.describe()
        token = ctx.external_token(point.user) if point.external else ctx.token(point.user)
        ours = _target(ctx.base, req, token)
        _probe(ours)
    except _POINT_ERRORS as exc:
        ours, result.error = None, _describe(exc)
        if " answered 5" in result.error:
            result.error += f" (server log: {servers.ours_log})"
    paired = None
    if point.versus is not None and ours is not None:
        # The point it is compared with, measured in turn with this one (below), so that
        # a drift of the machine's speed hits both alike: through a pooler on the direct
        # server beside the pooled one, else on the same server.
        other = BY_KEY[point.versus]
        result.versus_key, result.versus_label = other.key, other.label
        base = f"http://{HOST}:{servers.partner_port}" if servers.partner_port else ctx.base
        try:
            token = ctx.external_token(other.user) if other.external else ctx.token(other.user)
            paired = _target(base, other.build(ctx, other.user), token)
            _probe(paired)
        except _POINT_ERRORS as exc:
            paired, result.error = None, f"{other.key}: {_describe(exc)}"
    if point.ref is not None and servers.ref is not None and not point.storm:
        try:
            token = prepare.ref_token(args.ref_dir, point.ref.sub, ref_secret)
            ref = _target(ctx.ref_base, point.ref.req, token)
            _probe(ref)
        except _POINT_ERRORS as exc:
            ref = None
            result.notes.append(f"reference: {_describe(exc)}")
    try:
        if point.storm and ours is not None:
            _run_storm(args, ctx, point, ours, result, servers)
        elif not point.storm:
            for repeat in range(args.repeats):
                # Alternate who goes first, so a drift of the machine hits both alike.
                order = [
                    ("ours", ours, servers.ours),
                    ("ref", ref, servers.ref),
                    ("paired", paired, servers.partner or servers.ours),
                ]
                for name, target, server in order if repeat % 2 == 0 else order[::-1]:
                    if target is not None:
                        run = _measure(args, point, target, servers, server=server)
                        getattr(result, name).append(run)
    except _POINT_ERRORS as exc:
        result.error = _describe(exc)
    if point.connections >= 1000 or any(r.hung for r in result.ours):
        result.alive_after = _alive(ctx)
        if not result.alive_after:
            result.notes.append("server did not answer /health within 5 s after the run")
    result.rss_mb = procs.worker_peak_rss_mb(servers.ours.pid)
    timeout = point.wrk_timeout_s or args.wrk_timeout
    if point.budget is not None and point.budget.zero_errors and args.duration <= timeout:
        result.notes.append(
            f"runs of {args.duration} s can't show wrk timeouts ({timeout} s): "
            "requests still waiting at the end are not counted; use --duration > --wrk-timeout"
        )
    for name in ("ours", "ref", "alone", "logins"):
        for n, run in enumerate(getattr(result, name), 1):
            result.notes += [f"{name} run {n}: {note}" for note in run.notes]
    return result


_POINT_ERRORS = (PointError, HarnessError, OSError)


def _describe(exc: Exception) -> str:
    return (
        str(exc) if isinstance(exc, PointError | HarnessError) else f"{type(exc).__name__}: {exc}"
    )


def _run_storm(
    args: argparse.Namespace,
    ctx: Context,
    point: Point,
    ours: wrk.Target,
    result: PointResult,
    servers: Servers,
) -> None:
    """The list at c=32 alone, then while 16 connections log in continuously."""
    login = _target(ctx.base, login_req(ctx, STORM_LOGIN_USER), None)
    _probe(login)
    login_spec = wrk.WrkSpec(
        STORM_LOGIN_CONNECTIONS, args.warmup + args.duration + 2, args.wrk_timeout, cpu=1
    )
    for repeat in range(args.repeats):
        for phase in ("alone", "with") if repeat % 2 == 0 else ("with", "alone"):
            if phase == "alone":
                result.alone.append(_measure(args, point, ours, servers))
                continue
            settle(servers)
            logins = wrk.start(login, login_spec)
            try:
                time.sleep(1.0)  # let the logins reach a steady state first
                result.ours.append(_measure(args, point, ours, servers, idle_first=False))
            finally:
                result.logins.append(wrk.collect(logins, login_spec))


def _alive(ctx: Context) -> bool:
    try:
        return procs.http_json("GET", f"{ctx.base}/health", timeout=5)[0] == 200
    except OSError:
        return False
