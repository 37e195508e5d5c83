"""Rows of the benchmark table: stepup next to its peer, the ratio, the target, PASS or MISS.

Every benchmark module returns :class:`Row` objects; :mod:`run` collects them from each
module (run in its own process) and prints one table, as text or markdown. Ratios are
what the targets judge, so they are the headline; absolute times depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from harness import Comparison, Stats

__all__ = [
    "Measure",
    "Row",
    "Target",
    "cli",
    "environment",
    "markdown_table",
    "rows_from_json",
    "rows_to_json",
    "text_table",
]

TargetKind = Literal["faster", "at_most", "under", "overhead"]


@dataclass(frozen=True)
class Measure:
    """A median and its spread (IQR). ``unit`` ``"s"`` is seconds per call; anything
    else (``"B"``, ``"/s"``) is a plain quantity printed as it is."""

    median: float
    iqr: float = 0.0
    unit: str = "s"

    @classmethod
    def of(cls, stats: Stats, per: int = 1) -> Measure:
        return cls(stats.median / per, stats.iqr / per)

    def text(self) -> str:
        if self.unit != "s":
            spread = f" ±{_qty(self.iqr)}" if self.iqr else ""
            return f"{_qty(self.median)} {self.unit}{spread}"
        return f"{_seconds(self.median)} ±{_seconds(self.iqr)}"


@dataclass(frozen=True)
class Target:
    """What the issue asks. On the time ratio ``r = stepup / peer``:

    ``faster`` needs ``1 / r >= value``; ``at_most`` needs ``r <= value``;
    ``under`` needs ``r < value``; ``overhead`` needs ``r - 1 < value``.
    """

    kind: TargetKind
    value: float

    def met(self, ratio: float) -> bool:
        if self.kind == "faster":
            return 1 / ratio >= self.value
        if self.kind == "at_most":
            return ratio <= self.value
        if self.kind == "under":
            return ratio < self.value
        return ratio - 1 < self.value

    def text(self) -> str:
        return {
            "faster": f">= {self.value:g}x faster",
            "at_most": f"<= {self.value:g}x",
            "under": f"< {self.value:g}x",
            "overhead": f"< +{self.value:.0%}",
        }[self.kind]


@dataclass(frozen=True)
class Row:
    """One line of the table. Without ``peer`` the row only reports a quantity."""

    group: str
    label: str
    ours: Measure
    peer_name: str = ""
    peer: Measure | None = None
    target: Target | None = None
    note: str = ""
    style: Literal["cost", "speedup", "overhead"] = "cost"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def compared(
        cls,
        group: str,
        label: str,
        result: Comparison,
        *,
        target: Target | None = None,
        note: str = "",
        per: int = 1,
        style: Literal["cost", "speedup", "overhead"] | None = None,
    ) -> Row:
        """A row from a harness comparison (``ours`` is stepup, ``theirs`` the peer)."""
        chosen = style or {"faster": "speedup", "overhead": "overhead"}.get(
            target.kind if target else "", "cost"
        )
        return cls(
            group,
            label,
            Measure.of(result.ours, per),
            result.theirs.name,
            Measure.of(result.theirs, per),
            target,
            note,
            chosen,  # type: ignore[arg-type]
        )

    @property
    def ratio(self) -> float | None:
        """stepup's median over the peer's (below 1: stepup is cheaper), or, when the
        rows were measured in pairs of rounds, the median of the per-round ratios
        (``extra["paired_ratio"]``), which machine noise shared by a pair cancels in."""
        if self.peer is None or self.peer.median == 0:
            return None
        paired = self.extra.get("paired_ratio")
        if isinstance(paired, (int, float)):
            return float(paired)
        return self.ours.median / self.peer.median

    def ratio_text(self) -> str:
        ratio = self.ratio
        if ratio is None:
            return ""
        if self.style == "speedup":
            return f"{1 / ratio:.2f}x faster" if ratio <= 1 else f"{ratio:.2f}x slower"
        if self.style == "overhead":
            return f"{ratio - 1:+.1%}"
        return f"{ratio:.2f}x"

    @property
    def verdict(self) -> str:
        ratio = self.ratio
        if self.target is None or ratio is None:
            return "report"
        return "PASS" if self.target.met(ratio) else "MISS"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Row:
        peer = data.get("peer")
        target = data.get("target")
        return cls(
            data["group"],
            data["label"],
            Measure(**data["ours"]),
            data.get("peer_name", ""),
            Measure(**peer) if peer else None,
            Target(**target) if target else None,
            data.get("note", ""),
            data.get("style", "cost"),
            data.get("extra", {}),
        )


def rows_to_json(rows: Iterable[Row]) -> str:
    return json.dumps([row.to_dict() for row in rows])


def rows_from_json(text: str) -> list[Row]:
    return [Row.from_dict(item) for item in json.loads(text)]


# formatting --------------------------------------------------------------------------


def _seconds(value: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def _qty(value: float) -> str:
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


_COLUMNS = ("benchmark", "stepup", "peer", "peer time", "ratio", "target", "result")


def _cells(row: Row) -> tuple[str, ...]:
    return (
        row.label,
        row.ours.text(),
        row.peer_name,
        row.peer.text() if row.peer else "",
        row.ratio_text(),
        row.target.text() if row.target else "",
        row.verdict,
    )


def _grouped(rows: Sequence[Row]) -> list[tuple[str, list[Row]]]:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    return list(groups.items())


def text_table(rows: Sequence[Row]) -> str:
    """A fixed-width table, one section per group, then the notes."""
    grouped = _grouped(rows)
    body = [_cells(row) for _, members in grouped for row in members]
    widths = [max(len(line[i]) for line in [_COLUMNS, *body]) for i in range(len(_COLUMNS))]
    widths[0] += 2

    def line(cells: Sequence[str], indent: str = "") -> str:
        parts = [
            (indent + cell if i == 0 else cell).ljust(width) if i in (0, 2) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    head = line(_COLUMNS)
    lines = [head, "-" * len(head)]
    for group, members in grouped:
        lines.append(group)
        lines.extend(line(_cells(row), "  ") for row in members)
    notes = _notes(rows)
    return "\n".join(lines + (["", *notes] if notes else []))


def markdown_table(rows: Sequence[Row]) -> str:
    """The same table as GitHub markdown, the group in bold before its rows."""
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|---|---:|---|---:|---:|---:|---|"]
    for group, members in _grouped(rows):
        lines.append(f"| **{group}** |" + " |" * (len(_COLUMNS) - 1))
        for row in members:
            cells = [cell.replace("|", "\\|") for cell in _cells(row)]
            if cells[-1] in ("PASS", "MISS"):
                cells[-1] = f"**{cells[-1]}**"
            lines.append("| " + " | ".join(cells) + " |")
    notes = _notes(rows)
    return "\n".join(lines + ([""] + [f"- {note}" for note in notes] if notes else []))


def _notes(rows: Sequence[Row]) -> list[str]:
    return [f"{row.group}, {row.label}: {row.note}" for row in rows if row.note]


# the machine ---------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _package(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


def _redis_server(url: str) -> str:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return str(client.info("server")["redis_version"])
        finally:
            client.close()
    except Exception:
        return "unreachable"


def environment(redis_url: str | None = None) -> list[str]:
    """Lines describing the machine and the versions that matter to the numbers."""
    from common import REDIS_URL

    packages = ", ".join(f"{name} {_package(name)}" for name in _PACKAGES)
    lines = [
        f"CPU: {_cpu_model()}, {os.cpu_count()} logical CPUs; {platform.system()}"
        f" {platform.release()}",
        f"Python {platform.python_version()} ({platform.python_implementation()}),"
        f" SQLite {sqlite3.sqlite_version}, Redis server {_redis_server(redis_url or REDIS_URL)}",
        f"Packages: {packages}",
    ]
    commit = _commit()
    if commit is not None:
        lines.append(f"Code: commit {commit}")
    return lines


#: The distributions whose versions move a row: stepup itself, the peers, the drivers
#: and the servers of the whole-request rows.
_PACKAGES = (
    "stepup-auth",
    "pyotp",
    "django-otp",
    "fido2",
    "joserfc",
    "argon2-cffi",
    "redis",
    "SQLAlchemy",
    "psycopg",
    "asyncpg",
    "aiosqlite",
    "uvicorn",
    "waitress",
    "starlette",
    "fastapi",
    "Flask",
    "Django",
)


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return done.stdout.strip()


def _commit() -> str | None:
    """The checked-out commit (with ``+changes`` when the tree differs from it), or
    ``None`` outside a git work tree."""
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+changes" if dirty else head


# the command line of one module -----------------------------------------------------


def cli(
    description: str, rows: Callable[[bool], list[Row]], argv: Sequence[str] | None = None
) -> int:
    """``main()`` of a benchmark module: ``--quick`` for a tiny run, ``--json`` for the
    runner, ``--markdown`` for a markdown table."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny iteration counts (smoke)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args(argv)
    result = rows(args.quick)
    if args.json:
        print(rows_to_json(result))
    elif args.markdown:
        print(markdown_table(result))
    else:
        print(text_table(result))
    sys.stdout.flush()
    return 0
