"""The results as a markdown table (printed and saved) and as JSON with every raw run."""

import json
from pathlib import Path
from typing import Any

from bench.results import PointResult, Summary, summarize


def _spread(s: Summary) -> str:
    if s.runs == 1:
        return f"{s.rps:g}"
    return f"{s.rps:g} ({s.rps_min:g}–{s.rps_max:g})"


def _sock(s: Summary) -> str:
    if not s.socket_errors:
        return "0"
    return (
        f"{s.socket_errors} ("
        + ", ".join(f"{k} {n}" for k, n in s.socket_error_kinds.items())
        + ")"
    )


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _main_rows(points: list[PointResult]) -> list[list[str]]:
    rows = []
    for p in points:
        if p.storm:
            continue
        ours, ref = summarize(p.ours), summarize(p.ref)
        if p.error or ours is None:
            refcol = f"{_spread(ref)} {p.ref_label}" if ref else "–"
            blank = ["–"] * 5
            rows.append([p.label, str(p.connections), str(p.workers), *blank, refcol, "–", "–"])
            rows[-1].append("error")
            continue
        ratio = p.ratio()
        rows.append(
            [
                p.label,
                str(p.connections),
                str(p.workers),
                _spread(ours),
                f"{ours.p50_ms:g}",
                f"{ours.p99_ms:g}",
                str(ours.non2xx),
                _sock(ours),
                f"{_spread(ref)} {p.ref_label}" if ref else "–",
                f"{ratio:g}" if ratio is not None else "–",
                f"{p.rss_mb:g}" if p.rss_mb is not None else "–",
                p.verdict(),
            ]
        )
    return rows


def _storm_rows(points: list[PointResult]) -> list[list[str]]:
    rows = []
    for p in points:
        if not p.storm:
            continue
        alone, loaded, logins = summarize(p.alone), summarize(p.ours), summarize(p.logins)
        if alone is None or loaded is None:
            continue
        ratio = p.storm_ratio()
        rows.append(
            [
                p.label,
                _spread(alone),
                f"{alone.p99_ms:g}",
                _spread(loaded),
                f"{loaded.p99_ms:g}",
                f"{ratio:g}" if ratio is not None else "–",
                f"{logins.rps:g}" if logins else "–",
                f"{alone.non2xx + loaded.non2xx} / {logins.non2xx if logins else 0}",
                f"{alone.socket_errors + loaded.socket_errors}",
                f"{p.rss_mb:g}" if p.rss_mb is not None else "–",
                p.verdict(),
            ]
        )
    return rows


def markdown(points: list[PointResult], meta: dict[str, Any]) -> str:
    lines = [
        f"# Benchmark {meta['started_at']}",
        "",
        f"commit {meta['commit']}; {meta['config_line']}; load average before "
        f"{meta['loadavg_start']}, after {meta['loadavg_end']}",
        "",
    ]
    seeded = {name: s for name, s in meta.get("seeding_s", {}).items() if s is not None}
    if seeded:
        done = ", ".join(f"{name} database in {s:g} s" for name, s in seeded.items())
        lines += [f"seeded this run: {done}", ""]
    if meta.get("interrupted"):
        lines += ["**Interrupted: partial results.**", ""]
    lines += _table(
        [
            "point",
            "c",
            "workers",
            "req/s median (min–max)",
            "p50 ms",
            "p99 ms",
            "non-2xx",
            "socket errors",
            "ref req/s",
            "ratio",
            "worker RSS MB",
            "budget",
        ],
        _main_rows(points),
    )
    storm = _storm_rows(points)
    if storm:
        lines += [""]
        lines += _table(
            [
                "login storm (c=32 list + 16 logging in)",
                "list req/s alone",
                "p99 alone ms",
                "list req/s with logins",
                "p99 with logins ms",
                "p99 ratio",
                "logins/s",
                "non-2xx list / logins",
                "socket errors",
                "worker RSS MB",
                "budget",
            ],
            storm,
        )
    versus = [p for p in points if p.versus_key is not None]
    if versus:
        lines += [""]
        lines += _table(
            ["compared point (PgBouncer: transaction mode)", "req/s", "CPU µs/req: server / PostgreSQL / PgBouncer / machine", "with",
             "its req/s, in turn", "its CPU µs/req", "ratio", "budget"],
            [_versus_row(p) for p in versus],
        )  # fmt: skip
    notes = _notes(points)
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def _versus_row(p: PointResult) -> list[str]:
    ours, direct = summarize(p.ours), summarize(p.paired)
    ratio = p.versus_ratio()
    return [
        p.label,
        _spread(ours) if ours else "–",
        _cpu(ours),
        p.versus_label,
        _spread(direct) if direct else "–",
        _cpu(direct),
        f"{ratio:g}" if ratio is not None else "–",
        p.verdict(),
    ]


def _cpu(s: Summary | None) -> str:
    """CPU per request: the server's, PostgreSQL's, PgBouncer's, the whole machine's."""
    if s is None or s.server_cpu_us is None:
        return "–"
    return f"{s.server_cpu_us:g} / {s.postgres_cpu_us:g} / {s.pgbouncer_cpu_us:g} / {s.machine_cpu_us:g}"


def _notes(points: list[PointResult]) -> list[str]:
    notes = []
    for p in points:
        if p.error:
            notes.append(f"- {p.label}: ERROR {p.error}")
        for note in p.notes:
            notes.append(f"- {p.label}: {note}")
        for name, runs in (("ours", p.ours), ("ref", p.ref), ("logins", p.logins)):
            s = summarize(runs)
            if s and (s.non2xx or s.socket_errors):
                codes = ", ".join(f"{c}×{n}" for c, n in s.statuses.items())
                notes.append(f"- {p.label} [{name}]: statuses {codes}; socket {_sock(s)}")
        if p.budget is not None and not p.error:
            notes.append(f"- {p.label}: budget {p.budget.describe()}; request {p.request}")
    return notes


def write(points: list[PointResult], meta: dict[str, Any], directory: Path) -> tuple[Path, str]:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = meta["started_at"].replace(":", "").replace("-", "")
    text = markdown(points, meta)
    md = directory / f"bench-{stamp}.md"
    md.write_text(text)
    data = {**meta, "points": [p.as_dict() for p in points]}
    (directory / f"bench-{stamp}.json").write_text(json.dumps(data, indent=2) + "\n")
    for suffix, content in (("md", text), ("json", json.dumps(data, indent=2) + "\n")):
        (directory / f"latest.{suffix}").write_text(content)
    return md, text
