"""What a point measured, its summary over repeats (median and spread), its budget."""

import statistics
from dataclasses import dataclass, field
from typing import Any

from bench.wrk import WrkResult

MAX_RSS_MB = 200.0
MAX_STORM_P99_RATIO = 2.0


@dataclass(frozen=True)
class Budget:
    """What a point must reach. Any non-2xx answer or socket error is a miss too when
    `zero_errors` (c=1000: "no errors, no hang"); every budgeted point also needs zero
    non-2xx answers and a worker under MAX_RSS_MB."""

    min_rps: float | None = None
    min_ratio: float | None = None
    max_p99_ms: float | None = None
    zero_errors: bool = False
    max_storm_ratio: float | None = None
    min_versus_ratio: float | None = None  # req/s against the `versus` point of the run

    def describe(self) -> str:
        parts = []
        if self.min_rps is not None:
            parts.append(f"≥{self.min_rps:g} req/s")
        if self.min_ratio is not None:
            parts.append(f"ratio ≥{self.min_ratio:g}")
        if self.max_p99_ms is not None:
            parts.append(f"p99 ≤{self.max_p99_ms:g} ms")
        if self.zero_errors:
            parts.append("0 errors, no hang")
        if self.max_storm_ratio is not None:
            parts.append(f"p99 ratio <{self.max_storm_ratio:g}")
        if self.min_versus_ratio is not None:
            parts.append(f"≥{self.min_versus_ratio:g}× the point it is compared with")
        parts.append(f"RSS <{MAX_RSS_MB:g} MB")
        return ", ".join(parts)


@dataclass
class Summary:
    runs: int
    rps: float
    rps_min: float
    rps_max: float
    p50_ms: float
    p99_ms: float
    p99_max_ms: float
    non2xx: int
    socket_errors: int
    statuses: dict[str, int]
    socket_error_kinds: dict[str, int]
    hung: bool
    # median CPU per request, µs: of the answering server, of the whole machine, of
    # PostgreSQL's processes, of PgBouncer's (see WrkResult)
    server_cpu_us: float | None = None
    machine_cpu_us: float | None = None
    postgres_cpu_us: float | None = None
    pgbouncer_cpu_us: float | None = None


def summarize(runs: list[WrkResult]) -> Summary | None:
    if not runs:
        return None
    statuses: dict[str, int] = {}
    kinds: dict[str, int] = {}
    for run in runs:
        for code, n in run.statuses.items():
            statuses[code] = statuses.get(code, 0) + n
        for kind, n in run.socket_errors.items():
            kinds[kind] = kinds.get(kind, 0) + n
    return Summary(
        runs=len(runs),
        rps=round(statistics.median(r.rps for r in runs), 1),
        rps_min=min(r.rps for r in runs),
        rps_max=max(r.rps for r in runs),
        p50_ms=round(statistics.median(r.p50_ms for r in runs), 1),
        p99_ms=round(statistics.median(r.p99_ms for r in runs), 1),
        p99_max_ms=max(r.p99_ms for r in runs),
        non2xx=sum(r.non2xx for r in runs),
        socket_errors=sum(r.socket_error_total for r in runs),
        statuses=statuses,
        socket_error_kinds={k: n for k, n in kinds.items() if n},
        hung=any(r.hung for r in runs),
        server_cpu_us=_median([r.server_cpu_us for r in runs]),
        machine_cpu_us=_median([r.machine_cpu_us for r in runs]),
        postgres_cpu_us=_median([r.postgres_cpu_us for r in runs]),
        pgbouncer_cpu_us=_median([r.pgbouncer_cpu_us for r in runs]),
    )


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known)) if known else None


