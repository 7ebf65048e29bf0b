"""µs of CPU per request, per process group (API, its PostgreSQL backends), from a
`bench.cpusample` log and the bench run's JSON: the busy windows of ours and of the
reference are matched in order with the run's measured runs (one repeat per point,
no other load on the machine).

    ../.venv/bin/python -m bench.cpu_report /tmp/cpu.jsonl bench/results/latest.json
"""

import json
import sys
from pathlib import Path
from typing import Any

GROUPS = ["ours_api", "pg_ours", "ref_api", "pg_ref", "pg_aux", "pg_other", "wrk", "other"]
MIN_WINDOW_S = 6  # shorter busy stretches are probes and warm-ups
BUSY_CORES = 0.3  # an API process using more than this is in a measured run


def busy_windows(samples: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    """(api group, first sample, last sample) of each stretch where one API is busy."""
    windows: list[tuple[str, int, int]] = []
    current: list[Any] | None = None
    for i, sample in enumerate(samples):
        elapsed = sample["t"] - samples[i - 1]["t"] if i else 1
        api = None
        for group in ("ours_api", "ref_api"):
            if sample["g"].get(group, 0) / elapsed > BUSY_CORES:
                api = group
        if current and current[0] == api:
            current[2] = i
            continue
        if current and current[0]:
            windows.append((current[0], current[1], current[2]))
        current = [api, i, i]
    if current and current[0]:
        windows.append((current[0], current[1], current[2]))
    return [w for w in windows if w[2] - w[1] + 1 >= MIN_WINDOW_S]


def measured_runs(bench: dict[str, Any]) -> dict[str, list[tuple[str, float]]]:
    """(point, req/s) of each measured run, for ours and for the reference, in order."""
    runs: dict[str, list[tuple[str, float]]] = {"ours_api": [], "ref_api": []}
    for point in bench["points"]:
        for who, group in (("ours", "ours_api"), ("ref", "ref_api")):
            runs[group] += [(point["key"], run["rps"]) for run in point["runs"][who]]
    return runs


def report(samples: list[dict[str, Any]], bench: dict[str, Any]) -> str:
    runs = measured_runs(bench)
    lines = [f"{'run':22s} {'req/s':>7s} {'API µs':>8s} {'PG µs':>8s} {'total':>8s}"]
    for api, first, last in busy_windows(samples):
        first, last = first + 1, last - 1  # the edges are partly idle
        seconds = samples[last]["t"] - samples[first - 1]["t"]
        cores = {
            g: sum(samples[i]["g"].get(g, 0) for i in range(first, last + 1)) / seconds
            for g in GROUPS
        }
        if not runs[api]:
            continue
        key, rps = runs[api].pop(0)
        api_us = cores[api] / rps * 1e6
        pg_us = cores["pg_ours" if api == "ours_api" else "pg_ref"] / rps * 1e6
        label = f"{key}/{'ours' if api == 'ours_api' else 'ref'}"
        lines.append(f"{label:22s} {rps:7.0f} {api_us:8.0f} {pg_us:8.0f} {api_us + pg_us:8.0f}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write(__doc__ or "")
        return 2
    samples = [json.loads(line) for line in Path(argv[0]).read_text().splitlines()]
    sys.stdout.write(report(samples, json.loads(Path(argv[1]).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
