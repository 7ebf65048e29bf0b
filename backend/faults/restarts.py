"""Scenarios 1-3: PostgreSQL restarted (`-m fast`, `-m immediate`) and the API
SIGKILLed, each under a bounded write load retrying with the same Idempotency-Keys."""

import asyncio
import time
from collections import Counter

from faults.checks import check
from faults.context import Context
from faults.load import User, WriteLoad, sign_up, summarize

WARM_UP = 2.0  # seconds of load before the fault
DOWN = 1.5  # seconds PostgreSQL stays stopped
AFTER = 3.0  # seconds of load after the recovery


async def postgres_restart(ctx: Context, mode: str) -> None:
    name = f"PG restart -m {mode}"
    async with ctx.client() as client:
        users = [await sign_up(client, f"pg-{mode}-{i}") for i in range(2)]
    load = WriteLoad(ctx.api.base_url, users, f"pg-{mode}", request_timeout=ctx.bounds.request)
    load.start()
    await asyncio.sleep(WARM_UP)
    stopped_at = time.monotonic()
    stop_took = await asyncio.to_thread(ctx.cluster.stop, mode)
    await asyncio.sleep(DOWN)
    start_took = await asyncio.to_thread(ctx.cluster.restart)
    up_at = time.monotonic()
    await asyncio.sleep(AFTER)
    await load.finish()
    done = (
        f"8 writers, 2 users, Idempotency-Key per write, retry on 503; pg_ctl stop -m {mode} "
        f"({stop_took:.2f} s) after {WARM_UP:g} s, down {DOWN:g} s, start ({start_took:.2f} s)"
    )
    await _verdicts(ctx, name, done, load, users, stopped_at, up_at, allowed={"503"})


async def api_sigkill(ctx: Context) -> None:
    name = "API SIGKILL mid-write"
    async with ctx.client() as client:
        users = [await sign_up(client, f"kill-{i}") for i in range(2)]
    load = WriteLoad(ctx.api.base_url, users, "kill", request_timeout=ctx.bounds.request)
    load.start()
    await asyncio.sleep(WARM_UP)
    in_flight = load.in_flight
    killed_at = time.monotonic()
    ctx.api.kill()
    restart_took = await asyncio.to_thread(ctx.api.start)
    up_at = time.monotonic()
    await asyncio.sleep(AFTER)
    await load.finish()
    done = (
        f"8 writers, 2 users, Idempotency-Key per write, retry on 503 and connection errors; "
        f"kill -9 of the API's process group with {in_flight} writes in flight, restarted "
        f"({restart_took:.2f} s to /health)"
    )
    # Connection errors are how a killed server looks to its clients; a 500 never is.
    allowed = {"503", "ConnectError", "ReadError", "RemoteProtocolError", "WriteError"}
    await _verdicts(ctx, name, done, load, users, killed_at, up_at, allowed=allowed)


async def _verdicts(
    ctx: Context,
    name: str,
    done: str,
    load: WriteLoad,
    users: list[User],
    fault_at: float,
    up_at: float,
    allowed: set[str],
) -> None:
    b = ctx.bounds
    outcomes = load.outcomes
    bad = Counter(
        {k: v for k, v in outcomes.items() if not k.startswith("2") and k.split()[0] not in allowed}
    )
    first_ok = min(
        (e.at for e in load.events if e.at > up_at and e.outcome.startswith("2")), default=None
    )
    recovery = None if first_ok is None else first_ok - up_at
    failures = [e.at for e in load.events if not e.outcome.startswith("2")]
    outage = (
        f"{max(failures) - fault_at:.2f} s of errors after the fault"
        if failures
        else ("no error seen")
    )
    gave_up = [a for a in load.attempts if a.gave_up]
    ok = not bad and recovery is not None and recovery <= b.recovery and not gave_up
    ok = ok and load.max_latency() <= b.request
    seen = f"{summarize(outcomes)}; {outage}; "
    seen += (
        f"first 2xx {recovery:.2f} s after back up; "
        if recovery is not None
        else ("no 2xx after back up; ")
    )
    seen += f"max latency {load.max_latency():.2f} s; {len(gave_up)} writes given up"
    if gave_up:
        seen += f" ({gave_up[0].gave_up})"
    bound = (
        f"only {'/'.join(sorted(allowed))}, never 500; 2xx within {b.recovery:g} s of "
        f"recovery; each request ≤ {b.request:g} s; each write ≤ {load.write_deadline:g} s"
    )
    ctx.report.add(name, done, bound, seen, ok)
    async with ctx.client() as client:
        integrity = await check(ctx.cluster.dsn, client, users, load.attempts)
    ctx.report.add(
        f"{name}: data",
        "every write read back from PostgreSQL by title and key",
        "every 2xx stored exactly once, no duplicate, no phantom",
        integrity.describe_writes(),
        integrity.exactly_once,
    )
    ctx.report.add(
        f"{name}: rows",
        "tags, project, version, links, idempotency keys",
        "no partial row",
        integrity.describe_rows(),
        not integrity.partial,
    )
    ctx.report.add(
        f"{name}: counters",
        "task_count sums, API totals and counts vs COUNT(*)",
        "equal",
        integrity.describe_counters(),
        not integrity.counters,
    )
