"""What each scenario tried and saw: one row of the printed table per check."""

import shutil
import textwrap
from dataclasses import dataclass, field


@dataclass
class Row:
    """One check: `ok` False means a loss, a 500, or a bound exceeded."""

    scenario: str
    done: str
    bound: str
    seen: str
    ok: bool

    @property
    def verdict(self) -> str:
        return "PASS" if self.ok else "FAIL"


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, scenario: str, done: str, bound: str, seen: str, ok: bool) -> Row:
        row = Row(scenario, done, bound, seen, ok)
        self.rows.append(row)
        return row

    @property
    def failed(self) -> list[Row]:
        return [row for row in self.rows if not row.ok]

    def table(self, width: int | None = None) -> str:
        """A plain-text table whose cells wrap, so it reads in a terminal or a log."""
        width = width or max(120, min(shutil.get_terminal_size((160, 40)).columns, 200))
        headers = ("scenario", "what was done", "bound", "what was seen", "verdict")
        fixed = [22, 0, 26, 0, 7]
        flexible = width - sum(fixed) - 3 * len(fixed) - 1
        fixed[1] = flexible * 2 // 5
        fixed[3] = flexible - fixed[1]
        rule = "+" + "+".join("-" * (w + 2) for w in fixed) + "+"
        lines = [rule, _cells(headers, fixed), rule.replace("-", "=")]
        for row in self.rows:
            cells = (row.scenario, row.done, row.bound, row.seen, row.verdict)
            lines += [_cells(cells, fixed), rule]
        return "\n".join(lines)


def _cells(values: tuple[str, ...], widths: list[int]) -> str:
    wrapped = [textwrap.wrap(v, w) or [""] for v, w in zip(values, widths, strict=True)]
    height = max(len(w) for w in wrapped)
    out = []
    for i in range(height):
        parts = [
            (col[i] if i < len(col) else "").ljust(w)
            for col, w in zip(wrapped, widths, strict=True)
        ]
        out.append("| " + " | ".join(parts) + " |")
    return "\n".join(out)