@dataclass
class PointResult:
    key: str
    label: str
    connections: int
    workers: int
    budget: Budget | None
    request: str = ""
    ours: list[WrkResult] = field(default_factory=list)
    ref: list[WrkResult] = field(default_factory=list)
    ref_label: str = ""
    # login storm only: the list alone / with logins, and the logins themselves
    alone: list[WrkResult] = field(default_factory=list)
    logins: list[WrkResult] = field(default_factory=list)
    rss_mb: float | None = None
    alive_after: bool = True
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    # The point this one is compared with (`versus`): its key and label, and its runs,
    # measured in turn with this point's own on servers that are all up (see measure.py).
    versus_key: str | None = None
    versus_label: str = ""
    paired: list[WrkResult] = field(default_factory=list)

    @property
    def storm(self) -> bool:
        return bool(self.alone)

    def ratio(self) -> float | None:
        ours, ref = summarize(self.ours), summarize(self.ref)
        if ours is None or ref is None or not ref.rps:
            return None
        return round(ours.rps / ref.rps, 2)

    def versus_ratio(self) -> float | None:
        """The median of the ratios of runs measured one after the other (this point's
        n-th run over its partner's n-th run), so that a slow spell of the machine, which
        these 2 shared cores have, weighs on a pair alike instead of on one side."""
        pairs = [(a.rps, b.rps) for a, b in zip(self.ours, self.paired, strict=False) if b.rps]
        if not pairs:
            return None
        return round(statistics.median(a / b for a, b in pairs), 2)

    def storm_ratio(self) -> float | None:
        alone, loaded = summarize(self.alone), summarize(self.ours)
        if alone is None or loaded is None or not alone.p99_ms:
            return None
        return round(loaded.p99_ms / alone.p99_ms, 2)

    def verdict(self) -> str:
        """'pass', 'miss: <why>' or '–' (no budget)."""
        if self.error:
            return "error"
        if self.budget is None:
            return "–"
        ours = summarize(self.ours)
        if ours is None:
            return "–"
        misses = _misses(self, self.budget, ours)
        return "pass" if not misses else "miss: " + "; ".join(misses)

    def as_dict(self) -> dict[str, Any]:
        def runs(items: list[WrkResult]) -> list[dict[str, Any]]:
            return [r.as_dict() for r in items]

        def summary(items: list[WrkResult]) -> dict[str, Any] | None:
            s = summarize(items)
            return s.__dict__ if s else None

        return {
            "key": self.key,
            "label": self.label,
            "request": self.request,
            "connections": self.connections,
            "workers": self.workers,
            "budget": self.budget.describe() if self.budget else None,
            "verdict": self.verdict(),
            "ours": summary(self.ours),
            "ref": summary(self.ref),
            "ref_label": self.ref_label,
            "ratio": self.ratio(),
            "alone": summary(self.alone),
            "logins": summary(self.logins),
            "storm_p99_ratio": self.storm_ratio() if self.storm else None,
            "versus": self.versus_key,
            "versus_label": self.versus_label,
            "paired": summary(self.paired),
            "versus_ratio": self.versus_ratio(),
            "worker_peak_rss_mb": self.rss_mb,
            "alive_after": self.alive_after,
            "error": self.error,
            "notes": self.notes,
            "runs": {
                "ours": runs(self.ours),
                "ref": runs(self.ref),
                "paired": runs(self.paired),
                "alone": runs(self.alone),
                "logins": runs(self.logins),
            },
        }


def _misses(point: PointResult, budget: Budget, ours: Summary) -> list[str]:
    misses = []
    if budget.min_rps is not None and ours.rps < budget.min_rps:
        misses.append(f"{ours.rps:g}<{budget.min_rps:g} req/s")
    ratio = point.ratio()
    if budget.min_ratio is not None and ratio is not None and ratio < budget.min_ratio:
        misses.append(f"ratio {ratio:g}<{budget.min_ratio:g}")
    if budget.max_p99_ms is not None and ours.p99_ms > budget.max_p99_ms:
        misses.append(f"p99 {ours.p99_ms:g}>{budget.max_p99_ms:g} ms")
    if budget.max_storm_ratio is not None:
        storm = point.storm_ratio()
        if storm is None or storm >= budget.max_storm_ratio:
            misses.append(f"p99 ratio {storm}≥{budget.max_storm_ratio:g}")
    if budget.min_versus_ratio is not None:
        versus = point.versus_ratio()
        if versus is None or versus < budget.min_versus_ratio:
            misses.append(f"{versus}× {point.versus_key or '?'}<{budget.min_versus_ratio:g}")
    if ours.non2xx:
        misses.append(f"{ours.non2xx} non-2xx")
    if budget.zero_errors and ours.socket_errors:
        misses.append(f"{ours.socket_errors} socket errors")
    if budget.zero_errors and (ours.hung or not point.alive_after):
        misses.append("hang")
    if point.rss_mb is not None and point.rss_mb >= MAX_RSS_MB:
        misses.append(f"RSS {point.rss_mb:g}≥{MAX_RSS_MB:g} MB")
    return misses
