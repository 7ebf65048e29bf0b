"""Sample CPU time per process group once a second, as JSON lines into a file, while a
benchmark runs; `bench.cpu_report` then turns it into µs of CPU per request.

    ../.venv/bin/python -m bench.cpusample /tmp/cpu.jsonl --seconds 600 &
    ../.venv/bin/python -m bench.run --points list_w2,create_w2 --repeats 1
    kill %1; ../.venv/bin/python -m bench.cpu_report /tmp/cpu.jsonl bench/results/latest.json

Groups: ours_api (`app.serve` or the `app.main:app` uvicorn, and its workers), ref_api (refapp),
pg_ours / pg_ref (PostgreSQL backends connected to todo_bench / todo_bench_ref, from
pg_stat_activity), pg_aux (PostgreSQL processes without a database: WAL writer,
checkpointer...), pg_other, pgbouncer, wrk, other. Linux only (/proc).
"""

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

import asyncpg

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASES = {"todo_bench": "pg_ours", "todo_bench_ref": "pg_ref"}


def read_procs() -> dict[int, tuple[str, bytes, int, int]]:
    """pid -> (comm, cmdline of Python processes, utime + stime ticks, parent pid)."""
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            cmd = b""
            if comm.startswith(("uvicorn", "python")):
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            procs[int(entry)] = (comm, cmd, int(fields[11]) + int(fields[12]), int(fields[1]))
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            continue
    return procs


def _is_ours(cmdline: bytes) -> bool:
    return b"app.main:app" in cmdline or b"app.serve" in cmdline


def group_of(
    pid: int, comm: str, parent: int, apis: dict[int, str], databases: dict[int, str | None]
) -> str:
    if pid in apis or parent in apis:
        return apis.get(pid) or apis[parent]
    if comm == "postgres":
        name = databases.get(pid)
        return "pg_aux" if name is None else DATABASES.get(name, "pg_other")
    if comm == "pgbouncer":
        return "pgbouncer"
    return "wrk" if comm == "wrk" else "other"


async def sample(path: Path, seconds: float) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    previous: dict[int, tuple[str, bytes, int, int]] = {}
    deadline = time.monotonic() + seconds
    with path.open("a") as out:
        while time.monotonic() < deadline:
            started = time.time()
            rows = await conn.fetch("SELECT pid, datname FROM pg_stat_activity")
            databases = {row["pid"]: row["datname"] for row in rows}
            procs = read_procs()
            apis = {pid: "ours_api" for pid, p in procs.items() if _is_ours(p[1])}
            apis |= {pid: "ref_api" for pid, p in procs.items() if b"refapp" in p[1]}
            groups: dict[str, float] = {}
            for pid, (comm, _, ticks, parent) in procs.items():
                # A process new in this interval has no baseline: left out (pool
                # connections and workers live for the whole run).
                used = ticks - previous[pid][2] if pid in previous else 0
                if used > 0:
                    group = group_of(pid, comm, parent, apis, databases)
                    groups[group] = groups.get(group, 0.0) + used / TICKS_PER_SECOND
            previous = procs
            out.write(json.dumps({"t": started, "g": groups}) + "\n")
            out.flush()
            await asyncio.sleep(max(0.0, 1.0 - (time.time() - started)))
    await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cpusample")
    parser.add_argument("path", type=Path, help="JSON lines file to append to")
    parser.add_argument("--seconds", type=float, default=3600, help="stop after this long")
    args = parser.parse_args()
    asyncio.run(sample(args.path, args.seconds))


if __name__ == "__main__":
    main()
